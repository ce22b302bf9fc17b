"""Per-browser-session state shared by the pages: the open story and notices.

The open story lives in session state, mirrored in the ``?story=`` query
parameter and in a marker file under the outputs root, so a reloaded page (a
new session) opens the same story again.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import services

__all__ = ["STORY_KEY", "current_story", "open_story", "flash", "show_flashes"]

STORY_KEY = "studio.story"
FLASH_KEY = "studio.flash"


def _exists(folder: Path | None) -> bool:
    return folder is not None and (folder / services.STATE_FILE).exists()


def _initial_story() -> Path | None:
    slug = st.query_params.get("story")
    if slug and not services.check_slug(slug, root=Path("/nonexistent")):
        folder = services.outputs_root() / slug
        if _exists(folder):
            return folder
    return services.last_story()


def current_story() -> Path | None:
    """The folder of the story this session has open, or None."""
    if STORY_KEY not in st.session_state:
        folder = _initial_story()
        st.session_state[STORY_KEY] = str(folder) if folder else None
        if folder is not None:
            services.recover_interrupted(folder)
    value = st.session_state[STORY_KEY]
    folder = Path(value) if value else None
    if not _exists(folder):
        st.session_state[STORY_KEY] = None
        return None
    assert folder is not None
    if st.query_params.get("story") != folder.name:
        st.query_params["story"] = folder.name
    return folder


def open_story(folder: Path | None) -> None:
    """Make ``folder`` the open story of this session (None closes it)."""
    st.session_state[STORY_KEY] = str(folder) if folder else None
    if folder is None:
        st.query_params.pop("story", None)
    else:
        st.query_params["story"] = folder.name
        services.recover_interrupted(folder)
    services.remember_last_story(folder)


def flash(message: str, kind: str = "success") -> None:
    """A notice shown once, on the next run (after ``st.rerun``)."""
    st.session_state.setdefault(FLASH_KEY, []).append((kind, message))


def show_flashes() -> None:
    for kind, message in st.session_state.pop(FLASH_KEY, []):
        getattr(st, kind)(message)
