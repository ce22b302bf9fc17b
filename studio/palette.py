"""The colour of each scene status, for every view of a story.

One palette for the PNG (`studio.graph_image`), the studio's graph and its
legend, and the nearest of Streamlit's Markdown colour names for status text.
"""

from __future__ import annotations

__all__ = ["STATUS_COLOURS", "STATUS_TONES"]

STATUS_COLOURS = {
    "draft": "#9aa5b1",
    "queued": "#f0b429",
    "generating": "#2186eb",
    "done": "#3ebd93",
    "failed": "#e12d39",
    "interrupted": "#cb6e17",
    "stale": "#a368fc",
}

# Streamlit's ``:color[text]`` names closest to the palette above.
STATUS_TONES = {
    "draft": "gray",
    "queued": "orange",
    "generating": "blue",
    "done": "green",
    "failed": "red",
    "interrupted": "orange",
    "stale": "violet",
}
