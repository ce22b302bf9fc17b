"""Generation jobs for the studio: one `JobRunner` per story folder and process.

Start, poll and cancel generations; tell a generation running in another
process (``storygraph run``) from one a stopped process left behind. The
runner comes from `studio.wiring`, shared by every session of the server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from kg.errors import StoryError

if TYPE_CHECKING:
    from engine.runner import RunnerStatus

log = logging.getLogger(__name__)


# Generation ------------------------------------------------------------------------

_STARTED: set[str] = set()


@dataclass(frozen=True)
class JobSnapshot:
    """What the story's worker is doing, as the pages show it."""

    running: bool
    current: str | None = None
    step: int = 0
    total_steps: int = 0
    eta_s: float | None = None
    queued: tuple[str, ...] = ()
    finished: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    last_error: str | None = None
    window: int = 1  # the window of a long take being made
    windows: int = 1
    candidate: int = 1  # the candidate of a best-of-N scene being made
    candidates: int = 1

    @property
    def busy(self) -> bool:
        return self.running or bool(self.queued)


def _snapshot(status: RunnerStatus) -> JobSnapshot:
    """The runner's frozen status read into a `JobSnapshot`."""
    return JobSnapshot(
        running=status.running,
        current=status.current_scene,
        step=status.step,
        total_steps=status.total_steps,
        eta_s=status.eta_s,
        queued=status.queued,
        finished=status.finished,
        failed=status.failed,
        last_error=status.last_error,
        window=status.window,
        windows=status.windows,
        candidate=status.candidate,
        candidates=status.candidates,
    )


@st.cache_resource(show_spinner=False)
def _make_runner(story_dir: str) -> Any:
    """One runner per story folder and process, shared by every session."""
    from studio.wiring import make_runner  # imports torch: only when generating

    return make_runner(Path(story_dir))


def job_runner(folder: Path) -> Any:
    """The one `JobRunner` of this story in this process (created on first use)."""
    key = str(Path(folder).resolve())
    runner = _make_runner(key)
    _STARTED.add(key)
    return runner


def job_status(folder: Path) -> JobSnapshot | None:
    """The worker's status, or None when nothing ran for this story here."""
    key = str(Path(folder).resolve())
    if key not in _STARTED:
        return None
    return _snapshot(job_runner(folder).status())


def submit_generation(
    folder: Path,
    scene_ids: Iterable[str],
    *,
    force: bool = False,
    candidates: int = 1,
) -> list[str]:
    """Queue scenes on the story's worker; returns the ids queued.

    ``candidates`` > 1 makes that many takes of each and keeps the best.
    """
    ids = list(scene_ids)
    if not ids:
        return []
    job_runner(folder).submit(ids, force=force, candidates=candidates)
    return ids


def cancel_generation(folder: Path) -> None:
    key = str(Path(folder).resolve())
    if key in _STARTED:
        job_runner(folder).cancel()


def recover_interrupted(folder: Path) -> list[str]:
    """Scenes a stopped process left generating become ``interrupted``.

    Does nothing while a worker (here or in another process) holds the story.
    """
    from engine.recovery import recover_interrupted as engine_recover

    try:
        return list(engine_recover(folder))
    except StoryError as exc:  # locked by a long save: try again next time
        log.warning("could not check %s for interrupted scenes: %s", folder, exc)
        return []


def generating_elsewhere(folder: Path) -> bool:
    """Whether another process (e.g. ``storygraph run``) is generating this story.

    It holds the story's run lock (``engine.runlock``) while it generates; the
    lock goes with the process, so a scene left ``generating`` by a process
    that died reads False here. The check takes the free lock for an instant.
    Light: imports no torch.
    """
    from engine.runlock import RunLockedError, held_here, hold_run

    if held_here(folder):
        return False
    try:
        with hold_run(folder):
            return False
    except RunLockedError:
        return True


def wait_for_jobs(folder: Path, timeout: float | None = None) -> bool:
    """Block until the worker is idle (for tests and the CLI, never pages)."""
    key = str(Path(folder).resolve())
    if key not in _STARTED:
        return True
    return bool(job_runner(folder).wait(timeout))
