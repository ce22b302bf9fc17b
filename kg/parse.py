"""Story files as text: parsing, validation problems, migrations, the dump.

`parse_story` turns any text into a `Story` or a `StoryValidationError` whose
problems name their JSON paths; older ``schema_version`` documents are
migrated first (`MIGRATIONS`). `dump_story` is the exact text a save writes.
Reading and writing files (atomic, locked, with a backup) is `kg.store`'s.

Parsing and validating a story builds hundreds of thousands of small objects
at once (a 10,000-scene story: about 40 MB of JSON); Python's cyclic garbage
collector would scan the growing heap again and again meanwhile, which cost
two thirds of a load. `parse_story` holds the collector off for that moment
(`kg.heap.building_tree`).

A save validates its own text (`check_dump`); `loads_as_dumped` says when a
load of that very text may take the story the save built instead of
validating it again (`kg.store.load_story`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import ValidationError

from kg.errors import StoryValidationError
from kg.heap import building_tree
from kg.schema import SCHEMA_VERSION, Story
from kg.strict_json import (
    MAX_DEPTH,
    MAX_STRING,
    StrictJSONError,
    decode_utf8,
    loads_strict,
    may_hold_escapes_or_long_numbers,
)

__all__ = [
    "MAX_STATE_BYTES",
    "MIGRATIONS",
    "building_tree",
    "check_dump",
    "loads_as_dumped",
    "parse_story",
    "parse_story_bytes",
    "dump_story",
    "format_json_path",
    "validation_problems",
]

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


def _v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    """Sampling recipes and the join strength: new fields with defaults (a
    version-2 take has no recipe; joins hold at the new default, 1)."""
    return doc


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
}


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
    with building_tree():
        return _parse_story(text, source)


def _parse_story(text: str, source: str) -> Story:
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


def check_dump(text: str, source: str = "kg_state.json") -> Story | None:
    """Refuse a save whose text would not load, as `parse_story` would.

    ``text`` is `dump_story`'s (pydantic's serialiser): it has no duplicate
    keys, no NaN (written as ``null``, which the schema refuses where a number
    belongs) and no lone surrogate (the serialiser refuses one), so the JSON
    layer has nothing to find, and the story is validated straight from the
    text by pydantic's JSON core; that story is returned (`loads_as_dumped`
    says when a load of ``text`` may take it instead of validating again). A
    document of an older schema version goes through `parse_story` and its
    migrations, and None is returned.
    """
    if not text.startswith(f'{{\n  "schema_version": {SCHEMA_VERSION},'):
        parse_story(text, source)
        return None
    with building_tree():
        try:
            return Story.model_validate_json(text)
        except ValidationError as exc:
            raise StoryValidationError(source, validation_problems(exc)) from None


# A value nested `MAX_DEPTH` deep in `dump_story`'s text is indented this much.
_DEEP_LINE = "\n" + " " * (2 * MAX_DEPTH)


def _longest_line(text: str) -> int:
    """Characters in the longest line of ``text`` (UTF-8 bytes: an upper bound)."""
    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
    ends = np.flatnonzero(data == 0x0A)
    bounds = np.concatenate(([-1], ends, [len(data)]))
    return int(np.diff(bounds).max()) - 1


def loads_as_dumped(text: str, story: Story) -> bool:
    """Whether `parse_story` of ``text`` is exactly ``story`` (`check_dump`'s).

    True only when ``text`` is ``story``'s own dump, byte for byte (so it holds
    no duplicate key, NaN, long integer or lone surrogate: each would dump
    differently) and nothing in it comes near the JSON layer's other limits
    (no ``NaN`` or ``Infinity`` even inside a string, no line indented
    `MAX_DEPTH` levels, none as long as `MAX_STRING`). Then
    loading ``text`` may hand out ``story`` without validating it again; any
    doubt answers False, and the load takes the careful path.
    """
    if _DEEP_LINE in text or "NaN" in text or "Infinity" in text:
        return False
    if may_hold_escapes_or_long_numbers(text):
        return False
    if len(text) >= MAX_STRING and _longest_line(text) >= MAX_STRING:
        return False
    with building_tree():
        return dump_story(story) == text


def dump_story(story: Story) -> str:
    """The exact text `save_story` writes (stable: same story, same bytes)."""
    return story.model_dump_json(indent=2) + "\n"
