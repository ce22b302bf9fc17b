"""Undo and redo buttons over the story's edit history (`kg.history`).

Each button says what it would undo or redo ("Undo: edit scene arrival
(pose)"), so a click never surprises; Storyboard and Cast show them above
their editors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from studio import services
from studio.literal import markdown_literal as md
from studio.session import flash

__all__ = ["history_bar"]


def history_bar(
    folder: Path,
    page: str,
    forget: Callable[[str, str], None] | None = None,
) -> None:
    """Undo and redo of the story's last edits (any page's); ``page`` keys them.

    ``forget(section, key)`` drops the editor values of an item the step wrote,
    so its editor shows the restored values.
    """
    undo_label, redo_label = services.edit_history(folder)
    a, b = st.columns(2)
    if a.button(
        f"Undo: {md(undo_label)}" if undo_label else "Undo",
        key=f"{page}.undo",
        icon=":material/undo:",
        disabled=undo_label is None,
        help="Nothing to undo." if undo_label is None else None,
        width="stretch",
    ):
        _step(folder, services.undo_edit, "Undid", forget)
    if b.button(
        f"Redo: {md(redo_label)}" if redo_label else "Redo",
        key=f"{page}.redo",
        icon=":material/redo:",
        disabled=redo_label is None,
        help="Nothing to redo." if redo_label is None else None,
        width="stretch",
    ):
        _step(folder, services.redo_edit, "Redid", forget)


def _step(
    folder: Path,
    action: Callable[[Path], services.Undone | None],
    verb: str,
    forget: Callable[[str, str], None] | None,
) -> None:
    try:
        step = action(folder)
    except services.StoryError as exc:
        st.error(md(exc))
        return
    if step is not None:
        for section, key in step.items:
            if forget is not None:
                forget(section, key)
        flash(f"{verb}: {md(step.label)}.")
    st.rerun()
