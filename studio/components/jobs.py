"""The generation progress panel: polls the story's worker without blocking.

A fragment re-runs every second while the worker is busy and reruns the whole
page whenever a scene starts, finishes or fails, so the graph and the takes
follow the generation. When the worker is idle the fragment stops polling.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import services

__all__ = ["POLL_S", "job_panel"]

POLL_S = 1.0
_SIGNATURE_KEY = "storyboard.job_signature"


def _format_eta(eta_s: float | None) -> str:
    if eta_s is None:
        return "estimating…"
    eta = int(round(eta_s))
    return f"{eta // 60} min {eta % 60:02d} s" if eta >= 60 else f"{eta} s"


def _interrupted(view: services.StoryView) -> list[str]:
    return [
        s.id for s in view.story.scenes if s.status in ("interrupted", "generating")
    ]


def _signature(status: services.JobSnapshot | None) -> tuple | None:
    if status is None:
        return None
    return (status.busy, status.current, status.finished, status.failed)


def _progress(folder: Path) -> None:
    status = services.job_status(folder)
    if _signature(status) != st.session_state.get(_SIGNATURE_KEY):
        st.rerun()  # a scene changed state: redraw graph, editor and takes
    if status is None or not status.busy:
        if status is not None and status.last_error:
            st.error(f"Last generation failed: {status.last_error}")
        return
    with st.container(border=True):
        left, right = st.columns([5, 1])
        total = max(status.total_steps, 1)
        label = (
            f"Generating **{status.current}** · step {status.step}/{status.total_steps}"
            f" · ETA {_format_eta(status.eta_s)}"
            if status.current
            else "Starting…"
        )
        left.progress(min(status.step / total, 1.0), text=label)
        if status.queued:
            left.caption("Queued: " + ", ".join(status.queued))
        if right.button("Cancel", key="storyboard.cancel", width="stretch"):
            services.cancel_generation(folder)
            st.toast("Cancelling after the current step…")


def job_panel(folder: Path, view: services.StoryView) -> None:
    """Progress of the story's generations, with a cancel button."""
    status = services.job_status(folder)
    st.session_state[_SIGNATURE_KEY] = _signature(status)
    busy = status is not None and status.busy
    if not busy:
        left_over = _interrupted(view)
        if left_over:
            st.warning(
                "Interrupted before they finished: "
                + ", ".join(left_over)
                + ". Generate them again to continue."
            )
    st.fragment(_progress, run_every=POLL_S if busy else None)(folder)
