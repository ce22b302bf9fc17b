"""Story text for line- and XML-oriented files: the one place writers clean it.

A title, a prompt or a name is the user's text; the files it is written into
have rules of their own. Every writer of such a file (the edit timelines of
`engine.film.timeline`, the dataset's manifest and README of
`engine.dataset`) passes user text through one of these functions:

- `one_line`: for line-oriented formats (a CMX 3600 EDL, a Markdown line,
  a name shown on one line), where a line break inside a field starts a new
  record. Every separator Python's ``str.splitlines`` knows (``\\n``, ``\\r``,
  ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, NEL ``\\x85``, LINE SEPARATOR
  ``\\u2028``, PARAGRAPH SEPARATOR ``\\u2029``) becomes one space, so no reader
  sees a new line there; so does a tab (a column break in tab-separated
  text, a plain space anyway once an XML attribute is read back).
- `xml_text`: for XML 1.0 (FCP X XML, FCP 7 XML), which can hold only
  ``Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
  [#x10000-#x10FFFF]`` (W3C XML 1.0, section 2.2): every other character
  (C0 controls, lone surrogates, U+FFFE and U+FFFF) is dropped. Markup
  characters (``< & ' "``) are the XML writer's to escape.
- `xml_line`: both, for XML attributes that name things (clip names).
- `storable`: the least every writer needs: lone surrogates (which UTF-8
  cannot encode and OpenTimelineIO refuses) become U+FFFD, and the control
  characters the story schema refuses (`kg.fields.CONTROL_CHARACTERS`: NUL
  ends an OpenTimelineIO string early) are dropped.
- `json_line`: one JSON Lines record that stays one line for every reader
  (NEL, ``\\u2028`` and ``\\u2029`` escaped; JSON leaves them raw).

Examples
--------
>>> one_line("Dawn\\r\\n005  AX V C\\u2028x")
'Dawn 005  AX V C x'
>>> xml_text("Ana's \\x0bboat\\ufffe")
"Ana's boat"
>>> json_line({"caption": "a\\u2028b"})
'{"caption": "a\\\\u2028b"}'
"""

from __future__ import annotations

import json
import re
from typing import Any

from kg.fields import CONTROL_CHARACTERS

__all__ = [
    "LINE_SEPARATORS",
    "storable",
    "one_line",
    "xml_text",
    "xml_line",
    "json_line",
]

# What str.splitlines splits on (CR LF counts once: runs become one space).
LINE_SEPARATORS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAKS = re.compile(f"[\t{re.escape(LINE_SEPARATORS)}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
# The complement of XML 1.0's Char production.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Characters JSON leaves raw that some line readers still split on.
_JSON_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def storable(text: object) -> str:
    """``text`` with lone surrogates replaced by U+FFFD and control characters
    (but tab and line breaks) dropped: every file can hold it."""
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", str(text)))


def one_line(text: object) -> str:
    """``text`` on one line: each run of line separators and tabs becomes one
    space (control characters dropped, as in `storable`)."""
    return storable(_LINE_BREAKS.sub(" ", str(text)))


def xml_text(text: object) -> str:
    """``text`` with the characters XML 1.0 cannot hold dropped (and those
    `storable` drops)."""
    return _NOT_XML.sub("", storable(text))


def xml_line(text: object) -> str:
    """``text`` for an XML attribute that names something: one line, XML-safe."""
    return xml_text(one_line(text))


def json_line(record: Any) -> str:
    """``record`` as one JSON Lines line (without its line end).

    UTF-8 characters are kept; the separators JSON does not escape are, so a
    reader that splits on any line separator still sees one record per line.
    """
    text = storable(json.dumps(record, ensure_ascii=False))
    for raw, escaped in _JSON_BREAKS.items():
        text = text.replace(raw, escaped)
    return text
