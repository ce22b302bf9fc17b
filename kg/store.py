"""Crash-safe persistence of ``kg_state.json``.

A save is atomic (temp file, fsync, rename), keeps the previous version as
``kg_state.json.bak``, runs under a file lock, and is refused when the file
changed on disk since the story was loaded (its ``revision`` moved on). Loading
only parses JSON and validates it; nothing in the file is ever executed.

Story folder layout::

    <story>/kg_state.json
    <story>/kg_state.json.bak
    <story>/scenes/<scene>/take-<n>.{mp4,first.png,last.png,latents.safetensors}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from pydantic import ValidationError

from kg.errors import (
    StoryConflictError,
    StoryLockedError,
    StoryValidationError,
    UnsafePathError,
)
from kg.paths import (
    TMP_MARK,
    atomic_path,
    read_regular_file,
    refuse_link,
)
from kg.schema import SCHEMA_VERSION, Story
from kg.strict_json import StrictJSONError, decode_utf8, loads_strict

__all__ = [
    "STATE_FILE",
    "BACKUP_FILE",
    "MIGRATIONS",
    "load_story",
    "save_story",
    "update_story",
    "story_lock",
    "dump_story",
    "parse_story",
    "parse_story_bytes",
    "MAX_STATE_BYTES",
    "state_path",
    "format_json_path",
    "validation_problems",
]

log = logging.getLogger(__name__)

STATE_FILE = "kg_state.json"
BACKUP_FILE = "kg_state.json.bak"
LOCK_FILE = ".kg_state.lock"
DEFAULT_LOCK_TIMEOUT_S = 30.0
# 10,000 generated scenes with scores take about 40 MB.
MAX_STATE_BYTES = 256 * 1024 * 1024

# schema_version n -> function turning a version-n document into version n+1.


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Long takes: every take says how many leading frames repeat its predecessor.

    Version 1 continued a scene by writing the predecessor's last 2 tail
    latents over the first ones (so 1 + 8 frames repeated) or from its last
    frame (1 frame); nothing carried repeats nothing.
    """
    repeated = {"latent": 9, "frame": 1}
    for scene in doc.get("scenes") or []:
        if not isinstance(scene, dict):
            continue
        for take in scene.get("takes") or []:
            if not isinstance(take, dict) or "overlap_frames" in take:
                continue
            params = take.get("params")
            used = params.get("continuity_used") if isinstance(params, dict) else None
            take["overlap_frames"] = (
                repeated.get(used, 0) if isinstance(used, str) else 0
            )
    return doc


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}

T = TypeVar("T")
_REVISION_RE = re.compile(r'^  "revision": (\d+),?$', re.MULTILINE)


def state_path(path: str | os.PathLike[str]) -> Path:
    """The ``kg_state.json`` of a story folder (or the file itself)."""
    p = Path(path)
    return p if p.suffix == ".json" or p.name == BACKUP_FILE else p / STATE_FILE


