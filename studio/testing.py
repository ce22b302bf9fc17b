"""Streamlit AppTest harness for the studio's pages (tests and benchmarks).

`page_test` runs one page function as a script with a story already open,
the way the navigation would, so a test or a benchmark drives one page
without the router.
"""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from studio.session import STORY_KEY

__all__ = ["PAGES", "page_test", "app_test", "shown_text"]

PAGES = ("stories", "storyboard", "cast", "insights", "settings")
APP_FILE = Path(__file__).with_name("app.py")


def _page_script(page: str) -> None:
    import importlib

    module = importlib.import_module(f"studio.views.{page}")
    getattr(module, f"{page}_page")()


def page_test(
    page: str, story_dir: Path | None = None, *, timeout: float = 60
) -> AppTest:
    """An AppTest of one page (not yet run), with ``story_dir`` open."""
    assert page in PAGES, f"unknown page {page!r}; one of {PAGES}"
    at = AppTest.from_function(_page_script, args=(page,), default_timeout=timeout)
    if story_dir is not None:
        at.session_state[STORY_KEY] = str(story_dir)
    return at


def app_test(*, timeout: float = 60) -> AppTest:
    """An AppTest of the whole app, navigation included (not yet run)."""
    return AppTest.from_file(str(APP_FILE), default_timeout=timeout)


def shown_text(at: AppTest) -> str:
    """The text of every notice, Markdown block and caption, as a reader sees it.

    AppTest reports Markdown source; user text in it is backslash-escaped
    (`kg.literal.markdown_literal`), so the escapes are removed here.
    """
    kinds = ("error", "warning", "success", "info", "markdown", "caption")
    source = "\n".join(str(e.value) for k in kinds for e in getattr(at, k))
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", source)
