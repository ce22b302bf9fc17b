"""The job runner: a queue of scene generations on one worker thread.

The studio and the CLI submit scene ids; one worker thread per process
generates them in story order (a scene waits for the scene it continues
from; `engine.scheduler` decides what is ready and how each error ends a
scene, as for the Ray runner), reports progress through a frozen
`RunnerStatus` snapshot that a UI polls: the phase of the take being made
(load, denoise with window and step, decode with chunk, encode, score:
`engine.progress`), the time in it, and an ETA from the story's own recorded
phase timings. `JobRunner.cancel` stops the running scene in any phase (the
take is discarded) and drops the queue, or ends one scene only; `remove`
and `move` take a queued scene out or change its place. Runners given one
`engine.job_queue.SharedQueue` share one order and run one scene at a time
across stories (the studio's one queue). Every status
change is written to ``kg_state.json`` as it happens, so a process that dies
leaves at worst ``generating``/``queued`` scenes; `recover_interrupted` turns
them into ``interrupted`` once no live process holds the story's run lock.
The worker never calls Streamlit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.backend import CancelToken, VideoBackend, get_backend
from engine.best_of import generate_best_of
from engine.generate import generate_scene
from engine.job_queue import SharedQueue
from engine.observe import TakeObserver
from engine.progress import PhaseProgress, PhaseReport, eta_s, stage_estimates
from engine.recovery import recover_interrupted
from engine.runlock import hold_run
from engine.scheduler import (
    Outcome,
    StoryProgress,
    check_candidates,
    outcome_of_error,
    outcome_of_take,
    stopped,
    story_order,
)
from engine.video import ClipWriter
from kg.graph import DynamicSceneGraph, generation_order
from kg.schema import Story
from kg.store import load_story, update_story

__all__ = ["RunnerStatus", "JobRunner"]


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerStatus:
    """A snapshot of the runner for a UI to draw (it never changes after)."""

    running: bool
    current_scene: str | None
    step: int  # steps done over all windows of the current take
    total_steps: int
    eta_s: float | None
    queued: tuple[str, ...]
    finished: tuple[str, ...]
    failed: tuple[str, ...]
    cancelled: tuple[str, ...]
    last_error: str | None
    scene_elapsed_s: float
    window: int = 1  # the window of a long take being made (1-based)
    windows: int = 1
    candidate: int = 1  # the candidate of a best-of-N scene being made (1-based)
    candidates: int = 1
    # the phase of the take being made (`engine.progress.PHASES`; None before
    # it starts), done of total units in it, and seconds in it so far
    phase: str | None = None
    phase_done: int = 0
    phase_total: int = 0
    phase_elapsed_s: float = 0.0
    # seconds spent in each phase of the current take so far, in order
    phases: tuple[tuple[str, float], ...] = ()
    # a cancel of the running scene was asked and has not yet taken effect
    cancelling: bool = False
    # what the last scenes did that was not a new take (an identical take
    # selected again instead of being made twice)
    notes: tuple[str, ...] = ()


@dataclass
class _Job:
    scene_id: str
    backend: str | VideoBackend | None
    model: str | None
    force: bool
    prior_status: str  # restored when the job is cancelled or cannot start
    candidates: int = 1  # > 1: best of N (engine.best_of)
    new_take: bool = False  # a new take: a new seed (engine.takes.new_take_seed)


class JobRunner:
    """Generates submitted scenes on one background thread.

    Parameters
    ----------
    story_dir : the story folder.
    observer : scores each take (see `engine.observe.TakeObserver`).
    background_encode : encode clips on a writer thread so the next scene
        starts at once (the runner waits for the clips before it goes idle).
    backends : turns a backend name into an instance; the default keeps one
        instance per name for this runner (front ends share one across
        runners, `studio.wiring.shared_backend`).
    on_scene_end : called on the worker thread with ``(scene_id, outcome)``
        (an `engine.scheduler.Kind`: ``done``, ``failed``, ``budget``,
        ``interrupted`` or ``cancelled``) after each scene's state is saved,
        before the next scene starts (e.g. to redraw a live graph).
    queue : one order and one turn shared with other stories' runners
        (`engine.job_queue.SharedQueue`); None: this story alone.
    """

    def __init__(
        self,
        story_dir: str | os.PathLike[str],
        observer: TakeObserver | None = None,
        *,
        background_encode: bool = True,
        on_scene_end: Callable[[str, str], None] | None = None,
        backends: Callable[[str], VideoBackend] | None = None,
        queue: SharedQueue | None = None,
    ) -> None:
        self.story_dir = Path(story_dir)
        self.queue = queue
        self._key = str(self.story_dir.resolve())
        self._wake = threading.Event()  # the queue changed: look again
        self._stop_all = False  # cancel everything: drop the queue
        self._tracker = PhaseProgress(listener=self._on_phase)
        self._estimates: dict[str, float] = {}
        self._notes: list[str] = []
        self.observer = observer
        self.background_encode = background_encode
        self.on_scene_end = on_scene_end
        self._cond = threading.Condition()
        self._book = StoryProgress(self.story_dir, [])  # queued and ended scenes
        self._jobs: dict[str, _Job] = {}  # the queued ones
        self._current: str | None = None
        self._step = 0
        self._total = 0
        self._window, self._windows = 1, 1
        self._candidate, self._candidates = 1, 1
        self._scene_started = 0.0
        self._scene_seconds: list[float] = []
        self._last_error: str | None = None
        self._cancel = CancelToken()
        self._thread: threading.Thread | None = None
        self._backends: dict[str, VideoBackend] = {}
        self._resolve = backends or self._own_backend
        recover_interrupted(self.story_dir)

    # API -----------------------------------------------------------------------
    def submit(
        self,
        scene_ids: list[str] | tuple[str, ...],
        backend: str | VideoBackend | None = None,
        model: str | None = None,
        force: bool = False,
        candidates: int = 1,
        new_take: bool = False,
    ) -> list[str]:
        """Queue scenes (in story order); returns the ids actually queued.

        Scenes already queued or running are skipped. Each queued scene is
        saved with status ``queued``. ``candidates`` > 1 makes that many takes
        of each scene and keeps the best (`engine.best_of`; needs an observer).
        ``new_take``: each is a new take with a new seed
        (`engine.generate.generate_scene`).
        """
        check_candidates(candidates, self.observer)
        wanted = set(scene_ids)
        with self._cond:
            busy = set(self._book.pending) | {self._current}

        def mark_queued(s: Story) -> list[tuple[str, str, str | None]]:
            """(scene, prior status, continuity predecessor) of each queued scene."""
            graph = DynamicSceneGraph(s)
            order = generation_order(graph)
            unknown = wanted - set(order)
            if unknown:
                raise KeyError(
                    f"no scenes {sorted(unknown)} in story {s.title!r}; "
                    f"choose from {order}"
                )
            queued = []
            for sid, after in story_order(
                graph, lambda sid: sid in wanted and sid not in busy
            ):
                scene = graph.scene(sid)
                queued.append((sid, scene.status, after))
                scene.status = "queued"
            return queued

        # Hold the run lock from before the scenes are marked queued until the
        # worker holds it itself, so no other process ever sees queued scenes
        # with a free lock and recovers them as interrupted. One load and one
        # save: the order is read from the revision the scenes are queued in.
        handoff = contextlib.ExitStack()
        handoff.enter_context(hold_run(self.story_dir))
        try:
            queued = update_story(self.story_dir, mark_queued)
        except BaseException:
            handoff.close()
            raise
        if not queued:
            handoff.close()
            return []
        with self._cond:
            for sid, prior, after in queued:
                self._book.add(sid, after)
                self._jobs[sid] = _Job(
                    sid, backend, model, force, prior, candidates, new_take
                )
            if self.queue is not None:
                self.queue.add(self._key, [sid for sid, _, _ in queued])
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._cancel.clear()
                self._stop_all = False
                self._thread = threading.Thread(
                    target=self._work,
                    args=(handoff,),
                    name="storygraph-jobs",
                    daemon=True,
                )
                self._thread.start()
            else:
                handoff.close()  # the running worker holds the lock already
            self._cond.notify_all()
        return [sid for sid, _, _ in queued]

    def status(self) -> RunnerStatus:
        """A frozen snapshot: current scene, phase, ETA, queued/finished/failed."""
        report = self._tracker.current
        with self._cond:
            now = time.perf_counter()
            elapsed = now - self._scene_started if self._current else 0.0
            book = self._book
            current = self._current is not None
            phases = self._tracker.timings if current else {}
            return RunnerStatus(
                running=current or bool(book.pending),
                current_scene=self._current,
                step=self._step,
                total_steps=self._total,
                eta_s=self._eta(elapsed, report if current else None),
                queued=tuple(book.pending),
                finished=tuple(book.finished),
                failed=tuple(book.failed),
                cancelled=tuple(book.cancelled),
                last_error=self._last_error,
                scene_elapsed_s=elapsed,
                window=self._window,
                windows=self._windows,
                candidate=self._candidate,
                candidates=self._candidates,
                phase=report.phase if current and report else None,
                phase_done=report.done if current and report else 0,
                phase_total=report.total if current and report else 0,
                phase_elapsed_s=report.elapsed_s if current and report else 0.0,
                phases=tuple(
                    (name, phases[name])
                    for name in self._tracker.order
                    if name in phases
                ),
                cancelling=current and self._cancel.is_set(),
                notes=tuple(self._notes[-5:]),
            )

    def cancel(self, scene_id: str | None = None) -> None:
        """Cancel: without ``scene_id``, stop the running scene in whatever
        phase it is (its take is discarded) and drop the queue; with one, end
        that scene only (the running one is stopped, a queued one removed)
        and go on with the rest."""
        # the worker may start the scene between looking and removing: look
        # again until it is cancelled running, removed queued, or ended
        while scene_id is not None:
            with self._cond:
                if scene_id == self._current:
                    self._cancel.set()
                    self._cond.notify_all()
                    return
            if self.remove(scene_id):
                return
            with self._cond:
                if scene_id != self._current and scene_id not in self._book.pending:
                    return  # neither running nor queued: it has ended
        with self._cond:
            if self._current is not None or self._book.pending:
                self._stop_all = True
                if self._current is not None:
                    self._cancel.set()
            self._wake.set()
            self._cond.notify_all()
        if self.queue is not None:
            self.queue.wake()

    def remove(self, scene_id: str) -> bool:
        """Take a queued scene out of the queue (its status comes back);
        False when it is not queued (running scenes are cancelled instead)."""
        with self._cond:
            if scene_id not in self._book.pending:
                return False
            self._book.end(scene_id, Outcome("cancelled"))
            job = self._jobs.pop(scene_id)
            self._wake.set()
            self._cond.notify_all()
        if self.queue is not None:
            self.queue.discard(self._key, scene_id)
        self._restore(job, statuses=("queued",))
        return True

    def move(self, scene_id: str, offset: int) -> bool:
        """Move a queued scene ``offset`` places (negative: sooner); in the
        shared queue's order when there is one. A scene still starts only
        once the scene it continues from is done."""
        if self.queue is not None:
            moved = self.queue.move(self._key, scene_id, offset)
        else:
            with self._cond:
                pending = self._book.pending
                if scene_id not in pending:
                    return False
                i = pending.index(scene_id)
                j = max(0, min(len(pending) - 1, i + offset))
                moved = i != j
                pending.insert(j, pending.pop(i))
        with self._cond:
            self._wake.set()
            self._cond.notify_all()
        return moved

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queue is empty and clips are written; True if idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._thread is not None and self._thread.is_alive():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    # Worker --------------------------------------------------------------------
    def _eta(self, elapsed: float, report: PhaseReport | None) -> float | None:
        """Seconds left: from the story's recorded phase timings when it has
        any (`engine.progress.eta_s`), else from this run's scenes so far."""
        if self._current is None and not self._book.pending:
            return None
        more = len(self._book.pending) + max(self._candidates - self._candidate, 0)
        if self._estimates:
            found = eta_s(report, self._estimates, more)
            if found is not None:
                return found
        per_scene = (
            sum(self._scene_seconds) / len(self._scene_seconds)
            if self._scene_seconds
            else None
        )
        current = None
        if self._current is not None and self._step > 0 and self._total > 0:
            current = elapsed / self._step * (self._total - self._step)
            if per_scene is None:
                per_scene = elapsed / self._step * self._total
        if per_scene is None:
            return None
        return (current or 0.0) + per_scene * len(self._book.pending)

    def _on_phase(self, report: PhaseReport) -> None:
        if report.phase == "denoise":
            self._progress(report.done, report.total, report.window, report.windows)

    def _progress(
        self, step: int, total: int, window: int = 1, windows: int = 1
    ) -> None:
        with self._cond:
            # steps over the whole take, so bars and the ETA span every window
            self._step = (window - 1) * total + step
            self._total = windows * total
            self._window, self._windows = window, windows
            self._cond.notify_all()

    def _on_candidate(self, candidate: int, candidates: int) -> None:
        with self._cond:
            self._candidate, self._candidates = candidate, candidates
            self._step = 0
            self._cond.notify_all()
        self._tracker.reset()

    def _next_job(self) -> _Job | None:
        """The first queued job that is ready (`StoryProgress.next_ready`), in
        the shared queue's order and on its turn when there is one."""
        while True:
            with self._cond:
                if self._stop_all:
                    return None
                if self.queue is not None:
                    queue, key = self.queue, self._key
                    self._book.pending.sort(key=lambda sid: queue.position(key, sid))
                sid = self._book.next_ready()
                if sid is None:
                    return None
                self._wake.clear()
            if self.queue is not None and not self.queue.acquire(
                self._key, sid, self._wake
            ):
                continue  # the queue changed or was cancelled: look again
            with self._cond:
                if self._stop_all or self._book.next_ready() != sid:
                    if self.queue is not None:
                        self.queue.give_back(self._key, sid)
                    continue
                self._book.start(sid)
                job = self._jobs.pop(sid)
                self._current = sid
                self._cancel.clear()
                self._step, self._total = 0, 0
                self._window, self._windows = 1, 1
                self._candidate, self._candidates = 1, job.candidates
                self._scene_started = time.perf_counter()
            self._tracker.reset()
            self._estimates = self._stage_estimates(job)
            return job

    def _stage_estimates(self, job: _Job) -> dict[str, float]:
        """Median seconds per phase of the story's takes on the job's backend."""
        try:
            story = load_story(self.story_dir)
        except Exception:  # noqa: BLE001 - the generation reports it itself
            return {}
        backend = job.backend
        name = (
            backend
            if isinstance(backend, str)
            else backend.name
            if backend is not None
            else story.settings.backend
        )
        return stage_estimates((t for s in story.scenes for t in s.takes), name)

    def _work(self, handoff: contextlib.ExitStack) -> None:
        writer = ClipWriter() if self.background_encode else None
        try:
            with hold_run(self.story_dir):
                handoff.close()  # the lock submit took is now held here
                try:
                    while (job := self._next_job()) is not None:
                        try:
                            self._run(job, writer)
                        finally:
                            if self.queue is not None:
                                self.queue.release(self._key, job.scene_id)
                finally:
                    if writer is not None:
                        writer.close()
        except Exception as exc:  # keep the story consistent, report, stop
            outcome = stopped(exc)
            log.warning("%s", outcome.message)
            self._last_error = outcome.message
            self._drain(outcome)
        finally:
            self._drain()
            with self._cond:
                self._current = None
                self._cond.notify_all()

    def _own_backend(self, name: str) -> VideoBackend:
        if name not in self._backends:
            self._backends[name] = get_backend(name)
        return self._backends[name]

    def _run(self, job: _Job, writer: ClipWriter | None) -> None:
        common = {
            "backend": job.backend,
            "model": job.model,
            "progress": self._tracker,
            "cancel": self._cancel,
            "observer": self.observer,
            "writer": writer,
            "backends": self._resolve,
        }
        try:
            if job.candidates > 1:
                take = generate_best_of(
                    self.story_dir,
                    job.scene_id,
                    job.candidates,
                    on_candidate=self._on_candidate,
                    **common,
                )
            else:
                take = generate_scene(
                    self.story_dir,
                    job.scene_id,
                    force=job.force,
                    new_take=job.new_take,
                    **common,
                )
                if not self._tracker.order:  # nothing made: an identical take
                    self._note(
                        f"{job.scene_id}: take {take.index} is identical to what "
                        "was asked (same content hash); selected it again "
                        "instead of making it twice"
                    )
            outcome, began = outcome_of_take(take), True
        except Exception as exc:  # how it ends: engine.scheduler.ERROR_RULES
            outcome, began = outcome_of_error(job.scene_id, exc), False
        with self._cond:
            seconds = time.perf_counter() - self._scene_started
            self._book.end(job.scene_id, outcome)
            if outcome.kind == "done":
                self._scene_seconds.append(seconds)
            elif outcome.failed:
                self._last_error = outcome.message
        if not began:
            self._restore(job)
        if self.on_scene_end is not None:
            try:
                self.on_scene_end(job.scene_id, outcome.kind)
            except Exception:  # a listener must not stop the story
                log.exception("on_scene_end failed after %r", job.scene_id)
        with self._cond:
            self._current = None
            self._cond.notify_all()

    def _note(self, text: str) -> None:
        log.info("%s", text)
        with self._cond:
            self._notes = [*self._notes[-9:], text]

    def _restore(
        self, job: _Job, statuses: tuple[str, ...] = ("queued", "generating")
    ) -> None:
        """Put a scene that did not run back to its status before it was queued."""

        def mutate(s: Story) -> None:
            try:
                scene = s.scene(job.scene_id)
            except KeyError:
                return
            if scene.status in statuses:
                scene.status = job.prior_status

        update_story(self.story_dir, mutate)

    def _drain(self, outcome: Outcome | None = None) -> None:
        """Cancelled or stopped: restore every job still queued (they end
        with ``outcome``, else the story's stop, else cancelled)."""
        with self._cond:
            jobs = [self._jobs.pop(sid) for sid in self._book.drain(outcome)]
        if self.queue is not None:
            for job in jobs:
                self.queue.discard(self._key, job.scene_id)
        if not jobs:
            return

        def mutate(s: Story) -> None:
            for job in jobs:
                try:
                    scene = s.scene(job.scene_id)
                except KeyError:
                    continue
                if scene.status == "queued":
                    scene.status = job.prior_status

        try:
            update_story(self.story_dir, mutate)
        except Exception:
            log.exception("could not restore the statuses of %s", jobs)