def format_json_path(loc: tuple[int | str, ...]) -> str:
    """``('scenes', 3, 'motion')`` -> ``'scenes[3].motion'``.

    A key longer than 40 characters (a hostile file's) is shown cut short.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            text = text if len(text) <= 40 else text[:37] + "..."
            out += f".{text}" if out else text
    return out or "$"


def validation_problems(
    exc: ValidationError, prefix: str = ""
) -> list[tuple[str, str]]:
    """Pydantic errors as short ``(json_path, message)`` pairs a person can act on.

    Messages are bounded (a 50 MB value is shown by its first characters) and
    say what to change. ``prefix`` is put before every path (``scenes[2]``).
    """
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
        if prefix:
            loc = (prefix, *loc)
        msg = _clip(err["msg"].removeprefix("Value error, "))
        if err["type"] == "value_error" and not loc:
            # Story-level cross-reference problems arrive as "path: message" lines.
            for line in msg.split("\n"):
                path, _, text = line.partition(": ")
                problems.append((path, text) if text else ("$", line))
            continue
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "string_pattern_mismatch":
            msg = (
                "holds control characters (NUL, terminal escapes...); only tab "
                "and line breaks are allowed, remove the others"
            )
        elif err["type"] == "string_unicode":
            msg = "holds a lone surrogate, which UTF-8 cannot store; remove it"
        elif err["type"] == "finite_number":
            msg = "NaN and Infinity are not allowed; use a finite number"
        elif "input" in err and err["type"] not in ("model_type",):
            msg = f"{msg} (got {_short(err['input'])})"
        problems.append((format_json_path(loc), msg))
    return problems


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) > 60:
        value = value[:60]  # never serialise a huge value to show 60 characters
    elif isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _clip(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _migrate(doc: dict[str, Any], source: str) -> dict[str, Any]:
    version = doc.get("schema_version")
    if not isinstance(version, int) or not 0 <= version <= 1_000:
        raise StoryValidationError(
            source,
            [
                (
                    "schema_version",
                    "missing or not a version number (1 to 1000); add one",
                )
            ],
        )
    if version > SCHEMA_VERSION:
        raise StoryValidationError(
            source,
            [
                (
                    "schema_version",
                    f"{version} is newer than this StoryGraph reads "
                    f"({SCHEMA_VERSION}); upgrade StoryGraph Studio",
                )
            ],
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoryValidationError(
                source,
                [("schema_version", f"no migration from version {version}")],
            )
        doc = step(dict(doc))
        version += 1
        doc["schema_version"] = version
    return doc


def parse_story(text: str, source: str = "kg_state.json") -> Story:
    """Validate a JSON document into a `Story`; errors name their JSON paths.

    Total: any text ends in a `Story` or a `StoryValidationError` with short
    messages, never another exception (see `kg.strict_json` for what the
    JSON layer refuses: duplicate keys, NaN, huge numbers, deep nesting...).
    """
    try:
        doc = loads_strict(text)
    except StrictJSONError as exc:
        raise StoryValidationError(source, exc.problems) from None
    if not isinstance(doc, dict):
        raise StoryValidationError(
            source, [("$", f"must be a JSON object, got {type(doc).__name__}")]
        )
    doc = _migrate(doc, source)
    try:
        return Story.model_validate(doc)
    except ValidationError as exc:
        raise StoryValidationError(source, validation_problems(exc)) from None


def parse_story_bytes(data: bytes, source: str = "kg_state.json") -> Story:
    """`parse_story` of raw file bytes (non-UTF-8 bytes are a problem, not a crash)."""
    if len(data) > MAX_STATE_BYTES:
        raise StoryValidationError(
            source,
            [
                (
                    "$",
                    f"the file has {len(data):,} bytes; a story file holds at most "
                    f"{MAX_STATE_BYTES:,}",
                )
            ],
        )
    try:
        text = decode_utf8(data)
    except StrictJSONError as exc:
        raise StoryValidationError(source, exc.problems) from None
    return parse_story(text, source)


def dump_story(story: Story) -> str:
    """The exact text `save_story` writes (stable: same story, same bytes)."""
    return story.model_dump_json(indent=2) + "\n"


def load_story(path: str | os.PathLike[str]) -> Story:
    """Load and validate a story from its folder or its ``kg_state.json``.

    When the state file is missing but a backup exists (a save interrupted in
    its first instant on a file system without hard links), the backup loads.
    """
    file = state_path(path)
    if not file.exists():
        backup = file.with_name(BACKUP_FILE)
        if backup.exists():
            log.warning("%s missing; loading the backup %s", file, backup)
            file = backup
        else:
            raise FileNotFoundError(
                f"no story at {file}; create one with 'storygraph new {file.parent}'"
            )
    try:
        data = read_regular_file(file, MAX_STATE_BYTES)
    except FileNotFoundError:
        raise
    except (OSError, UnsafePathError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        problem = ("$", f"cannot read: {reason}")
        raise StoryValidationError(str(file), [problem]) from None
    try:
        return parse_story_bytes(data, str(file))
    except StoryValidationError as exc:
        backup = file.with_name(BACKUP_FILE)
        if file.name != BACKUP_FILE and backup.exists():
            exc.args = (exc.args[0] + f"\nThe previous version is kept in {backup}.",)
        raise


@contextlib.contextmanager
def story_lock(
    path: str | os.PathLike[str], timeout: float = DEFAULT_LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold the story's file lock; re-entrant within one thread."""
    file = state_path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    # FileLock opens (and truncates) its file: a link there would reach outside.
    lock_file = refuse_link(file.with_name(LOCK_FILE))
    lock = FileLock(lock_file, timeout=timeout, is_singleton=True)
    try:
        lock.acquire()
    except Timeout:
        raise StoryLockedError(
            f"{file} is locked by another process for more than {timeout:.0f} s "
            "(a generation writing to it?); wait for it to finish and try again"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _revision_on_disk(text: str) -> int | None:
    m = _REVISION_RE.search(text)
    if m:
        return int(m.group(1))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    rev = doc.get("revision") if isinstance(doc, dict) else None
    return rev if isinstance(rev, int) else None


def _current_text(file: Path) -> str | None:
    """The state file's text before a save; None when there is none."""
    try:
        data = read_regular_file(file, MAX_STATE_BYTES)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise StoryValidationError(
            str(file), [("$", "is a folder where kg_state.json should be; move it")]
        ) from None
    return data.decode("utf-8", "replace")


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(file: Path, text: str) -> None:
    """`kg.paths.atomic_path`, keeping the version it replaces as the backup."""
    with atomic_path(file) as tmp:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if file.exists():
            # hard link (no copy) the current version as the backup, atomically
            with atomic_path(file.with_name(BACKUP_FILE)) as bak_tmp:
                try:
                    os.link(file, bak_tmp)
                except OSError:
                    bak_tmp.write_bytes(file.read_bytes())
    _fsync_dir(file.parent)


def save_story(
    story: Story,
    path: str | os.PathLike[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
) -> bool:
    """Write the story atomically; returns False when nothing changed.

    Raises `StoryConflictError` when the file on disk has another revision than
    the one ``story`` was loaded at: someone else saved in between, and writing
    now would silently drop their change. On success ``story.revision`` is the
    new revision on disk.
    """
    file = state_path(path)
    with story_lock(file, lock_timeout):
        backup = file.with_name(BACKUP_FILE)
        for pattern in (
            f".{file.stem}{TMP_MARK}-*{file.suffix}",
            f".{backup.stem}{TMP_MARK}-*{backup.suffix}",
        ):
            for stale in file.parent.glob(pattern):
                stale.unlink(missing_ok=True)  # left by a writer killed mid-save
        current = _current_text(file)
        if current is not None:
            disk_rev = _revision_on_disk(current)
            if disk_rev is None:
                corrupt = file.with_name(f"{file.name}.unreadable")
                os.replace(file, corrupt)
                log.warning("unreadable %s kept as %s", file, corrupt)
                current = None
            elif disk_rev != story.revision:
                raise StoryConflictError(
                    f"{file} changed since it was loaded (loaded revision "
                    f"{story.revision}, now {disk_rev} on disk); reload the story "
                    "and apply the change again"
                )
        text = dump_story(story)
        if text == current:
            return False
        story.revision += 1
        try:
            # The same text with the next revision (one dump instead of two).
            text, n = _REVISION_RE.subn(
                f'  "revision": {story.revision},', text, count=1
            )
            assert n == 1, "dump_story always writes a top-level revision line"
            parse_story(text, str(file))  # never write what would not load
            _atomic_write(file, text)
        except BaseException:
            story.revision -= 1
            raise
    return True


def update_story(
    path: str | os.PathLike[str],
    mutate: Callable[[Story], T],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
) -> T:
    """Load, apply ``mutate`` and save, all under the lock (no lost updates).

    This is the merge path for writers that do not hold a story in memory for
    long (the job runner, the CLI): the change is re-applied to the newest
    revision instead of being refused.
    """
    file = state_path(path)
    with story_lock(file, lock_timeout):
        story = load_story(file)
        result = mutate(story)
        save_story(story, file, lock_timeout=lock_timeout)
    return result
