"""User text shown literally: in a terminal (Rich) and in Markdown (Streamlit).

Story text is data. A title like ``[bold red]x[/]`` must not restyle a Rich
table (nor crash it with a markup error), ``\\x1b]0;...`` must not rewrite the
terminal, ``![x](http://host/pixel.png)`` or ``<img onerror=...>`` must not
make the browser fetch or run anything, and a bare ``www.host`` or
``http://host`` must not become a link. Every front end passes user text
through one of these two functions before it reaches a renderer that
interprets it.

Examples
--------
>>> terminal_literal("[red]boom[/] \\x1b[2J")
'\\\\[red]boom\\\\[/] \\\\x1b[2J'
>>> print(markdown_literal("![x](http://e.vil/p.png) <b>*hi*</b>")) # doctest: +ELLIPSIS
!\\[x\\](http\\:...//e.vil/p.png) \\<b\\>\\*hi\\*\\</b\\>
>>> print(markdown_literal(":red[x] $x$ Ana's 1. walk"))
\\:red\\[x\\] \\$x\\$ Ana's 1. walk
>>> print(markdown_code("a`b"))
``a`b``
>>> print(markdown_literal("1. Intro\\n- dash"))
1\\. Intro
\\- dash
>>> markdown_literal("www.e.vil a@e.vil").replace(WORD_JOINER, "|")
'www|.e.vil a@|e.vil'
"""

from __future__ import annotations

import re

__all__ = ["terminal_literal", "markdown_literal", "markdown_code", "WORD_JOINER"]

# Every control character but tab and line feed, shown as an escape instead.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# CommonMark lets any ASCII punctuation be backslash-escaped. Escaped
# everywhere: what can embed (``![``), link (``[``), run HTML (``<``), format
# (``* _ ~ ` |``), start Streamlit's ``:color[...]``, ``:material/...:`` or
# emoji directives (``:``) or its LaTeX (``$``). At a line start also what
# makes a heading, list or quote.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>$|~#:])")
# GitHub-flavoured Markdown (remark-gfm, which Streamlit uses) turns bare
# ``http(s)://host``, ``www.host`` and ``name@host.tld`` into links, after
# backslash escapes are resolved, so escaping cannot stop it. An invisible
# WORD JOINER (U+2060) inside each (after the colon of ``://``, between
# ``www`` and its dot, after ``@``) breaks the pattern it looks for
# (mdast-util-gfm-autolink-literal) and shows nothing.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
_LINE_START = re.compile(r"^([ \t]*)([-+=]|\d+(?=[.)]))", re.MULTILINE)


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def terminal_literal(text: object) -> str:
    """``text`` for a Rich console: markup escaped, control characters visible."""
    from rich.markup import escape

    return escape(_CONTROL.sub(_visible, str(text)))


def markdown_literal(text: object) -> str:
    """``text`` for Markdown: every character that could format, link, embed an
    image or HTML, or start a Streamlit directive is escaped, and bare URLs and
    e-mail addresses are kept from becoming links; line breaks stay.
    """
    text = _AUTOLINK.sub(WORD_JOINER, _CONTROL.sub(_visible, str(text)))
    text = _MARKDOWN.sub(r"\\\1", text)
    return _LINE_START.sub(_escape_list_marker, text)


def _escape_list_marker(match: re.Match[str]) -> str:
    indent, marker = match.groups()
    if marker.isdigit():  # "1. Intro": escape the dot or parenthesis after it
        return indent + marker + "\\"
    return indent + "\\" + marker


def markdown_code(text: object) -> str:
    """``text`` as a Markdown code span: shown verbatim, whatever it holds.

    The fence is one backtick longer than the longest run inside (CommonMark's
    rule), so no backtick in ``text`` can close the span early.
    """
    body = _CONTROL.sub(_visible, str(text)).replace("\n", " ")
    runs = re.findall(r"`+", body)
    fence = "`" * (max(map(len, runs), default=0) + 1)
    if body.startswith("`") or body.endswith("`"):
        body = f" {body} "
    return f"{fence}{body}{fence}"
