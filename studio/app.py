"""StoryGraph Studio entry point: page routing only.

Run with ``streamlit run studio/app.py`` (``run_studio.sh`` does it). The
sidebar of every page shows the studio's generation queue
(`studio.components.jobs.queue_sidebar`). Pages
live one per file in ``studio/views``; the Export page joins the navigation
when its module is installed. (Not ``studio/pages``: Streamlit takes a
``pages/`` folder beside the entry script for its older multipage mode, and a
fresh server then shows a blank page for a link straight to ``/storyboard``.)
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `streamlit run studio/app.py` runs it as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st

from studio.literal import markdown_literal
from studio.navigation import build_pages

__all__ = ["APP_TITLE", "app_icon", "main"]

APP_TITLE = "StoryGraph Studio"


ABOUT = (
    "**StoryGraph Studio**: author a video story scene by scene as a knowledge "
    "graph, generate and score each scene, export training datasets."
)


@functools.cache
def app_icon() -> Any:
    """The tab icon, drawn here: served by the studio, so it shows offline too."""
    from PIL import Image, ImageDraw

    icon = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((2, 2, 62, 62), radius=14, fill="#102a43")
    draw.line((16, 40, 32, 22, 48, 40), fill="#9fb3c8", width=4)
    for x, y, color in ((16, 40, "#3ebd93"), (32, 22, "#2186eb"), (48, 40, "#f0b429")):
        draw.ellipse((x - 8, y - 8, x + 8, y + 8), fill=color)
    return icon


def main() -> None:
    st.set_page_config(
        page_title=APP_TITLE,
        page_icon=app_icon(),
        layout="wide",
        menu_items={"About": ABOUT},
    )
    try:
        navigation = st.navigation(list(build_pages().values()))
        with st.sidebar:  # the studio's one queue, on every page
            from studio.components.jobs import queue_sidebar

            queue_sidebar()
        navigation.run()
    except Exception as exc:  # a full disk: which file and what to free
        from engine.disk import disk_full_message

        message = disk_full_message(exc)
        if message is None:
            raise
        st.error(markdown_literal(message), icon=":material/hard_drive:")


if __name__ == "__main__":
    main()
