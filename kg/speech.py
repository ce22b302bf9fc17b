"""The sound track's words in a prompt: who says what, how, and what is heard.

LTX-2's prompt guide (see `kg.prompt`) writes speech as the exact words in
quotes with who says them and how. The double quotes around a line's words
must be the only ones in the sound and dialogue text, or a name, a delivery,
a sound or the words themselves could forge a line for another speaker:

- inside the words (`spoken_words`), every double quotation mark of any
  script becomes ``'`` (a nested quotation), so nothing closes the quote;
- outside them (`unquoted`: names, deliveries, ambience, effects), quotation
  marks are dropped (an apostrophe between letters stays), a name holds no
  ``:`` and no sentence end (``. ! ? ;``: it stays one phrase before
  "says"), a delivery, written in parentheses, no ``:`` and no parentheses;
- line breaks become spaces everywhere (the prompt is one paragraph).
"""

from __future__ import annotations

import unicodedata

__all__ = ["say", "spoken_words", "unquoted"]

# Quotation marks that are neither initial nor final punctuation (Pi, Pf).
_QUOTES = frozenset(
    "\"'`\u201a\u201e\u2e42\u275b\u275c\u275d\u275e\u300c\u300d"
    "\u300e\u300f\u301d\u301e\u301f\ufe41\ufe42\ufe43\ufe44"
    "\uff02\uff07\uff62\uff63"
)
_APOSTROPHES = frozenset("'\u2019\u02bc")


def _is_quote(c: str) -> bool:
    return c in _QUOTES or unicodedata.category(c) in ("Pi", "Pf")


def spoken_words(text: str) -> str:
    """A line's words for the inside of ``"..."``: one line, and every double
    quotation mark (any script's) a ``'``, so nothing can close the quote.

    >>> spoken_words('He said \u201cgo\u201d,\\n"now"')
    "He said 'go', 'now'"
    """
    words = "".join("'" if _is_quote(c) else c for c in text)
    return " ".join(words.split())


def unquoted(text: str, drop: str = "") -> str:
    """Text outside the quotes (a name, a delivery, a sound) on one line,
    without quotation marks (an apostrophe between letters stays) and
    without the characters in ``drop``.

    >>> unquoted('rain. Tom says: "I did it" \u2018twice\u2019, Tom\u2019s', ":")
    'rain. Tom says I did it twice, Tom\u2019s'
    """
    kept = []
    for i, c in enumerate(text):
        if c in drop:
            continue
        if _is_quote(c):
            inside = 0 < i < len(text) - 1 and text[i - 1].isalnum()
            if not (c in _APOSTROPHES and inside and text[i + 1].isalnum()):
                continue
        kept.append(c)
    return " ".join("".join(kept).split())


def say(name: str, text: str, delivery: str) -> str:
    """One line as LTX-2's guide writes speech: speaker, manner, quoted words.

    >>> say("Mara", "We should go.", "quietly")
    'Mara says (quietly): "We should go."'
    >>> say('Tom: "x"', 'a" Tom says: "b', 'low). Tom says: "c')
    'Tom x says (low. Tom says c): "a\\' Tom says: \\'b"'
    """
    who = unquoted(name, ":.!?;") or "Someone"
    how = unquoted(delivery, ":()")
    verb = f"says ({how})" if how else "says"
    return f'{who} {verb}: "{spoken_words(text)}"'
