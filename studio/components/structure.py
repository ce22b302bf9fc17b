"""The Storyboard's structure panel: add, branch, connect, re-cut, delete scenes.

Every action here is a plain widget (the graph component only selects), so
each is reachable without the graph and testable with AppTest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from studio import services
from studio.literal import markdown_literal as md
from studio.session import flash

__all__ = ["structure_panel", "run_edit"]

_CONFIRM_DELETE = "storyboard.confirm_delete"


def structure_panel(
    folder: Path,
    view: services.StoryView,
    selected: str,
    *,
    select_next: Callable[[str], None],
    forget_edits: Callable[[str], None],
) -> None:
    """The expander; ``select_next`` receives a new scene's id, ``forget_edits``
    a deleted scene's."""
    with st.expander("Structure: add, branch, connect, delete", expanded=False):
        a, b = st.columns(2)
        if a.button("Add scene after", key="storyboard.add_after"):
            run_edit(lambda: services.add_scene(folder, selected), "Added", select_next)
        transition = b.radio(
            "Branch transition",
            ["cut", "continuous"],
            horizontal=True,
            key="storyboard.branch_transition",
        )
        if b.button("Branch from here", key="storyboard.branch"):
            run_edit(
                lambda: services.branch_scene(folder, selected, transition),
                "Branched",
                select_next,
            )
        _connect(folder, view, selected)
        _edges(folder, view, selected)
        _delete(folder, view, selected, forget_edits)


def run_edit(
    action: Callable[[], str], verb: str, select_next: Callable[[str], None]
) -> None:
    """Run a structure edit that makes a scene; select it, or show the error."""
    try:
        new_id = action()
    except (services.StoryError, KeyError) as exc:
        st.error(md(exc))
        return
    select_next(new_id)
    flash(f"{verb} {new_id}.")
    st.rerun()


def _connect(folder: Path, view: services.StoryView, selected: str) -> None:
    others = [sid for sid in view.order if sid != selected]
    if not others:
        return
    a, b = st.columns([3, 2])
    target = a.selectbox(
        "Connect to",
        others,
        format_func=view.labels.get,
        key="storyboard.connect_target",
    )
    transition = b.radio(
        "Transition",
        ["continuous", "cut"],
        horizontal=True,
        key="storyboard.connect_transition",
    )
    if st.button("Connect", key="storyboard.connect"):
        try:
            services.connect_scenes(folder, selected, target, transition)
        except services.StoryError as exc:
            st.error(md(exc))
            return
        flash(f"Connected {selected} -> {target} ({transition}).")
        st.rerun()


def _edges(folder: Path, view: services.StoryView, selected: str) -> None:
    g = view.graph.g
    for target in g.successors(selected):
        transition = g.edges[selected, target]["transition"]
        a, b, c = st.columns([3, 1, 1])
        a.markdown(f"→ **{md(view.labels[target])}** · {transition}")
        other = "cut" if transition == "continuous" else "continuous"
        if b.button(f"Make {other}", key=f"storyboard.edge.{target}.toggle"):
            try:
                services.set_transition(folder, selected, target, other)
            except services.StoryError as exc:
                st.error(md(exc))
                return
            st.rerun()
        if c.button("Disconnect", key=f"storyboard.edge.{target}.disconnect"):
            services.disconnect_scenes(folder, selected, target)
            st.rerun()


def _delete(
    folder: Path,
    view: services.StoryView,
    selected: str,
    forget_edits: Callable[[str], None],
) -> None:
    if st.button("Delete scene", key="storyboard.delete"):
        st.session_state[_CONFIRM_DELETE] = selected
    if st.session_state.get(_CONFIRM_DELETE) != selected:
        return
    st.warning(
        f"Delete **{md(view.labels[selected])}**? Its predecessor joins its "
        "successors; take files stay on disk."
    )
    yes, no = st.columns(2)
    if yes.button("Yes, delete", key="storyboard.delete_yes", type="primary"):
        services.delete_scene(folder, selected)
        st.session_state.pop(_CONFIRM_DELETE, None)
        forget_edits(selected)
        flash(f"Deleted {selected}.")
        st.rerun()
    if no.button("Keep it", key="storyboard.delete_no"):
        st.session_state.pop(_CONFIRM_DELETE, None)
        st.rerun()
