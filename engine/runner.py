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
Once a scene's backend is done, its take's clip, scores and save are made on
a finisher thread while the next ready scene starts (a continuous successor
starts from the tail latents and last frame, written first: `Finishing`);
a successor whose source take then does not end ``done`` is discarded and
fails, saying why. The worker never calls Streamlit.
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
from engine.continuity import wants_lead_frame
from engine.finishing import Behind, Finisher, taken_from
from engine.generate import make_take, prepare_take
from engine.job_queue import SharedQueue
from engine.observe import TakeObserver
from engine.outcome import Finishing
from engine.progress import (
    PhaseProgress,
    PhaseReport,
    Preview,
    eta_s,
    stage_estimates,
)
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
from kg.schema import Story, Take
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
    # scenes past their backend whose clip and scores are still being made
    # behind the scene above, each with its phase (``encode``, ``score``)
    finishing: tuple[tuple[str, str], ...] = ()
    # the latest picture of the take shown (`engine.progress.Preview`), if any
    preview: Preview | None = None


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
    on_scene_end : called with ``(scene_id, outcome)`` (an
        `engine.scheduler.Kind`: ``done``, ``failed``, ``budget``,
        ``interrupted`` or ``cancelled``) after each scene's state is saved
        (e.g. to redraw a live graph): on the worker thread, or on the
        finisher thread for a take finished behind the next scene, one call
        at a time in either case.
    queue : one order and one turn shared with other stories' runners
        (`engine.job_queue.SharedQueue`); None: this story alone.
    overlap : once a scene's backend is done, start the next ready scene at
        once while the take's clip is encoded and scored on a finisher thread
        (a continuous successor starts from the take's tail latents and last
        frame, already written); a scene starts while at most one take is
        finishing. A successor whose source take then does not
        end ``done`` is discarded and fails, saying so. Best of N, and
        stories with ``settings.release_models``, finish each take first.
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
        overlap: bool = True,
    ) -> None:
        self.story_dir = Path(story_dir)
        self.overlap = overlap
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
        self._cancel = CancelToken()  # the running scene's (a new one per scene)
        self._thread: threading.Thread | None = None
        self._exiting = False  # the worker has decided to end: submit starts anew
        # takes being finished behind the next scene (engine.finishing)
        self._finisher = Finisher(
            self._cond,
            on_end=self._finished,
            on_lost=self._source_lost,
            stopping=lambda: self._stop_all,
        )
        self._sources: set[str] = set()  # the running take's finishing sources
        self._behind_ok = False  # the running job may start from takes finishing
        self._lead_frame = False  # and reads its source's clip when it does
        self._telling = threading.Lock()  # on_scene_end: one call at a time
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
            busy = set(self._book.pending) | {self._current} | self._book.finishing

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
            if self._thread is None or not self._thread.is_alive() or self._exiting:
                self._cancel = CancelToken()
                self._stop_all = False
                self._exiting = False
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
        with self._cond:  # nothing running: the take finishing is shown
            behind = self._finisher.first() if self._current is None else None
        tracker = behind.finishing.progress if behind else self._tracker
        report = tracker.current
        with self._cond:
            now = time.perf_counter()
            shown = behind.job.scene_id if behind else self._current
            started = behind.started if behind else self._scene_started
            cancel = behind.cancel if behind else self._cancel
            elapsed = now - started if shown else 0.0
            book = self._book
            current = shown is not None
            phases = tracker.timings if current else {}
            return RunnerStatus(
                running=current or bool(book.pending) or bool(self._finisher),
                current_scene=shown,
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
                    (name, phases[name]) for name in tracker.order if name in phases
                ),
                cancelling=current and cancel.is_set(),
                notes=tuple(self._notes[-5:]),
                finishing=self._finisher.listing(behind),
                preview=tracker.latest_preview if current else None,
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
                if self._finisher.cancel(scene_id):  # its successors fail with it
                    return
            if self.remove(scene_id):
                return
            with self._cond:
                if (
                    scene_id != self._current
                    and scene_id not in self._book.pending
                    and scene_id not in self._finisher
                ):
                    return  # neither running nor queued: it has ended
        with self._cond:
            if self._current is not None or self._book.pending or self._finisher:
                self._stop_all = True
                if self._current is not None:
                    self._cancel.set()
                self._finisher.cancel()
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
                # the worker's last wake may come just before it ends: look again
                self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
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
                self._cancel = CancelToken()
                self._sources = set()
                self._finisher.forget(sid)
                self._step, self._total = 0, 0
                self._window, self._windows = 1, 1
                self._candidate, self._candidates = 1, job.candidates
                self._scene_started = time.perf_counter()
            self._tracker.reset()
            self._estimates = self._plan_job(job)
            return job

    def _plan_job(self, job: _Job) -> dict[str, float]:
        """From one load of the story: whether the job may start while takes
        are being finished (and reads its source's clip), and the median
        seconds per phase of the story's takes on the job's backend."""
        self._behind_ok, self._lead_frame = False, False
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
        # freeing the video model for the encoders: one take at a time
        self._behind_ok = self.overlap and not story.settings.release_models
        self._lead_frame = wants_lead_frame(name)  # it reads its source's clip
        return stage_estimates((t for s in story.scenes for t in s.takes), name)

    def _work(self, handoff: contextlib.ExitStack) -> None:
        writer = ClipWriter() if self.background_encode else None
        finishing = self._finisher.start()
        ended = False  # decided to end with nothing queued: leave the state be
        try:
            with hold_run(self.story_dir):
                handoff.close()  # the lock submit took is now held here
                try:
                    while not ended:
                        while (
                            self._finisher.room()
                            and (job := self._next_job()) is not None
                        ):
                            try:
                                self._run(job, writer)
                            finally:
                                if self.queue is not None:
                                    self.queue.release(self._key, job.scene_id)
                        self._finisher.settle()  # the takes still finishing
                        with self._cond:
                            if self._stop_all or self._book.stop is not None:
                                break  # drained below, then submit starts anew
                            if not self._book.pending:
                                # a scene submitted from now on starts a worker
                                ended, self._exiting = True, True
                finally:
                    self._finisher.close(finishing)
                    if writer is not None:
                        writer.close()
        except Exception as exc:  # keep the story consistent, report, stop
            ended = False
            outcome = stopped(exc)
            log.warning("%s", outcome.message)
            self._last_error = outcome.message
            self._drain(outcome)
        finally:
            if not ended:
                self._drain()
                with self._cond:
                    self._current = None
                    self._exiting = True
            with self._cond:
                self._cond.notify_all()

    def _own_backend(self, name: str) -> VideoBackend:
        if name not in self._backends:
            self._backends[name] = get_backend(name)
        return self._backends[name]

    def _run(self, job: _Job, writer: ClipWriter | None) -> None:
        started = self._scene_started
        try:
            if job.candidates > 1:
                self._finisher.settle()  # candidates start from saved takes
                take = generate_best_of(
                    self.story_dir,
                    job.scene_id,
                    job.candidates,
                    on_candidate=self._on_candidate,
                    backend=job.backend,
                    model=job.model,
                    progress=self._tracker,
                    cancel=self._cancel,
                    observer=self.observer,
                    writer=writer,
                    backends=self._resolve,
                )
            else:
                ended = self._make(job, writer)
                if isinstance(ended, Finishing):
                    self._hand_over(job, ended, started)
                    return
                take = ended
            outcome, began = outcome_of_take(take), True
        except Exception as exc:  # how it ends: engine.scheduler.ERROR_RULES
            outcome, began = outcome_of_error(job.scene_id, exc), False
            lost = self._finisher.lost_sources(self._sources)
            if lost:  # it started from a take that then failed
                outcome = Outcome("failed", lost[0])
        self._end(job, outcome, began, started)
        with self._cond:
            self._current = None
            self._cond.notify_all()

    def _make(self, job: _Job, writer: ClipWriter | None) -> Take | Finishing:
        """One take of the job's scene (an identical one reused when asked);
        with ``overlap``, a `Finishing` once its backend is done."""
        provisional = (
            self._finisher.provisional(with_clip=self._lead_frame)
            if self._behind_ok
            else {}
        )
        if not provisional:
            self._finisher.settle()  # the previous takes are saved first
        with self._cond:  # the hosted cost of the takes being finished
            in_flight = self._book.in_flight_usd()
        prepared = prepare_take(
            self.story_dir,
            job.scene_id,
            backend=job.backend,
            model=job.model,
            force=job.force,
            backends=self._resolve,
            new_take=job.new_take,
            provisional=provisional,
            in_flight_usd=in_flight,
        )
        if isinstance(prepared, Take):  # nothing made: an identical take
            self._note(
                f"{job.scene_id}: take {prepared.index} is identical to what "
                "was asked (same content hash); selected it again instead of "
                "making it twice"
            )
            return prepared
        used = taken_from(prepared) & provisional.keys()
        with self._cond:
            self._sources = used
            if self._finisher.lost(used):  # a source failed meanwhile
                self._cancel.set()
        ended = make_take(
            prepared,
            self._tracker,
            self._cancel,
            self.observer,
            writer,
            defer=self._behind_ok,
        )
        if isinstance(ended, Finishing):
            with self._cond:  # its estimate counts until its cost is saved
                self._book.hold(prepared)
        return ended

    def _hand_over(self, job: _Job, finishing: Finishing, started: float) -> None:
        """Hand the take to the finisher and free the worker."""
        with self._cond:
            if self._cancel.is_set():  # cancelled as the backend ended
                finishing.cancel.set()
            self._finisher.hand_over(
                job, job.scene_id, finishing, self._sources, started
            )
            self._book.finish_later(job.scene_id)
            self._current = None
            self._cond.notify_all()

    def _finished(self, behind: Behind, outcome: Outcome) -> None:
        """A take finished behind (on the finisher thread); one that did not
        end done puts its scene back as it was before it was queued."""
        with self._cond:
            self._book.held.pop((behind.scene_id, behind.finishing.index), None)
        if outcome.kind != "done":
            self._restore(behind.job)
        self._end(behind.job, outcome, True, behind.started)

    def _source_lost(self, scene_id: str) -> None:
        """``scene_id``'s take did not end done: the take being made stops
        if it started from it (called holding ``_cond``)."""
        if scene_id in self._sources:
            self._cancel.set()

    def _end(self, job: _Job, outcome: Outcome, began: bool, started: float) -> None:
        """Record how a scene ended, restore it when it never began, tell
        the listener."""
        with self._cond:
            seconds = time.perf_counter() - started
            self._book.end(job.scene_id, outcome)
            if outcome.kind == "done":
                self._scene_seconds.append(seconds)
            elif outcome.failed:
                self._last_error = outcome.message
        if not began:
            self._restore(job)
        if self.on_scene_end is not None:
            try:
                with self._telling:
                    self.on_scene_end(job.scene_id, outcome.kind)
            except Exception:  # a listener must not stop the story
                log.exception("on_scene_end failed after %r", job.scene_id)

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
