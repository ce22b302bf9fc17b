"""Storyboard page: the story graph, the scene editor, generation and takes.

The graph (click a node) and the "Scene" select box both choose the selected
scene, which is kept per story and in the URL (`studio.selection`); Undo and
Redo walk the story's edits (`kg.history`). The editor's values are kept per
scene in session state, so switching scenes or pages, a failed validation or
a worker saving in between never loses what the user typed; the prompt
preview follows the typed values live.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from kg.schema import (
    MAX_CANDIDATES,
)
from studio import services
from studio.components.drafting import drafting_panel
from studio.components.graph import graph_window, story_graph
from studio.components.history import history_bar
from studio.components.jobs import job_panel
from studio.components.scene_editor import (
    EDITOR_NS,
    editor_key,
    field_values,
    revert_edits,
    scene_editor,
    show_scene,
)
from studio.components.structure import run_edit, structure_panel
from studio.components.takes import takes_panel
from studio.literal import markdown_literal as md
from studio.palette import STATUS_COLOURS
from studio.selection import remember_scene, remembered_scene
from studio.session import (
    flash,
    seed_draft,
    story_page,
)

__all__ = ["storyboard_page", "SELECTED_KEY", "URL_PATH", "editor_key"]

URL_PATH = "storyboard"
GRAPH_PX = 480  # room for two-line labels under thumbnails on a branching story
SELECTED_KEY = "storyboard.selected"
_NEXT_KEY = "storyboard.next_selected"
_STORY_KEY = "storyboard.selected_story"  # the story the select box shows


def _init_state(folder: Path, view: services.StoryView) -> str | None:
    """Guarded defaults; returns the selected scene id (None: no scenes).

    The select box's value, else the scene selected last in this story (a
    page change drops the widget's value), else the URL's ``?scene=``.
    """
    if _NEXT_KEY in st.session_state:
        st.session_state[SELECTED_KEY] = st.session_state.pop(_NEXT_KEY)
    selected = st.session_state.get(SELECTED_KEY)
    shown_story = st.session_state.get(_STORY_KEY, str(folder))
    if shown_story != str(folder) or selected not in view.graph:
        selected = remembered_scene(folder)
    if selected not in view.graph:
        selected = view.order[0] if view.order else None
    st.session_state[SELECTED_KEY] = selected
    st.session_state[_STORY_KEY] = str(folder)
    remember_scene(folder, selected)
    return selected


def _select_next(scene_id: str) -> None:
    st.session_state[_NEXT_KEY] = scene_id


# Generation and takes ------------------------------------------------------------


def _generate(
    folder: Path, view: services.StoryView, selected: str, elsewhere: bool
) -> None:
    """Generate buttons; off while another process generates the story."""
    scene = view.scene(selected)
    pending = services.pending_scene_ids(view)
    a, b = st.columns(2)
    again = bool(scene.takes)
    seed = services.new_take_seed_note(view.story, scene)
    label = f"Generate a new take ({seed})" if again else "Generate scene"
    in_progress = scene.status in ("queued", "generating")
    why_off = (
        "Another process is generating this story."
        if elsewhere
        else f"This scene is {scene.status}."
        if in_progress
        else None
    )
    if a.button(
        label,
        key="storyboard.generate",
        disabled=elsewhere or in_progress,
        help=why_off,
        width="stretch",
    ):
        _submit(folder, [selected], force=False, new_take=again)
    if b.button(
        f"Generate all pending ({len(pending)})",
        key="storyboard.generate_all",
        disabled=elsewhere or not pending,
        help="Draft, failed, interrupted and stale scenes, in story order.",
        width="stretch",
    ):
        _submit(folder, pending, force=False)
    cost = services.cost_text(view, pending)
    if cost is not None:
        st.caption(md(cost))
    c, d = st.columns([1, 2], vertical_alignment="bottom")
    n = c.number_input(
        "Candidates",
        min_value=2,
        max_value=MAX_CANDIDATES,
        value=view.story.settings.best_of.candidates,
        step=1,
        key="storyboard.candidates",
        help="Takes to make, with seeds after those the scene used; the best "
        "is selected by the objective in Settings (Best of N).",
    )
    if d.button(
        f"Generate best of {n}",
        key="storyboard.generate_best_of",
        disabled=elsewhere or in_progress,
        help=why_off
        or "Scores every candidate and selects the best; you can still pick "
        "another take.",
        width="stretch",
    ):
        _submit(folder, [selected], force=True, candidates=int(n))
    saved = field_values(scene, view.story.characters)
    typed = {
        f: st.session_state.get(editor_key(selected, f), v) for f, v in saved.items()
    }
    if typed != saved:
        st.caption("Unsaved edits: generation uses the saved scene; save it first.")


def _submit(
    folder: Path,
    ids: list[str],
    force: bool,
    candidates: int = 1,
    new_take: bool = False,
) -> None:
    try:
        more = {"new_take": True} if new_take else {}  # a new seed
        services.submit_generation(
            folder, ids, force=force, candidates=candidates, **more
        )
    except Exception as exc:  # noqa: BLE001 - the engine's message, shown as is
        st.error(f"Could not start the generation: {md(exc)}")
        return
    flash(f"Queued {', '.join(ids)}.", "info")
    st.rerun()


# Page ------------------------------------------------------------------------------


def _legend() -> str:
    return (
        " ".join(
            f"<span style='color:{c}'>●</span> {s}" for s, c in STATUS_COLOURS.items()
        )
        + " · size: memory salience · dashed: cut"
    )


def _empty_story(folder: Path) -> None:
    st.info("This story has no scenes yet.")
    if st.button("Add the first scene", key="storyboard.add_first", type="primary"):
        run_edit(lambda: services.add_scene(folder, None), "Added", _select_next)


def storyboard_page() -> None:
    """Graph and editor of the open story; generation and takes of a scene."""
    folder = story_page(None)
    if folder is None:
        return
    elsewhere = job_panel(folder, services.story_view(folder))
    _workspace(folder, elsewhere)


@st.fragment
def _workspace(folder: Path, elsewhere: bool) -> None:
    """Everything a scene click or a save changes, rerun on its own.

    A fragment: choosing a scene, typing, saving or opening the structure
    panel reruns this part only, not the page title, the job panel or the
    sidebar's queue and navigation (fewer elements for the browser to draw
    per click). Actions that change more (generate, structure edits, undo)
    end in a full rerun (``st.rerun``).
    """
    try:
        view = services.story_view(folder)
    except (services.StoryError, OSError):
        st.rerun()  # broken or gone since the page ran: the page says why
        return
    selected = _init_state(folder, view)
    history_bar(
        folder,
        "storyboard",
        lambda section, key: revert_edits(folder, key) if section == "scenes" else None,
    )
    if selected is None:
        _empty_story(folder)
        return
    graph_col, side_col = st.columns([3, 2], gap="medium")
    with graph_col:
        clicked = story_graph(view, selected, key="storyboard.graph", height=GRAPH_PX)
        if clicked is not None and clicked != selected:
            st.session_state[SELECTED_KEY] = selected = clicked
            remember_scene(folder, selected)
        st.caption(_legend(), unsafe_allow_html=True)  # fixed text, no user text
        window = graph_window(view, selected)
        if window is not None:
            st.caption(
                f"Showing the {len(window)} scenes nearest the selected one, of "
                f"{len(view.order):,}: choose another scene to move the window."
            )
    with side_col:
        selected = st.selectbox(
            "Scene", view.order, format_func=view.labels.get, key=SELECTED_KEY
        )
        remember_scene(folder, selected)
        # the editor's values, before anything reads them (unsaved-edits note)
        show_scene(folder, selected)
        seed_draft(
            EDITOR_NS,
            folder,
            selected,
            field_values(view.scene(selected), view.story.characters),
            editor_key,
        )
        _generate(folder, view, selected, elsewhere)
        structure_panel(
            folder,
            view,
            selected,
            select_next=_select_next,
            forget_edits=lambda sid: revert_edits(folder, sid),
        )
    scene = view.scene(selected)
    editor_col, takes_col = st.columns([2, 3], gap="medium")
    with editor_col:
        drafting_panel(folder, view, scene)
        scene_editor(folder, view, scene)
    with takes_col:
        takes_panel(folder, view, scene)
