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

__all__ = ["structure_panel", "run_edit", "continuity_note", "OPEN_KEY"]

_CONFIRM_DELETE = "storyboard.confirm_delete"
OPEN_KEY = "storyboard.structure_open"  # the expander's state: open or closed


def structure_panel(
    folder: Path,
    view: services.StoryView,
    selected: str,
    *,
    select_next: Callable[[str], None],
    forget_edits: Callable[[str], None],
) -> None:
    """The expander; ``select_next`` receives a new scene's id, ``forget_edits``
    a deleted scene's.

    Its widgets are drawn only while it is open: closed, they cost every
    click on the page a rerun's worth of elements (a "Connect to" list of
    every scene among them) for nothing.
    """
    note = continuity_note(view, selected)
    if note is not None:
        st.warning(note, icon=":material/call_split:")
    panel = st.expander(
        "Structure: add, branch, connect, delete", key=OPEN_KEY, on_change="rerun"
    )
    if not panel.open:
        return
    with panel:
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
                note=lambda: continuity_note(services.story_view(folder), selected),
            )
        _connect(folder, view, selected)
        _edges(folder, view, selected)
        _delete(folder, view, selected, forget_edits)


def run_edit(
    action: Callable[[], str],
    verb: str,
    select_next: Callable[[str], None],
    note: Callable[[], str | None] | None = None,
) -> None:
    """Run a structure edit that makes a scene; select it, or show the error.

    ``note`` says what the confirmation should add once the edit is saved
    (a second continuous successor: which one the main line follows).
    """
    try:
        new_id = action()
    except (services.StoryError, KeyError) as exc:
        st.error(md(exc))
        return
    select_next(new_id)
    extra = note() if note is not None else None
    if extra is None:
        flash(f"{verb} {new_id}.")
    else:
        flash(f"{verb} {new_id}. {extra}", "warning")
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
        _flash_continuity(
            folder, selected, f"Connected {selected} → {target} ({transition})."
        )
        st.rerun()


def _main_successor(view: services.StoryView, source: str) -> str | None:
    """The successor the main line follows from ``source`` (`kg.lines`): the
    earliest continuous one in story order, else the earliest."""
    g = view.graph.g
    kids = sorted(g.successors(source), key=lambda n: g.nodes[n]["order"])
    flowing = [k for k in kids if g.edges[source, k]["transition"] == "continuous"]
    return (flowing or kids or [None])[0]


def continuity_note(view: services.StoryView, source: str) -> str | None:
    """Said when ``source`` has two or more continuous successors: which one
    the main line follows, and how to change that."""
    g = view.graph.g
    flowing = [
        k
        for k in g.successors(source)
        if g.edges[source, k]["transition"] == "continuous"
    ]
    if len(flowing) < 2:
        return None
    main = _main_successor(view, source)
    assert main is not None, "a scene with successors has a main one"
    others = ", ".join(md(view.labels[k]) for k in flowing if k != main)
    return (
        f"**{md(view.labels[source])}** flows on into {len(flowing)} scenes; each "
        "starts from its last frames. The main line (the first film on "
        f"Screening) follows **{md(view.labels[main])}**, the earliest in story "
        f"order. Make {others} a cut if only one should flow on."
    )


def _edges(folder: Path, view: services.StoryView, selected: str) -> None:
    g = view.graph.g
    successors = list(g.successors(selected))
    main = _main_successor(view, selected) if len(successors) > 1 else None
    for target in successors:
        transition = g.edges[selected, target]["transition"]
        st.markdown(
            f"→ **{md(view.labels[target])}** · {transition}"
            + (" · main line" if target == main else "")
        )
        other = "cut" if transition == "continuous" else "continuous"
        b, c = st.columns(2)  # whole labels at 1,280 px: two buttons a row
        if b.button(
            f"Make {other}",
            key=f"storyboard.edge.{target}.toggle",
            icon=":material/swap_horiz:",
            width="stretch",
        ):
            try:
                services.set_transition(folder, selected, target, other)
            except services.StoryError as exc:
                st.error(md(exc))
                return
            _flash_continuity(
                folder, selected, f"{selected} → {target} is now {other}."
            )
            st.rerun()
        if c.button(
            "Disconnect",
            key=f"storyboard.edge.{target}.disconnect",
            icon=":material/link_off:",
            width="stretch",
        ):
            services.disconnect_scenes(folder, selected, target)
            st.rerun()


def _flash_continuity(folder: Path, source: str, done: str) -> None:
    """Confirm an edit; say which successor the main line follows if two flow on."""
    note = continuity_note(services.story_view(folder), source)
    flash(
        done if note is None else f"{done} {note}",
        "success" if note is None else "warning",
    )


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
