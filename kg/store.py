"""Crash-safe persistence of ``kg_state.json``.

A save is atomic (temp file, fsync, rename), keeps the previous version as
``kg_state.json.bak``, runs under a file lock, and is refused when the file
changed on disk since the story was loaded (its ``revision`` moved on). Loading
only parses JSON and validates it; nothing in the file is ever executed. A
load of the bytes this process has just saved takes the story the save
validated (`_Validated`), so a save and a load validate once.

Story folder layout::

    <story>/kg_state.json
    <story>/kg_state.json.bak
    <story>/scenes/<scene>/take-<n>.{mp4,first.png,last.png,latents.safetensors}
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from kg.errors import (
    StoryConflictError,
    StoryFileError,
    StoryLockedError,
    StoryValidationError,
    UnsafePathError,
)
from kg.parse import (
    MAX_STATE_BYTES,
    MIGRATIONS,
    check_dump,
    dump_story,
    format_json_path,
    loads_as_dumped,
    parse_story,
    parse_story_bytes,
    validation_problems,
)
from kg.paths import (
    TMP_MARK,
    atomic_path,
    read_regular_file,
    refuse_link,
)
from kg.schema import Story

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
T = TypeVar("T")
_REVISION_RE = re.compile(r'^  "revision": (\d+),?$', re.MULTILINE)


def state_path(path: str | os.PathLike[str]) -> Path:
    """The ``kg_state.json`` of a story folder (or the file itself)."""
    p = Path(path)
    return p if p.suffix == ".json" or p.name == BACKUP_FILE else p / STATE_FILE


class _Validated:
    """The story the last save validated, for the next load of its bytes.

    A save validates its text (`kg.parse.check_dump`), which builds the very
    `Story` a load of that text would build; the next `load_story` that reads
    exactly those bytes takes it instead of parsing and validating them again
    (a save and a load validate once). One story, handed out once: later
    loads, other bytes and texts `kg.parse.loads_as_dumped` doubts go the
    careful way.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: tuple[bytes, str, Story] | None = None

    def put(self, data: bytes, text: str, story: Story) -> None:
        with self._lock:
            self._entry = (data, text, story)

    def take(self, data: bytes) -> Story | None:
        """The saved story when ``data`` are its bytes and a load may take it."""
        with self._lock:
            if self._entry is None or self._entry[0] != data:
                return None
            _, text, story = self._entry
            self._entry = None
        return story if loads_as_dumped(text, story) else None


_validated = _Validated()


def load_story(path: str | os.PathLike[str]) -> Story:
    """Load and validate a story from its folder or its ``kg_state.json``.

    When the state file is missing but a backup exists (a save interrupted in
    its first instant on a file system without hard links), the backup loads.
    Bytes this process has just saved come back as the story their save
    validated (`_Validated`).
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
    except (OSError, UnsafePathError, StoryFileError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        problem = ("$", f"cannot read: {reason}")
        raise StoryValidationError(str(file), [problem]) from None
    story = _validated.take(data)
    if story is not None:
        return story
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


def _write_synced(tmp: Path, data: bytes) -> None:
    with open(tmp, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _atomic_write(file: Path, text: str, check: Callable[[], None]) -> None:
    """`kg.paths.atomic_path`, keeping the version it replaces as the backup.

    ``check`` (the save's validation) runs while a thread writes and syncs
    the temporary file (the disk's wait and the CPU's work overlap); the file
    replaces the old one only once both are done and ``check`` has passed.
    """
    data = text.encode("utf-8")
    with atomic_path(file) as tmp:
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-write")
        try:
            written = writer.submit(_write_synced, tmp, data)
            try:
                check()
            finally:
                written.result()  # the file is complete (or its error raised)
        finally:
            writer.shutdown(wait=True)
        if file.exists():
            # hard link (no copy) the current version as the backup, atomically
            with atomic_path(file.with_name(BACKUP_FILE)) as bak_tmp:
                try:
                    os.link(file, bak_tmp)
                except OSError:
                    bak_tmp.write_bytes(file.read_bytes())
    _fsync_dir(file.parent)


def _check(text: str, source: str, validated: list[Story]) -> None:
    """`check_dump`; the story it built from ``text`` joins ``validated``."""
    story = check_dump(text, source)
    if story is not None:
        validated.append(story)


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
            validated: list[Story] = []
            # never write what would not load: validated while it is written
            _atomic_write(
                file, text, functools.partial(_check, text, str(file), validated)
            )
        except BaseException:
            story.revision -= 1
            raise
        data = text.encode("utf-8") if validated else b""
        if validated and len(data) <= MAX_STATE_BYTES:  # else a load refuses it
            _validated.put(data, text, validated[0])
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
