"""Storyboard: proposals of the drafting model beside the scene editor.

"Propose next scene" asks for the scene after the selected one; "Rewrite
for the model" for the selected scene's motion, camera and lighting in the
video model's prompt-guide form (`engine.drafting`). A proposal is shown
field by field, now and proposed, each with its own Accept; nothing is
written before that, and a field with unsaved edits in the editor is not
accepted over them. User and model text is shown literally.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

from kg.errors import StoryError
from kg.schema import SceneNode
from studio import drafting_services as drafting
from studio import services
from studio.components.scene_editor import editor_key, field_values, has_unsaved
from studio.literal import markdown_literal as md
from studio.session import flash

__all__ = ["drafting_panel", "PROPOSAL_KEY"]

PROPOSAL_KEY = "storyboard.proposal"
_LABELS = {
    "title": "Title", "character_ids": "Characters", "environment_id": "Environment",
    "pose": "Pose", "motion": "Motion", "camera": "Camera", "lighting": "Lighting",
    "weather": "Weather", "dialogue": "Dialogue",
}  # fmt: skip


def _shown(view: services.StoryView, field: str, value: Any) -> str:
    story = view.story
    if value is None:
        return "(none)" if field in ("environment_id", "weather") else "(new scene)"
    if field == "character_ids":
        names = {c.id: c.name for c in story.characters}
        return ", ".join(names.get(c, c) for c in value) or "(none)"
    if field == "environment_id":
        return next((e.name for e in story.environments if e.id == value), value)
    if field == "dialogue":
        names = {c.id: c.name for c in story.characters}
        return (
            "\n".join(
                f"{names.get(d['character_id'], d['character_id'])}"
                + (f" ({d['delivery']})" if d["delivery"] else "")
                + f": {d['text']}"
                for d in value
            )
            or "(none)"
        )
    return value if isinstance(value, str) else json.dumps(value)


def _ask(action: str, folder: Path, scene_id: str) -> None:
    try:
        with st.spinner("Asking the drafting model…"):
            if action == "next":
                proposal = drafting.next_scene(folder, scene_id)
            else:
                proposal = drafting.rewrite(folder, scene_id)
    except drafting.DRAFTING_ERRORS as exc:
        st.error(f"Nothing was changed: {md(exc)}")
        return
    st.session_state[PROPOSAL_KEY] = (str(folder), proposal)
    st.rerun()


def _unsaved(folder: Path, view: services.StoryView, target: str, field: str) -> bool:
    """Has the user typed into this field of the editor without saving?"""
    scene = view.story.scene(target)
    saved = field_values(scene, view.story.characters).get(field)
    return has_unsaved(folder, target, field, saved)


def _accept(folder: Path, view: services.StoryView, proposal, field: str) -> None:  # noqa: ANN001
    target = proposal.target
    if target is not None and _unsaved(folder, view, target, field):
        st.error(
            f"{_LABELS[field]} has unsaved edits in the editor; save or revert "
            "them first, so the proposal does not overwrite them."
        )
        return
    try:
        rest = drafting.accept(folder, proposal, [field])
    except (ValueError, KeyError, StoryError) as exc:
        st.error(md(exc))
        return
    st.session_state.pop(editor_key(rest.target or "", field), None)
    st.session_state[PROPOSAL_KEY] = (str(folder), rest) if rest.changes else None
    flash(f"Accepted {_LABELS[field].lower()} for {rest.target}.")
    st.rerun()


def _proposal(folder: Path, view: services.StoryView) -> None:
    held = st.session_state.get(PROPOSAL_KEY)
    if not held or held[0] != str(folder):
        return
    proposal = held[1]
    what = (
        f"Next scene after {proposal.scene_id}"
        if proposal.kind == "next_scene"
        else f"Rewrite of {proposal.scene_id}"
    )
    cost = proposal.call.cost
    with st.container(border=True):
        st.markdown(f"**Proposal: {md(what)}**")
        st.caption(
            f"{proposal.call.prompt_tokens:,} + {proposal.call.completion_tokens:,} "
            f"tokens"
            + (f", ${cost.usd:.4f}" if cost else "")
            + ". Accept fields one by one; nothing changes until you do."
        )
        for change in proposal.changes:
            st.markdown(f"**{_LABELS[change.field]}**")
            now, new = st.columns(2)
            now.caption("Now")
            now.text(_shown(view, change.field, change.before))
            new.caption("Proposed")
            new.text(_shown(view, change.field, change.after))
            if st.button(
                f"Accept {_LABELS[change.field].lower()}",
                key=f"storyboard.proposal.accept.{change.field}",
            ):
                _accept(folder, view, proposal, change.field)
        if st.button("Discard the proposal", key="storyboard.proposal.discard"):
            st.session_state[PROPOSAL_KEY] = None
            st.rerun()


def drafting_panel(folder: Path, view: services.StoryView, scene: SceneNode) -> None:
    """The two proposal buttons and the proposal being looked at."""
    a, b = st.columns(2)
    if a.button(
        "Propose next scene",
        key="storyboard.propose_next",
        help="Ask the drafting model (Settings, Drafting) for the scene after "
        "this one, with this story's characters and places.",
        width="stretch",
    ):
        _ask("next", folder, scene.id)
    if b.button(
        "Rewrite for the model",
        key="storyboard.rewrite",
        help="Ask for this scene's motion, camera and lighting in the form the "
        "video model's prompt guide asks for.",
        width="stretch",
    ):
        _ask("rewrite", folder, scene.id)
    _proposal(folder, view)
