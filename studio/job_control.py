"""Generation jobs for the studio: one `JobRunner` per story folder and process.

Start, poll and cancel generations; tell a generation running in another
process (``storygraph run``) from one a stopped process left behind. The
runner comes from `studio.wiring`, shared by every session of the server.

Every story's runner shares one `engine.job_queue.SharedQueue`: the studio
has one queue across stories, one scene generating at a time, which every
page shows (`queue_items`) and where each scene can be removed or moved and
everything cancelled (`remove_from_queue`, `move_in_queue`, `cancel_all`).
A scene the worker is making shows ``generating`` wherever its status is
drawn, even before the worker has saved it so (`live_statuses`).
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
    from engine.progress import Preview
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
    cancelled: tuple[str, ...] = ()  # scenes cancelled or removed from the queue
    window: int = 1  # the window of a long take being made
    windows: int = 1
    candidate: int = 1  # the candidate of a best-of-N scene being made
    candidates: int = 1
    # the phase of the take being made (engine.progress), units done of total
    # in it, seconds in it, and seconds per phase so far
    phase: str | None = None
    phase_done: int = 0
    phase_total: int = 0
    phase_elapsed_s: float = 0.0
    phases: tuple[tuple[str, float], ...] = ()
    elapsed_s: float = 0.0
    cancelling: bool = False  # a cancel was asked and has not yet taken effect
    notes: tuple[str, ...] = ()  # e.g. an identical take selected again
    # takes finishing (clip, scores) behind the scene above: (scene, phase)
    finishing: tuple[tuple[str, str], ...] = ()
    preview: Preview | None = None  # the take's latest frame (engine.progress)

    @property
    def busy(self) -> bool:
        return self.running or bool(self.queued)


@dataclass(frozen=True)
class QueueItem:
    """One scene of the studio's queue: which story, which scene, whether it
    is the one generating (and being cancelled), and where it stands."""

    folder: Path
    story: str  # the story's title
    scene_id: str
    running: bool = False
    cancelling: bool = False
    detail: str = ""  # the running scene's phase, e.g. "decode 2/5"


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
        cancelled=status.cancelled,
        window=status.window,
        windows=status.windows,
        candidate=status.candidate,
        candidates=status.candidates,
        phase=status.phase,
        phase_done=status.phase_done,
        phase_total=status.phase_total,
        phase_elapsed_s=status.phase_elapsed_s,
        phases=status.phases,
        elapsed_s=status.scene_elapsed_s,
        cancelling=status.cancelling,
        notes=status.notes,
        finishing=status.finishing,
        preview=status.preview,
    )


@st.cache_resource(show_spinner=False)
def _shared_queue() -> Any:
    """The studio's one queue, shared by every story's runner in this process."""
    from engine.job_queue import SharedQueue

    return SharedQueue()


@st.cache_resource(show_spinner=False)
def _make_runner(story_dir: str) -> Any:
    """One runner per story folder and process, shared by every session."""
    from studio.wiring import make_runner  # imports torch: only when generating

    return make_runner(Path(story_dir), queue=_shared_queue())


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
    new_take: bool = False,
) -> list[str]:
    """Queue scenes on the story's worker; returns the ids queued.

    ``candidates`` > 1 makes that many takes of each and keeps the best;
    ``new_take``: a new take with a new seed (``settings.new_take_seed``).
    """
    ids = list(scene_ids)
    if not ids:
        return []
    job_runner(folder).submit(
        ids, force=force, candidates=candidates, new_take=new_take
    )
    return ids


def cancel_generation(folder: Path, scene_id: str | None = None) -> None:
    """Cancel the story's generation (``scene_id``: that scene only)."""
    key = str(Path(folder).resolve())
    if key in _STARTED:
        job_runner(folder).cancel(scene_id)


def live_statuses(folder: Path) -> dict[str, str]:
    """Statuses the worker here knows before the story file says them: the
    scene it is making is ``generating``, those it holds ``queued``."""
    status = job_status(folder)
    if status is None or not status.busy:
        return {}
    live = dict.fromkeys(status.queued, "queued")
    if status.current:
        live[status.current] = "generating"
    return live


def _started_folders() -> list[Path]:
    return [Path(key) for key in sorted(_STARTED)]


def _story_title(folder: Path) -> str:
    from studio.story_views import story_view

    try:
        return story_view(folder).story.title
    except (StoryError, OSError):
        return folder.name


def _phase_text(status: JobSnapshot) -> str:
    if status.cancelling:
        return "cancelling…"
    if status.phase is None:
        return "starting"
    if status.phase_total:
        return f"{status.phase} {status.phase_done}/{status.phase_total}"
    return status.phase


def queue_items() -> list[QueueItem]:
    """The studio's queue across stories: the scene generating, then the
    queued ones in the order they will run."""
    items: dict[tuple[str, str], QueueItem] = {}
    for folder in _started_folders():
        status = job_status(folder)
        if status is None or not status.busy:
            continue
        title = _story_title(folder)
        key = str(folder)
        if status.current:
            items[(key, status.current)] = QueueItem(
                folder,
                title,
                status.current,
                running=True,
                cancelling=status.cancelling,
                detail=_phase_text(status),
            )
        for sid, phase in status.finishing:  # behind the one generating
            items[(key, sid)] = QueueItem(
                folder, title, sid, running=True, detail=f"finishing: {phase}"
            )
        for sid in status.queued:
            items[(key, sid)] = QueueItem(folder, title, sid)
    order = {entry: i for i, entry in enumerate(_shared_queue().order())}
    return sorted(
        items.values(),
        key=lambda item: (
            not item.running,
            order.get((str(item.folder), item.scene_id), len(order)),
        ),
    )


def remove_from_queue(folder: Path, scene_id: str) -> None:
    """Take a scene out of the queue; the one generating is cancelled."""
    cancel_generation(folder, scene_id)


def move_in_queue(folder: Path, scene_id: str, offset: int) -> bool:
    """Move a queued scene ``offset`` places in the studio's queue (negative:
    sooner); False when it cannot move."""
    key = str(Path(folder).resolve())
    if key not in _STARTED:
        return False
    return bool(job_runner(folder).move(scene_id, offset))


def cancel_all() -> None:
    """Cancel every story's generation and empty the queue."""
    for folder in _started_folders():
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
