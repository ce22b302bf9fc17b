"""Strict JSON for story files: what `json.loads` lets through and a story must not.

RFC 8259 leaves duplicate object keys, non-finite numbers and number size to
the parser; Python's `json` takes the last duplicate, reads ``NaN`` and
``Infinity``, builds integers of any length (and raises past 4,300 digits) and
recurses until the interpreter's limit. A story file is refused instead, with
one problem per offending value named by its JSON path:

- bytes that are not UTF-8 (the offset of the first bad byte);
- nesting deeper than `MAX_DEPTH` (a story nests 6 levels);
- duplicate keys in one object (the story would silently lose one of them);
- ``NaN``, ``Infinity`` and ``-Infinity`` (JSON has no such numbers; a save
  would write ``null``);
- integers of more than `MAX_INT_DIGITS` digits;
- strings longer than `MAX_STRING` characters (no text field is near that;
  the schema's own limits then apply), and lone surrogates (``"\\ud800"``),
  which no UTF-8 file can hold.

Examples
--------
>>> loads_strict('{"a": 1, "a": 2}')
Traceback (most recent call last):
...
kg.strict_json.StrictJSONError: [('a', 'duplicate key; keep one of them')]
>>> loads_strict('{"x": [1, NaN]}')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
kg.strict_json.StrictJSONError: [('x[1]', 'NaN is not a JSON number; use a...')]
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_STRING",
    "StrictJSONError",
    "decode_utf8",
    "loads_strict",
    "may_hold_escapes_or_long_numbers",
]

MAX_DEPTH = 32
MAX_INT_DIGITS = 20  # 2**64 has 20 digits
MAX_STRING = 100_000
MAX_PROBLEMS = 50  # a broken file reports this many, then stops counting

_SURROGATE = re.compile("[\ud800-\udfff]")


class StrictJSONError(ValueError):
    """``problems`` are ``(json_path, message)`` pairs, ``$`` for the file."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(problems)


class _Bad:
    """Stands in for a value the parser must not build, until the walk names it."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Object(dict):
    """A parsed object that remembers the keys it saw twice."""

    __slots__ = ("duplicates",)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        obj.duplicates = sorted({k for k, _ in pairs if k in seen or seen.add(k)})  # type: ignore[func-returns-value]
    return obj


def _constant(name: str) -> _Bad:
    return _Bad(f"{name} is not a JSON number; use a finite number")


def _int(text: str) -> int | _Bad:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return _Bad(
            f"integer with {digits} digits; numbers have at most {MAX_INT_DIGITS}"
        )
    return int(text)


def _float(text: str) -> float | _Bad:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Bad(f"number {text[:30]} is too large for a float; use a smaller one")
    return value


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    plain = key.isidentifier() and len(key) <= 60
    shown = key if plain else json.dumps(key[:40] + ("..." if len(key) > 40 else ""))
    if not plain:
        return f"{parent}[{shown}]" if parent != "$" else f"$[{shown}]"
    return shown if parent == "$" else f"{parent}.{shown}"


def _check_string(value: str) -> str | None:
    if len(value) > MAX_STRING:
        return f"text of {len(value):,} characters; no field may exceed {MAX_STRING:,}"
    if _SURROGATE.search(value):
        return "text holds a lone surrogate (\\ud800-\\udfff); remove it"
    return None


def _walk(doc: Any) -> list[tuple[str, str]]:
    """Problems of a parsed document, by JSON path (iterative: no recursion)."""
    problems: list[tuple[str, str]] = []
    stack: list[tuple[str, Any, int]] = [("$", doc, 0)]
    while stack and len(problems) < MAX_PROBLEMS:
        path, value, depth = stack.pop()
        if isinstance(value, _Bad):
            problems.append((path, value.message))
        elif isinstance(value, str):
            why = _check_string(value)
            if why:
                problems.append((path, why))
        elif isinstance(value, dict):
            if depth >= MAX_DEPTH:
                problems.append((path, f"nested deeper than {MAX_DEPTH} levels"))
                continue
            for key in getattr(value, "duplicates", ()):
                problems.append((_path(path, key), "duplicate key; keep one of them"))
            for key, item in reversed(value.items()):
                why = _check_string(key)
                if why:
                    problems.append((path, f"a key: {why}"))
                    continue
                stack.append((_path(path, key), item, depth + 1))
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                problems.append((path, f"nested deeper than {MAX_DEPTH} levels"))
                continue
            stack.extend(
                (f"{path}[{i}]" if path != "$" else f"$[{i}]", item, depth + 1)
                for i, item in reversed(list(enumerate(value)))
            )
    return problems


def decode_utf8(data: bytes) -> str:
    """``data`` as text; `StrictJSONError` naming the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJSONError(
            [
                (
                    "$",
                    f"not UTF-8 text: byte {exc.object[exc.start]:#04x} at offset "
                    f"{exc.start} ({exc.reason}); save the file as UTF-8",
                )
            ]
        ) from None


# A lone surrogate can only come from a ``\ud800``-style escape (the text is
# valid UTF-8): one cheap scan says the careful parse is needed.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


# Every digit as "0", every other byte as a space: a run of more digits than
# an integer may have is then a plain substring (found at C speed).
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_TOO_MANY_DIGITS = b"0" * (MAX_INT_DIGITS + 1)


def may_hold_escapes_or_long_numbers(text: str) -> bool:
    """Whether ``text`` may hold a lone surrogate escape or an integer longer
    than `MAX_INT_DIGITS` digits (a scan, not a parse: digits inside strings
    count too, so it errs towards True)."""
    if _SURROGATE_ESCAPE.search(text):
        return True
    data = text.encode("utf-8", "surrogatepass")
    return _TOO_MANY_DIGITS in data.translate(_DIGITS_AS_ZERO)


class _Careful(Exception):
    """The quick parse met something only the careful parse can name."""


def _quick_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Careful
    return obj


def _quick_constant(name: str) -> Any:
    raise _Careful


def loads_strict(text: str) -> Any:
    """Parse ``text`` as JSON, refusing what a story file must not hold.

    A valid story takes the quick path: one C-level parse that only calls
    back for each object (to see duplicate keys) and for NaN/Infinity, after
    one regex scan for surrogate escapes. Whatever looks wrong is parsed again
    carefully, value by value, so every problem gets its JSON path. (Long
    integers and strings that pass the quick parse are refused by the
    schema's bounds, with short messages.)
    """
    if not _SURROGATE_ESCAPE.search(text):
        try:
            return json.loads(
                text, object_pairs_hook=_quick_object, parse_constant=_quick_constant
            )
        except _Careful:
            pass
        except (json.JSONDecodeError, RecursionError, ValueError):
            pass  # the careful parse says where and why
    return _loads_careful(text)


def _loads_careful(text: str) -> Any:
    """`loads_strict`'s careful parse: every problem by JSON path."""
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_int=_int,
            parse_float=_float,
        )
    except json.JSONDecodeError as exc:
        raise StrictJSONError(
            [
                (
                    "$",
                    f"not valid JSON: {exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno}",
                )
            ]
        ) from None
    except RecursionError:
        raise StrictJSONError(
            [("$", f"nested far deeper than {MAX_DEPTH} levels; not a story")]
        ) from None
    problems = _walk(doc)
    if problems:
        raise StrictJSONError(problems)
    return doc
