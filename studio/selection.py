"""The selected scene of each story: kept in session state and in the URL.

The Storyboard's "Scene" select box is a widget, and Streamlit forgets a
widget's value on a page that does not draw it; the selection therefore lives
here too, per story folder, and in the ``?scene=`` query parameter beside
``?story=`` (`studio.session`), so a page change, a reload, a bookmark or a
restarted studio opens the same scene again.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

__all__ = ["SCENE_PARAM", "remembered_scene", "remember_scene", "scene_in_url"]

SCENE_PARAM = "scene"
_SCENES_KEY = "studio.selected_scenes"  # {story folder: scene id}


def _chosen() -> dict[str, str]:
    return st.session_state.setdefault(_SCENES_KEY, {})


def remembered_scene(folder: Path) -> str | None:
    """The scene last selected in ``folder`` this session, else the URL's."""
    return _chosen().get(str(folder)) or st.query_params.get(SCENE_PARAM)


def remember_scene(folder: Path, scene_id: str | None) -> None:
    """Make ``scene_id`` the story's selected scene here and in the URL."""
    chosen = _chosen()
    if scene_id is None:
        chosen.pop(str(folder), None)
        st.query_params.pop(SCENE_PARAM, None)
        return
    chosen[str(folder)] = scene_id
    if st.query_params.get(SCENE_PARAM) != scene_id:
        st.query_params[SCENE_PARAM] = scene_id


def scene_in_url(folder: Path) -> None:
    """Put the story's selected scene back in the URL (every page calls this:
    changing page clears the query parameters)."""
    scene_id = _chosen().get(str(folder))
    if scene_id is not None and st.query_params.get(SCENE_PARAM) != scene_id:
        st.query_params[SCENE_PARAM] = scene_id
