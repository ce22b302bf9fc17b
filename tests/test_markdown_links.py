"""Bare URLs and e-mail addresses in user text do not become links: Streamlit's
Markdown (remark-gfm) links ``http(s)://``, ``www.`` and ``name@host.tld``
after resolving backslash escapes, so `markdown_literal` breaks each with an
invisible word joiner. Checked with the patterns remark-gfm itself looks for
(mdast-util-gfm-autolink-literal), on the function and on a page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kg.store import update_story
from studio import services
from studio.literal import WORD_JOINER, markdown_literal
from studio.testing import page_test, shown_text

# mdast-util-gfm-autolink-literal's find patterns (JavaScript's \w is ASCII).
_GFM_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)", re.IGNORECASE | re.ASCII)
_GFM_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", re.ASCII)
# What CommonMark makes of a backslash escape: the character alone.
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")

HOSTILE = [
    "http://e.vil/track?x=1",
    "HTTPS://E.VIL",
    "see https://e.vil/a_(b) now",
    "www.e.vil",
    "WwW.e.vil/path",
    "(www.e.vil)",
    "mail a.b+c@e.vil.example",
    "ftp://e.vil and mailto:x@e.vil",
    "[click](http://e.vil) <http://e.vil>",
    "line one\nhttp://e.vil on line two",
]


def _linked(markdown: str) -> list[str]:
    """What remark-gfm would turn into links in ``markdown``'s text."""
    text = _ESCAPE.sub(r"\1", markdown)
    return [m.group() for m in (*_GFM_URL.finditer(text), *_GFM_EMAIL.finditer(text))]


@pytest.mark.parametrize("text", HOSTILE)
def test_bare_urls_and_addresses_are_not_linked(text: str) -> None:
    assert _linked(text), "the pattern would link the raw text"
    shown = markdown_literal(text)
    assert _linked(shown) == []
    # what a reader sees is the text itself (the joiner has no width)
    assert _ESCAPE.sub(r"\1", shown).replace(WORD_JOINER, "") == text


def test_a_page_shows_a_title_with_urls_as_plain_text(outputs: Path) -> None:
    folder = services.create_story("lighthouse", "", example=True)
    title = "Go to www.e.vil or http://e.vil/x, write a@e.vil"

    def retitle(story) -> None:  # noqa: ANN001 - kg.schema.Story
        story.scenes[0].title = title

    update_story(folder, retitle)
    at = page_test("screening", folder).run()
    assert not at.exception
    sources = [str(m.value) for m in at.markdown if "e.vil" in str(m.value)]
    assert sources, shown_text(at)
    assert all(_linked(s) == [] for s in sources), sources
    assert title in shown_text(at)
