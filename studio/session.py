"""Per-browser-session state shared by the pages: the open story, notices, drafts.

The open story lives in session state, mirrored in the ``?story=`` query
parameter and in a marker file under the outputs root, so a reloaded page (a
new session) opens the same story again. Editors keep what the user typed as
drafts per story and item, so leaving a page, switching items or a failed
validation never loses it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from studio import services
from studio.literal import markdown_code as code
from studio.literal import markdown_literal as md
from studio.selection import SCENE_PARAM, scene_in_url

__all__ = [
    "STORY_KEY",
    "NO_STORY",
    "current_story",
    "open_story",
    "story_page",
    "flash",
    "show_flashes",
    "seed_draft",
    "remember_draft",
    "forget_draft",
]

STORY_KEY = "studio.story"
FLASH_KEY = "studio.flash"
NO_STORY = "No story is open: create or open one on the Stories page."


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
    scene_in_url(folder)  # the selected scene, too (`studio.selection`)
    return folder


def open_story(folder: Path | None) -> None:
    """Make ``folder`` the open story of this session (None closes it)."""
    st.session_state[STORY_KEY] = str(folder) if folder else None
    st.query_params.pop(SCENE_PARAM, None)  # the scene of another story
    if folder is None:
        st.query_params.pop("story", None)
    else:
        st.query_params["story"] = folder.name
        services.recover_interrupted(folder)
    services.remember_last_story(folder)


def flash(message: str, kind: str = "success") -> None:
    """A notice shown once, on the next run (after ``st.rerun``).

    ``message`` is Markdown: user text in it goes through ``md()`` first.
    """
    st.session_state.setdefault(FLASH_KEY, []).append((kind, message))


def show_flashes() -> None:
    """The notices of the last action, in one container that is always drawn.

    The page's later elements keep their place in Streamlit's layout tree
    whether or not there is a notice: when they move, the browser briefly
    shows the previous run's elements in their old places (a second copy of
    a button in the wrong column) until the new run has finished.
    """
    with st.container():
        for kind, message in st.session_state.pop(FLASH_KEY, []):
            getattr(st, kind)(message)


def story_page(title: str | None) -> Path | None:
    """Start a page that works on the open story; None when no story is open.

    Draws the page title (``None``: the story's title) with the story's name
    under it, and the notices of the last action; without an open story, the
    title and where to open one.
    """
    folder = current_story()
    if folder is None:
        st.title(title or "Storyboard")
        st.info(NO_STORY)
        return None
    try:
        story_title = services.story_view(folder).story.title
    except (services.StoryError, OSError) as exc:  # broken on disk since opened
        st.title(title or md(folder.name))
        st.error(
            f"The story in {code(folder.name)} cannot be opened: {md(exc)}\n\n"
            "Fix or replace the file named, or open another story on the "
            "Stories page."
        )
        return None
    st.title(title or md(story_title))
    if title is not None:
        st.caption(f"Story: **{md(story_title)}** · `{folder.name}`")
    show_flashes()
    return folder


# Drafts: unsaved editor values -----------------------------------------------------

WidgetKey = Callable[[str, str], str]  # (item, field) -> session-state key


def _draft_slots(namespace: str) -> tuple[dict, dict]:
    drafts = st.session_state.setdefault(f"{namespace}.drafts", {})
    bases = st.session_state.setdefault(f"{namespace}.bases", {})
    return drafts, bases


def seed_draft(
    namespace: str,
    folder: Path,
    item: str,
    saved: dict[str, Any],
    widget_key: WidgetKey,
) -> None:
    """Seed an editor's widgets; what the user typed wins over the saved values.

    A field the user has not touched follows the saved values (for instance
    after another session or the worker saved them); a field they changed
    keeps their value. Drafts are kept per story, so two stories with an item
    of the same id never share one.
    """
    drafts, bases = _draft_slots(namespace)
    slot = (str(folder), item)
    draft = drafts.setdefault(slot, dict(saved))
    base = bases.setdefault(slot, dict(saved))
    owner_key = f"{namespace}.owner.{item}"  # the story the item's widgets show
    other_story = st.session_state.get(owner_key) != str(folder)
    st.session_state[owner_key] = str(folder)
    for field, value in saved.items():
        if draft.get(field) == base.get(field):
            draft[field] = value
        base[field] = value
        key = widget_key(item, field)
        if other_story or key not in st.session_state:
            st.session_state[key] = draft[field]


def remember_draft(
    namespace: str, folder: Path, item: str, values: dict[str, Any]
) -> None:
    """Keep the editor's current values (call after drawing its widgets)."""
    drafts, _ = _draft_slots(namespace)
    drafts[(str(folder), item)] = dict(values)


def forget_draft(
    namespace: str, folder: Path, item: str, widget_key: WidgetKey
) -> None:
    """Drop an item's draft and widget values: the next run shows the saved ones."""
    drafts, bases = _draft_slots(namespace)
    for field in drafts.pop((str(folder), item), {}):
        st.session_state.pop(widget_key(item, field), None)
    bases.pop((str(folder), item), None)
