"""The studio's pages, in navigation order (one home for the app and the views).

Pages live one per file in ``studio/views``; the Export page joins the
navigation when its module is installed.
"""

from __future__ import annotations

import importlib.util

import streamlit as st

__all__ = ["build_pages"]


def build_pages() -> dict[str, st.Page]:
    """Every page by its url path, in navigation order."""
    from studio.views.cast import cast_page
    from studio.views.insights import insights_page
    from studio.views.screening import screening_page
    from studio.views.settings import settings_page
    from studio.views.stories import stories_page
    from studio.views.storyboard import URL_PATH, storyboard_page

    pages = {
        "stories": st.Page(
            stories_page, title="Stories", icon=":material/library_books:", default=True
        ),
        "storyboard": st.Page(
            storyboard_page,
            title="Storyboard",
            icon=":material/movie:",
            url_path=URL_PATH,
        ),
        "cast": st.Page(
            cast_page, title="Cast", icon=":material/groups:", url_path="cast"
        ),
        "screening": st.Page(
            screening_page,
            title="Screening",
            icon=":material/theaters:",
            url_path="screening",
        ),
        "insights": st.Page(
            insights_page,
            title="Insights",
            icon=":material/insights:",
            url_path="insights",
        ),
    }
    if importlib.util.find_spec("studio.views.export") is not None:
        from studio.views.export import export_page

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
