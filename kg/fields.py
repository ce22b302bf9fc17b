"""Bounded field types of the story schema: text, ids, paths, numbers.

Every value is bounded, so no story can make a page, a prompt or a command
slow or crash (the limits are in characters):

=========================  ======================================================
names                      80 (characters, environments), 120 (scene titles),
                           200 (story title)
short text                 500 (pose, lighting, one visual attribute)
text                       2,000 (descriptions, motion)
prompts                    4,000 (prompt override, negative prompt, the
                           prompt a take was made from)
messages                   4,000 (take errors, notes, why a score is missing)
asset paths                1,024, at most 255 per folder or file name
lists                      64 characters per scene, 32 visual attributes or
                           reference images per character
numbers                    finite floats only (no NaN or Infinity); integers
                           within the ranges below
=========================  ======================================================

No text may hold control characters other than tab and line breaks (NUL, the
terminal's escape sequences...) or lone surrogates: they cannot be saved as
UTF-8, crash file systems and subprocesses, or rewrite a terminal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

__all__ = [
    "GgufPath",
    "MAX_NAME",
    "MAX_TITLE",
    "MAX_STORY_TITLE",
    "MAX_SHORT_TEXT",
    "MAX_TEXT",
    "MAX_PROMPT",
    "MAX_MESSAGE",
    "MAX_PATH",
    "MAX_PATH_PART",
    "MAX_KEY",
    "CONTROL_CHARACTERS",
    "bounded_text",
    "clip_message",
    "check_relative_path",
    "utc_now",
    "Name80",
    "ShortText",
    "Text",
    "Prompt",
    "Message",
    "Key",
    "Word",
    "ModelId",
    "EntityId",
    "RelPath",
    "Unit",
]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

MAX_NAME = 80
MAX_TITLE = 120
MAX_STORY_TITLE = 200
MAX_SHORT_TEXT = 500
MAX_TEXT = 2_000
MAX_PROMPT = 4_000
MAX_MESSAGE = 4_000
MAX_PATH = 1_024
MAX_PATH_PART = 255  # NAME_MAX of common file systems
MAX_KEY = 128
# C0 controls except tab, line feed and carriage return; DEL; C1 controls
# (0x9b is a one-byte terminal escape). Checked in Rust by pydantic.
CONTROL_CHARACTERS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_NO_CONTROLS = f"^[^{CONTROL_CHARACTERS}]*$"


def bounded_text(max_length: int, min_length: int = 0) -> StringConstraints:
    """Text of at most ``max_length`` characters and no control characters."""
    return StringConstraints(
        min_length=min_length, max_length=max_length, pattern=_NO_CONTROLS
    )


Name80 = Annotated[str, bounded_text(MAX_NAME, 1)]
ShortText = Annotated[str, bounded_text(MAX_SHORT_TEXT)]
Text = Annotated[str, bounded_text(MAX_TEXT)]
Prompt = Annotated[str, bounded_text(MAX_PROMPT)]
Message = Annotated[str, bounded_text(MAX_MESSAGE)]
Key = Annotated[str, bounded_text(MAX_KEY)]
Word = Annotated[str, bounded_text(MAX_KEY)]  # backend names, timestamps, keys
ModelId = Annotated[str, bounded_text(MAX_PATH)]  # a hub id or a local folder


def clip_message(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis), controls removed.

    For messages the program writes into a story (errors, notes), which must
    stay within the schema's limits whatever an exception said.

    >>> clip_message("boom\\x1b[31m!" + "x" * 10, 12)
    'boom[31m!xx…'
    """
    text = re.sub(f"[{CONTROL_CHARACTERS}]", "", text)
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def utc_now() -> str:
    """Current UTC time as an ISO 8601 string with seconds precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _shown(value: str, limit: int = 60) -> str:
    """A short repr of a user value for an error message."""
    return repr(value) if len(value) <= limit else repr(value[: limit - 3]) + "..."


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(
            f"ids use lowercase letters, digits, '-' and '_' (at most 64), "
            f"starting with a letter or digit; got {_shown(value)}"
        )
    return value


def check_relative_path(value: str) -> str:
    """Accept a POSIX path relative to the story folder that stays inside it.

    Examples
    --------
    >>> check_relative_path("scenes/s1/take-1.mp4")
    'scenes/s1/take-1.mp4'
    >>> check_relative_path("../secrets.txt")
    Traceback (most recent call last):
    ...
    ValueError: path '../secrets.txt' leaves the story folder; use a path inside it
    """
    if not value:
        raise ValueError("path is empty; give a path relative to the story folder")
    if len(value) > MAX_PATH:
        raise ValueError(
            f"path is {len(value)} characters long; use at most {MAX_PATH}"
        )
    if "\x00" in value:
        raise ValueError("path contains a NUL character; remove it")
    # Plain string checks: this runs for every asset path on every load.
    if "\\" in value or value[0] == "/" or value[1:2] == ":":
        raise ValueError(
            f"path {value!r} is absolute or uses backslashes; "
            "use a forward-slash path relative to the story folder"
        )
    parts = value.split("/")
    if ".." in parts:
        raise ValueError(
            f"path {value!r} leaves the story folder; use a path inside it"
        )
    if any(len(p) > MAX_PATH_PART for p in parts):
        raise ValueError(
            f"a folder or file name in the path is longer than {MAX_PATH_PART} "
            "characters; shorten it"
        )
    return value


EntityId = Annotated[str, AfterValidator(_check_id)]
RelPath = Annotated[str, bounded_text(MAX_PATH), AfterValidator(check_relative_path)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


def _check_gguf_path(value: str) -> str:
    value = value.strip()
    if value and not value.lower().endswith(".gguf"):
        raise ValueError(
            f"{value!r} is not a .gguf file; give the path of a GGUF transformer "
            "file, or leave it empty"
        )
    return value


# A model file outside the story (like ``ModelId`` folders): never written to.
GgufPath = Annotated[str, bounded_text(MAX_PATH), AfterValidator(_check_gguf_path)]
