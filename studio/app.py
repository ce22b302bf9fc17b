"""StoryGraph Studio entry point: page routing only.

Run with ``streamlit run studio/app.py`` (``run_studio.sh`` does it). Pages
live one per file in ``studio/pages``; the Export page joins the navigation
when its module is installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if __package__ in (None, ""):  # `streamlit run studio/app.py` runs it as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st

__all__ = ["APP_TITLE", "build_pages", "main"]

APP_TITLE = "StoryGraph Studio"


def build_pages() -> dict[str, st.Page]:
    """Every page by its url path, in navigation order."""
    from studio.pages.cast import cast_page
    from studio.pages.insights import insights_page
    from studio.pages.settings import settings_page
    from studio.pages.stories import stories_page
    from studio.pages.storyboard import storyboard_page

    pages = {
        "stories": st.Page(
            stories_page, title="Stories", icon=":material/library_books:", default=True
        ),
        "storyboard": st.Page(
            storyboard_page,
            title="Storyboard",
            icon=":material/movie:",
            url_path="storyboard",
        ),
        "cast": st.Page(
            cast_page, title="Cast", icon=":material/groups:", url_path="cast"
        ),
        "insights": st.Page(
            insights_page,
            title="Insights",
            icon=":material/insights:",
            url_path="insights",
        ),
    }
    if importlib.util.find_spec("studio.pages.export") is not None:
        from studio.pages.export import export_page

        pages["export"] = st.Page(
            export_page,
            title="Export",
            icon=":material/inventory_2:",
            url_path="export",
        )
    pages["settings"] = st.Page(
        settings_page, title="Settings", icon=":material/settings:", url_path="settings"
    )
    return pages


def main() -> None:
    st.set_page_config(
        page_title=APP_TITLE, page_icon=":material/movie:", layout="wide"
    )
    st.navigation(list(build_pages().values())).run()


if __name__ == "__main__":
    main()
