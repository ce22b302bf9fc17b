"""Stories and batches on a Ray cluster: backends on workers, the story here.

`RayRunner` renders the pending scenes of one or more stories on Ray actors
that each hold one backend (one GPU each with ``gpus_per_worker``, else a CPU
for the animatic). This process, the driver, stays the only writer of every
``kg_state.json``: it begins each take (`engine.scheduler.begin_take`:
continuity, request, budget, a ``generating`` take saved), ships the request
to a worker, and completes the take with the worker's result
(`engine.generate.complete_take`: files, scores, ``done`` and selected) the
same way the local runner does.

Scheduling is `engine.scheduler`'s, as for the local runner: a scene is
submitted once its continuity source is ready, so a continuous chain runs in
order (its tail latents or last frame read from the take just written) while
cuts, independent branches and other stories run in parallel, up to one take
per worker; stories take turns, so a batch starts every story at once. A
worker whose take comes back is given its next scene before that take is
written and recorded here, so the driver's work overlaps the workers'; the
first scenes go out once every worker has started (its process up, its
backend built: `BatchStatus.workers_start_s`). A take's frames and tail
latents are written as it comes back, and its clip, scores and save are made
on a finisher thread (clips encoded two at a time) while its continuous
successor already goes out, started from that take as locally
(`engine.outcome.Finishing`); a successor whose source take then does not
end ``done`` is discarded and fails, saying why. Workers read the run's cancel
flag without waiting on it (one question kept in flight). The
takes in flight count against a story's hosted budget; a refusal stops
submitting that story's scenes. With ``candidates`` > 1 a scene is made as
that many candidate takes (seeds ``seed, seed + 1, ...``) on free workers at
once; when all have ended the best is selected and recorded
(`engine.best_of.select_best`), then its continuous successors start.

Failures: a worker that dies mid-scene (``RayActorError``) is replaced and
the take given back, up to ``max_retries`` times; after that the take fails
with the worker's error. A backend error is a failed take, and any other
error ends the scene as `engine.scheduler.ERROR_RULES` says, as locally.
Cancel (``cancel()``, or Ctrl-C in `run`) stops submitting, tells the
workers through a shared flag checked between steps, and abandons the takes
in flight: every story is left consistent. Progress is reported per story.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.backend import CancelToken, GenerationCancelled, GenerationResult
from engine.catalog import CATALOG
from engine.continuity import ContinuityError, wants_lead_frame
from engine.finishing import lost_message, taken_from
from engine.generate import PreparedTake, backend_failed, complete_take
from engine.observe import TakeObserver
from engine.outcome import Finishing, abandon, fail
from engine.ray_watchdog import end_guard, guard_local_cluster
from engine.recovery import recover_interrupted
from engine.redaction import redact
from engine.runlock import hold_run
from engine.scheduler import (
    Outcome,
    SceneRun,
    StoryProgress,
    check_candidates,
    next_scene,
    outcome_of_error,
    outcome_of_take,
    plan_story,
)
from engine.video import ClipWriter
from kg.schema import Take
from kg.store import load_story

__all__ = ["RayRunner", "StoryProgress", "BatchStatus", "worker_gpus"]

log = logging.getLogger(__name__)


def worker_gpus(backend: str, cluster_gpus: float, workers: int) -> float:
    """GPUs each worker asks Ray for: one for a backend whose catalog spec
    needs a GPU, when the cluster has one per worker (Ray hides CUDA from an
    actor that asked for none); none otherwise."""
    wants = backend in CATALOG and CATALOG[backend].needs_gpu
    return 1.0 if wants and cluster_gpus >= workers else 0.0


@dataclass
class BatchStatus:
    stories: list[StoryProgress]
    retries: int = 0
    max_in_flight: int = 0
    # (story index, scene) pairs in flight together at the busiest moment
    busiest: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0
    # until every worker had started (its process up, its backend built):
    # seconds of the run no scene could use, whatever the scheduling
    workers_start_s: float = 0.0

    @property
    def failed(self) -> int:
        return sum(len(s.failed) for s in self.stories)


def _remote_classes() -> tuple[Any, Any]:
    import ray

    @ray.remote
    class CancelBoard:
        def __init__(self) -> None:
            self.flag = False

        def set(self) -> None:
            self.flag = True

        def is_set(self) -> bool:
            return self.flag

    @ray.remote
    class BackendWorker:
        """Holds one backend instance; makes takes from requests."""

        def __init__(self, backend: Any) -> None:
            from engine.backend import get_backend

            self.backend = get_backend(backend) if isinstance(backend, str) else backend

        def pid(self) -> int:
            return os.getpid()

        def generate(self, request: Any, board: Any) -> Any:
            return self.backend.generate(request, lambda *a: None, _RemoteCancel(board))

    return CancelBoard, BackendWorker


class _RemoteCancel(CancelToken):
    """The run's cancel flag as a worker sees it, without waiting on the driver.

    A backend asks between steps (the animatic between frames: hundreds of
    times a scene); a blocking round trip to the flag's actor each time cost
    a few milliseconds, about 0.1-0.3 s a scene. Instead at most one question
    is in flight, asked at most every `POLL_S`: each ask looks whether its
    answer has come (no wait), so a cancel is seen within `POLL_S` and a
    round trip, and the flag's actor answers a few questions a second per
    worker, not hundreds (which took CPU from the scenes).
    """

    POLL_S = 0.1

    def __init__(self, board: Any) -> None:
        super().__init__()
        self._board = board
        self._pending: Any = None
        self._asked = -self.POLL_S
        self._seen = False

    def is_set(self) -> bool:
        import ray

        if self._seen or super().is_set():
            return True
        now = time.monotonic()
        if self._pending is None and now - self._asked >= self.POLL_S:
            self._pending, self._asked = self._board.is_set.remote(), now
        if self._pending is not None:
            ready, _ = ray.wait([self._pending], timeout=0)
            if ready:
                self._seen = bool(ray.get(self._pending))
                self._pending = None
        return self._seen


@dataclass
class _Flight:
    story: int
    scene: SceneRun
    prepared: PreparedTake
    worker: Any
    attempt: int = 0
    # still-finishing takes (story, scene) it started from, and why one of
    # them did not end done (then it is discarded when it comes back)
    sources: frozenset[tuple[int, str]] = frozenset()
    lost: str | None = None


@dataclass
class _Behind:
    """A take whose clip, scores and save are made on the finisher thread."""

    flight: _Flight
    finishing: Finishing
    future: Future[Take]

    @property
    def cancel(self) -> CancelToken:
        return self.finishing.cancel


def _rest(
    key: tuple[int, str],
    finishing: Finishing,
    sources: frozenset[tuple[int, str]],
    lost: dict[tuple[int, str], str],
) -> Take:
    """On the finisher thread, in hand-over order (a source before what
    started from it): a take whose source did not end done is cancelled
    (abandoned); one that does not end done is recorded in ``lost``."""
    if any(source in lost for source in sources):
        finishing.cancel.set()
    try:
        take = finishing.rest()
    except Exception as exc:
        lost[key] = lost_message(key[1], outcome_of_error(key[1], exc))
        raise
    if take.status != "done":
        lost[key] = lost_message(key[1], outcome_of_take(take))
    return take


def _ended(came: Take | BaseException, flight: _Flight, prepared: Any) -> Take:
    """A finisher's end of a take, for `SceneRun.settle` (discarded because
    its source take did not end done: failed, saying so)."""
    if flight.lost is not None and not isinstance(came, Take):
        raise ContinuityError(flight.lost) from None
    if isinstance(came, BaseException):
        raise came
    return came


class RayRunner:
    """Render stories on Ray workers (see the module docstring).

    Parameters
    ----------
    address : a cluster's address, or None for a local one started here
        (``num_cpus`` CPUs) and stopped at the end.
    workers : backend actors to start.
    observer : scores each take here, on the driver.
    gpus_per_worker : GPUs each actor reserves; None: one for a backend the
        catalog says needs a GPU, when the cluster has a GPU per worker.
    max_retries : times a take is given back when its worker dies.
    on_submit : called with ``(story_dir, scene_id, worker, attempt)`` after
        each submission (progress displays, tests).
    on_scene_end : called with ``(story_dir, scene_id, outcome)`` (an
        `engine.scheduler.Kind`) as each scene ends.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        workers: int = 2,
        num_cpus: int | None = None,
        observer: TakeObserver | None = None,
        gpus_per_worker: float | None = None,
        max_retries: int = 1,
        on_submit: Callable[[Path, str, Any, int], None] | None = None,
        on_scene_end: Callable[[Path, str, str], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self.observer = observer
        self.gpus_per_worker = gpus_per_worker
        self.max_retries = max_retries
        self.on_submit = on_submit
        self.on_scene_end = on_scene_end
        self._cancelled = False
        self._board: Any = None
        self._scenes: list[tuple[int, SceneRun]] = []  # begun, not yet ended
        self._writer: ClipWriter | None = None

    def cancel(self) -> None:
        """Stop submitting, tell the workers, abandon what is in flight."""
        self._cancelled = True
        if self._board is not None:
            self._board.set.remote()

    # ---------------------------------------------------------------------------
    def run(
        self,
        stories: Iterable[str | os.PathLike[str]],
        *,
        scenes: dict[Path, list[str]] | None = None,
        backend: Any = None,
        model: str | None = None,
        force: bool = False,
        candidates: int = 1,
    ) -> BatchStatus:
        """Render the pending scenes of every story (``scenes`` picks them per
        story), each as ``candidates`` takes with the best kept (needs an
        observer); returns where each story stands."""
        check_candidates(candidates, self.observer)
        import ray

        t0 = time.perf_counter()
        with contextlib.ExitStack() as stack:
            # every story's run lock before Ray starts (seconds), so no other
            # run slips in meanwhile; a story locked elsewhere starts nothing
            progress = []
            for folder in stories:
                story_dir = Path(folder)
                recover_interrupted(story_dir)
                stack.enter_context(hold_run(story_dir))
                picked = (scenes or {}).get(story_dir)
                progress.append(plan_story(story_dir, picked, force))
            status = BatchStatus(progress)
            started_here = False
            if not ray.is_initialized():
                kwargs: dict[str, Any] = {"log_to_driver": False}
                if self.address:
                    kwargs["address"] = self.address
                else:
                    kwargs.update(num_cpus=self.num_cpus, include_dashboard=False)
                ray.init(**kwargs)
                started_here = True
            # a local cluster ends with this run, even a killed one
            watchdog = (
                guard_local_cluster() if started_here and not self.address else None
            )
            try:
                self._schedule(status, backend, model, force, candidates)
            finally:
                if started_here:
                    ray.shutdown()
                    end_guard(watchdog)
        status.seconds = time.perf_counter() - t0
        return status

    def _schedule(
        self,
        status: BatchStatus,
        backend: Any,
        model: Any,
        force: bool,
        candidates: int,
    ) -> None:
        import ray
        from ray.exceptions import RayActorError

        CancelBoard, BackendWorker = _remote_classes()
        self._board = CancelBoard.remote()
        if self._cancelled:
            self._board.set.remote()
        # one backend for the batch (the first story's when not given)
        name = backend
        if name is None:
            name = load_story(status.stories[0].story_dir).settings.backend
        gpus = self.gpus_per_worker
        if gpus is None:
            cluster = ray.cluster_resources().get("GPU", 0)
            gpus = worker_gpus(name, cluster, self.workers)
        options: dict[str, Any] = {"num_cpus": 1}
        if gpus:
            options["num_gpus"] = gpus

        def new_worker() -> Any:
            return BackendWorker.options(**options).remote(name)

        t_start = time.perf_counter()
        free = [new_worker() for _ in range(self.workers)]
        # every worker up before the first scene: a scene then waits on its
        # worker, never on a process still importing the engine
        starting = [w.pid.remote() for w in free]
        while starting and not self._cancelled:  # Cancel is heard meanwhile
            _, starting = ray.wait(starting, num_returns=len(starting), timeout=0.5)
        status.workers_start_s = time.perf_counter() - t_start
        # clips encode on threads here while the workers make the next scenes;
        # a take's clip, scores and save on the finisher thread, in order
        writer = self._writer = ClipWriter(threads=2)
        finisher = ThreadPoolExecutor(1, thread_name_prefix="storygraph-finish")
        behind: dict[tuple[int, str], _Behind] = {}
        # finishing takes that did not end done: why (the finisher's record)
        lost: dict[tuple[int, str], str] = {}
        # candidates choose among saved takes; a story that frees its video
        # model for the encoders finishes each take in turn
        pipeline = [
            candidates == 1 and not load_story(story.story_dir).settings.release_models
            for story in status.stories
        ]
        lead_frame = wants_lead_frame(getattr(name, "name", name))
        flights: dict[Any, _Flight] = {}
        self._scenes = []
        turn = 0

        def provisional(story: int) -> dict[str, Any]:
            """The story's takes finishing, for a take to start from (not
            those already doomed); each once its clip is written when the
            backend reads its source's clip (`Finishing.with_clip`)."""
            takes = {
                sid: b.finishing.with_clip() if lead_frame else b.finishing.take
                for (i, sid), b in behind.items()
                if i == story and b.flight.lost is None and not b.cancel.is_set()
            }
            return {"provisional": takes} if takes else {}

        def started_from(story: int, prepared: PreparedTake) -> frozenset:
            read = {(story, sid) for sid in taken_from(prepared)}
            return frozenset(read & behind.keys())

        def behind_flights() -> list[_Flight]:
            return [b.flight for b in behind.values()]

        def finished(block: bool = False) -> None:
            """Settle the takes the finisher has ended, in order; ``block``:
            wait for the first. One that did not end done fails what started
            from it (in flight or finishing)."""
            for key, b in list(behind.items()):
                if not b.future.done() and not block:
                    return
                block = False
                while not wait([b.future], timeout=0.1).done:  # Cancel is heard
                    if self._cancelled:
                        b.finishing.cancel.set()
                del behind[key]
                try:
                    take: Take | BaseException = b.future.result()
                except BaseException as exc:  # noqa: BLE001 - settled below
                    take = exc
                if key in lost:  # what started from it is not kept
                    for other in (*flights.values(), *behind_flights()):
                        if key in other.sources and other.lost is None:
                            other.lost = lost[key]
                flight = b.flight
                flight.scene.settle(
                    flight.prepared, functools.partial(_ended, take, flight)
                )
                self._close_if_over(flight.story, flight.scene)

        def fill() -> None:
            """Begin every take a free worker can make, stories in turn."""
            nonlocal turn
            while free and not self._cancelled:
                begun = next((b for b in self._scenes if b[1].more), None)
                if begun is None:
                    picked = next_scene(status.stories, turn)
                    if picked is None:
                        break
                    i, sid = picked
                    turn = i + 1
                    status.stories[i].start(sid)
                    begun = (i, SceneRun(status.stories[i], sid, candidates))
                    self._scenes.append(begun)
                i, scene = begun
                extra = provisional(i) if pipeline[i] else {}
                prepared = scene.begin(backend=name, model=model, force=force, **extra)
                if prepared is None:
                    self._close_if_over(i, scene)
                else:
                    flight = _Flight(
                        i, scene, prepared, free.pop(),
                        sources=started_from(i, prepared),
                    )  # fmt: skip
                    self._submit(flights, flight, status)

        def refill(flight: _Flight) -> None:
            """`fill`; stopped meanwhile, ``flight``'s take is abandoned first."""
            try:
                fill()
            except BaseException:
                stop = functools.partial(self._end, GenerationCancelled("stopped"))
                flight.scene.settle(flight.prepared, stop)
                raise

        try:
            while True:
                if self._cancelled:
                    for b in behind.values():
                        b.finishing.cancel.set()
                finished()
                fill()
                if not flights and not behind:
                    break
                if not flights:
                    finished(block=True)
                    continue
                # while takes finish, look at them every 20 ms
                ready, _ = ray.wait(
                    list(flights), num_returns=1, timeout=0.02 if behind else None
                )
                if not ready:
                    continue
                flight = flights.pop(ready[0])
                came: Any
                try:
                    came = ray.get(ready[0])
                    free.append(flight.worker)
                except RayActorError as exc:
                    sid = flight.scene.scene_id
                    retry = not self._cancelled and flight.lost is None
                    if flight.attempt < self.max_retries and retry:
                        status.retries += 1
                        log.warning("worker died on %s; retrying: %s", sid,
                                    redact(exc))  # fmt: skip
                        flight = dataclasses.replace(
                            flight, worker=new_worker(), attempt=flight.attempt + 1
                        )
                        self._submit(flights, flight, status)
                        continue
                    free.append(new_worker())
                    came = (f"the Ray worker died {flight.attempt + 1} time(s) "
                            f"making this scene: {exc}")  # fmt: skip
                except Exception as exc:  # the backend's error, from the worker
                    free.append(flight.worker)
                    came = getattr(exc, "cause", None) or exc
                if self._cancelled:  # what comes back after a cancel is dropped
                    came = GenerationCancelled("the run was cancelled")
                elif flight.lost is not None:  # its source take did not end done
                    abandon(flight.prepared.tip)
                    came = ContinuityError(flight.lost)
                if self.workers == 1:
                    # one worker: it takes the next ready scene before this
                    # take is written (with several, the take's successor
                    # goes first, so chains run through instead of
                    # interleaving and leaving workers idle at the end)
                    refill(flight)
                if pipeline[flight.story] and isinstance(came, GenerationResult):
                    ended = self._finish_later(flight, came)
                    if isinstance(ended, Finishing):
                        sid = flight.scene.scene_id
                        flight.scene.story.finish_later(sid)
                        key = (flight.story, sid)
                        done_later = finisher.submit(
                            _rest, key, ended, flight.sources, lost
                        )
                        behind[key] = _Behind(flight, ended, done_later)
                        fill()  # its successor may start from it now
                        while len(behind) > self.workers:  # frames held at most
                            finished(block=True)  # one take a worker
                        continue
                    came = ended  # the take failed or was cancelled meanwhile
                # the freed worker starts on another ready scene (another
                # branch, story or candidate) while this one's take is written
                # and recorded here: the driver's work hides behind the workers'
                refill(flight)
                flight.scene.settle(flight.prepared, functools.partial(self._end, came))
                self._close_if_over(flight.story, flight.scene)
        except BaseException:
            self.cancel()
            stop = functools.partial(self._end, GenerationCancelled("stopped"))
            for flight in flights.values():
                flight.scene.settle(flight.prepared, stop)  # abandoned
            raise
        finally:
            for b in behind.values():
                if self._cancelled:
                    b.finishing.cancel.set()
            finisher.shutdown(wait=True)
            finished()  # every take the finisher ended, settled
            writer.close()  # every clip written before the run returns
            for i, scene in list(self._scenes):  # cancelled, or never ended
                # candidates that finished still choose (the writer is closed)
                self._close(i, scene, scene.outcome() if scene.over else
                            Outcome("cancelled"))  # fmt: skip
            for story in status.stories:
                story.drain()

    def _end(self, came: Any, prepared: PreparedTake) -> Take:
        """End a take with what its worker sent back: a result, the backend's
        error, or why the worker died (or a take already ended: itself)."""
        if isinstance(came, Take):
            return came
        if isinstance(came, ContinuityError):  # its source failed: discarded
            raise came
        if isinstance(came, str):
            return fail(prepared.tip, came)
        if isinstance(came, BaseException):
            return backend_failed(prepared, came)
        return complete_take(prepared, came, self.observer, self._writer)

    def _finish_later(
        self, flight: _Flight, came: GenerationResult
    ) -> Finishing | Take | BaseException:
        """The take's files now, its clip, scores and save for the finisher
        (`engine.generate.complete_take` with ``defer``); an ended take, or
        the error that ended it (raised again when it is settled)."""
        try:
            return complete_take(
                flight.prepared, came, self.observer, self._writer, defer=True
            )
        except Exception as exc:  # noqa: BLE001 - settled as the scene's error
            return exc

    def _close_if_over(self, story: int, scene: SceneRun) -> None:
        if scene.over:
            self._close(story, scene, scene.outcome(self._writer))

    def _close(self, story: int, scene: SceneRun, outcome: Outcome) -> None:
        """The scene ended: record it in its story and tell the listener."""
        if (story, scene) not in self._scenes:
            return  # ended already
        self._scenes.remove((story, scene))
        scene.story.end(scene.scene_id, outcome)
        if self.on_scene_end is not None:
            try:
                self.on_scene_end(scene.story.story_dir, scene.scene_id, outcome.kind)
            except Exception:
                log.exception("on_scene_end failed after %r", scene.scene_id)

    def _submit(
        self, flights: dict[Any, _Flight], flight: _Flight, status: BatchStatus
    ) -> None:
        ref = flight.worker.generate.remote(flight.prepared.request, self._board)
        flights[ref] = flight
        if len(flights) > status.max_in_flight:
            status.max_in_flight = len(flights)
            status.busiest = [(f.story, f.scene.scene_id) for f in flights.values()]
        if self.on_submit is not None:
            story_dir = flight.scene.story.story_dir
            self.on_submit(story_dir, flight.scene.scene_id, flight.worker,
                           flight.attempt)  # fmt: skip
