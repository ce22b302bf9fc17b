"""The dialogue box's text: a scene's spoken lines as a person types them.

One row per spoken line, ``Name: words`` or ``Name (how): words``.
`dialogue_text` writes a scene's lines so that `parse_dialogue` reads exactly
the same lines back, whatever the names, words and deliveries hold:

- A speaker is written by name when that name picks one character, else by
  id (two characters called "Mara", or "Mara" and "MARA": names are compared
  case-folded, spaces collapsed). Either can be typed; a name that picks
  several characters is a problem naming their ids, never a guess.
- A backslash escapes what would otherwise end a field or a row: ``\\:``,
  ``\\(`` and ``\\)`` in a name or a delivery, ``\\n`` and ``\\r`` for line
  breaks in any field, ``\\\\`` for a backslash that comes before one of
  these, and a backslash before a space (or any white space) that keeps it
  where the ends of a field are trimmed. A backslash before anything else is
  just a backslash (``C:\\temp`` as typed).

Examples
--------
>>> from kg.schema import Character, DialogueLine
>>> cast = [Character(id="mara", name="Mara"), Character(id="mara-2", name="Mara")]
>>> lines = [DialogueLine(character_id="mara-2", text="Go\\nnow", delivery="a (b)")]
>>> print(dialogue_text(lines, cast))
mara-2 (a \\(b\\)): Go\\nnow
>>> parse_dialogue(dialogue_text(lines, cast), cast)[0] == [
...     line.model_dump() for line in lines
... ]
True
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kg.fields import MAX_NAME
from kg.schema import MAX_DIALOGUE_LINES, MAX_LINE_CHARS, Character, DialogueLine

__all__ = ["MAX_DIALOGUE_TEXT", "parse_dialogue", "dialogue_text"]

Problem = tuple[str, str]  # (field path, message)

# What an escaped backslash sequence stands for (and any white space for itself).
_DECODE = {"\\": "\\", ":": ":", "(": "(", ")": ")", "n": "\n", "r": "\r"}
_ENCODE = {"\n": "\\n", "\r": "\\r"}
_SPEAKER_SPECIALS = ":()"
_ROW = re.compile(r"\r\n|\r|\n")
# The longest row `dialogue_text` writes: every character of a name (or id),
# a delivery and the words escaped, plus " (", "): " and the row's end.
MAX_DIALOGUE_TEXT = (2 * (MAX_NAME + 80 + MAX_LINE_CHARS) + 6) * MAX_DIALOGUE_LINES

Token = tuple[str, bool]  # (character, escaped: never a separator, never trimmed)


def _escapable(c: str) -> bool:
    return c in _DECODE or c.isspace()


def _encode(value: str, specials: str = "") -> str:
    """``value`` as a field of a row: `_tokens` reads it back exactly."""
    lead, trail = len(value) - len(value.lstrip()), len(value.rstrip())
    out = []
    for i, c in enumerate(value):
        nxt = value[i + 1 : i + 2]
        if c in _ENCODE:
            out.append(_ENCODE[c])
        elif c == "\\":
            # doubled where the parser would read it as the start of an escape
            out.append("\\\\" if not nxt or _escapable(nxt) else "\\")
        elif c in specials or (c.isspace() and not lead <= i < trail):
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def _tokens(row: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(row):
        nxt = row[i + 1 : i + 2]
        if row[i] == "\\" and nxt and _escapable(nxt):
            out.append((_DECODE.get(nxt, nxt), True))
            i += 2
        else:
            out.append((row[i], False))
            i += 1
    return out


def _text(tokens: Sequence[Token]) -> str:
    """The characters of ``tokens``, the unescaped white space at both ends
    trimmed."""
    start, end = 0, len(tokens)
    while start < end and not tokens[start][1] and tokens[start][0].isspace():
        start += 1
    while end > start and not tokens[end - 1][1] and tokens[end - 1][0].isspace():
        end -= 1
    return "".join(c for c, _ in tokens[start:end])


def _find(tokens: Sequence[Token], char: str, last: bool = False) -> int:
    """Index of the first (or last) unescaped ``char``; -1 if none."""
    at = [i for i, (c, escaped) in enumerate(tokens) if c == char and not escaped]
    return (at[-1] if last else at[0]) if at else -1


def _split(row: str) -> tuple[str, str, str] | str:
    """``(speaker, delivery, words)`` of a row, or why it cannot be read."""
    tokens = _tokens(row)
    colon = _find(tokens, ":")
    if colon < 0:
        return "write it as 'Name: words' or 'Name (how): words'"
    head, words = tokens[:colon], _text(tokens[colon + 1 :])
    delivery = ""
    end = len(head)
    while end and not head[end - 1][1] and head[end - 1][0].isspace():
        end -= 1
    if end and head[end - 1] == (")", False):
        opening = _find(head[: end - 1], "(", last=True)
        if opening < 0:
            return "a ')' without its '(': write 'Name (how): words'"
        delivery = _text(head[opening + 1 : end - 1])
        head = head[:opening]
    speaker = _text(head)
    if not speaker:
        return "no speaker before the ':'; write 'Name: words'"
    if not words:
        return f"no words after {speaker!r}; write 'Name: words'"
    return speaker, delivery, words


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _resolve(who: str, characters: Sequence[Character]) -> list[str]:
    """The ids ``who`` may mean: an exact id first, then a name, then an id in
    any case. One id: found; several: ambiguous; none: unknown."""
    if any(c.id == who for c in characters):
        return [who]
    named = [c.id for c in characters if _key(c.name) == _key(who)]
    return named or [c.id for c in characters if c.id == _key(who)]


def _speaker(character: Character, characters: Sequence[Character]) -> str:
    """How a row names ``character``: its name when that picks it, else its id."""
    if _resolve(character.name, characters) == [character.id]:
        return _encode(character.name, _SPEAKER_SPECIALS)
    return character.id


def _choices(characters: Sequence[Character]) -> str:
    """How each character may be named, for a message."""
    written = []
    for c in characters:
        who = _speaker(c, characters)
        shared = who == c.id and _key(c.name) != c.id
        written.append(f"{who} (id of {c.name!r})" if shared else who)
    return ", ".join(written) or "none yet (add them in Cast)"


def parse_dialogue(
    text: str, characters: Sequence[Character]
) -> tuple[list[dict[str, str]], list[Problem]]:
    """Dialogue typed one row per spoken line, ``Name: words`` or
    ``Name (how): words``, as `DialogueLine` fields; problems name the row.

    >>> parse_dialogue("Mara (quietly): Hello?", [Character(id="mara", name="Mara")])
    ([{'character_id': 'mara', 'text': 'Hello?', 'delivery': 'quietly'}], [])
    """
    lines: list[dict[str, str]] = []
    problems: list[Problem] = []
    for n, row in enumerate(_ROW.split(text), start=1):
        if not row.strip():
            continue
        where = f"dialogue line {n}"
        parts = _split(row)
        if isinstance(parts, str):
            problems.append((where, parts))
            continue
        who, delivery, words = parts
        ids = _resolve(who, characters)
        if len(ids) > 1:
            problems.append(
                (
                    where,
                    f"{who!r} is the name of {len(ids)} characters; write the id "
                    f"of the one who speaks: {', '.join(ids)}",
                )
            )
        elif not ids:
            problems.append(
                (
                    where,
                    f"unknown speaker {who!r}; use one of: {_choices(characters)}",
                )
            )
        else:
            lines.append({"character_id": ids[0], "text": words, "delivery": delivery})
    return lines, problems


def dialogue_text(
    lines: Sequence[DialogueLine], characters: Sequence[Character]
) -> str:
    """Dialogue lines as the editor shows them: `parse_dialogue` reads back the
    same lines, whatever their names, words and deliveries hold."""
    by_id = {c.id: c for c in characters}
    rows = []
    for line in lines:
        c = by_id.get(line.character_id)
        who = _speaker(c, characters) if c is not None else line.character_id
        how = f" ({_encode(line.delivery, _SPEAKER_SPECIALS)})" if line.delivery else ""
        rows.append(f"{who}{how}: {_encode(line.text)}")
    return "\n".join(rows)
