"""Stories and batches on a Ray cluster: backends on workers, the story here.

`RayRunner` renders the pending scenes of one or more stories on Ray actors
that each hold one backend (one GPU each with ``gpus_per_worker``, else a CPU
for the animatic). This process, the driver, stays the only writer of every
``kg_state.json``: it prepares each take (`engine.generate.prepare_take`:
continuity, request, a ``generating`` take saved), ships the request to a
worker, and completes the take with the worker's result
(`engine.generate.complete_take`: files, scores, ``done`` and selected) the
same way the local runner does.

Scheduling: a scene is submitted once its continuity source is ready (its
continuous predecessor done in this run, or not pending at all), so a
continuous chain runs in order (its tail latents or last frame read from the
take just written) while cuts, independent branches and other stories run
in parallel, up to one scene per worker. Stories take turns, so a batch
starts every story at once.

Failures: a worker that dies mid-scene (``RayActorError``) is replaced and
the scene given back, up to ``max_retries`` times; after that the take fails
with the worker's error. A backend error is a failed take, as locally.
Cancel (``cancel()``, or Ctrl-C in `run`) stops submitting, tells the
workers through a shared flag checked between steps, and abandons the takes
in flight: every story is left consistent. Progress is reported per story.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.backend import CancelToken, GenerationCancelled
from engine.continuity import ContinuityError
from engine.generate import (
    PreparedTake,
    backend_failed,
    complete_take,
    prepare_take,
)
from engine.observe import TakeObserver
from engine.outcome import abandon, fail
from engine.recovery import recover_interrupted
from engine.references import ReferenceFileError
from engine.runlock import hold_run
from engine.video import ClipWriter
from kg.errors import StoryError
from kg.graph import DynamicSceneGraph, continuity_predecessor, generation_order
from kg.schema import Take
from kg.store import load_story

__all__ = ["RayRunner", "StoryProgress", "BatchStatus"]

log = logging.getLogger(__name__)

# Backends that want a GPU each on a cluster that has them.
GPU_BACKENDS = frozenset({"ltx"})


@dataclass
class StoryProgress:
    """Where one story of the run stands."""

    story_dir: Path
    pending: list[str]
    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return not self.pending


@dataclass
class BatchStatus:
    stories: list[StoryProgress]
    retries: int = 0
    max_in_flight: int = 0
    # (story index, scene) pairs in flight together at the busiest moment
    busiest: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

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
            import ray as _ray

            class RemoteCancel(CancelToken):
                def is_set(self) -> bool:  # asked between steps
                    return bool(_ray.get(board.is_set.remote()))

            return self.backend.generate(request, lambda *a: None, RemoteCancel())

    return CancelBoard, BackendWorker


@dataclass
class _Flight:
    story: int
    prepared: PreparedTake
    worker: Any
    attempt: int = 0


class RayRunner:
    """Render stories on Ray workers (see the module docstring).

    Parameters
    ----------
    address : a cluster's address, or None for a local one started here
        (``num_cpus`` CPUs) and stopped at the end.
    workers : backend actors to start.
    observer : scores each take here, on the driver.
    gpus_per_worker : GPUs each actor reserves; None: one for a GPU backend
        (``ltx``) when the cluster has a GPU per worker, else none.
    max_retries : times a scene is given back when its worker dies.
    on_submit : called with ``(story_dir, scene_id, worker, attempt)`` after
        each submission (progress displays, tests).
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
    ) -> BatchStatus:
        """Render the pending scenes of every story (``scenes`` picks them per
        story); returns where each story stands."""
        import ray

        started_here = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs.update(num_cpus=self.num_cpus, include_dashboard=False)
            ray.init(**kwargs)
            started_here = True
        t0 = time.perf_counter()
        with contextlib.ExitStack() as stack:
            progress = []
            for folder in stories:
                story_dir = Path(folder)
                recover_interrupted(story_dir)
                stack.enter_context(hold_run(story_dir))
                progress.append(
                    StoryProgress(story_dir, self._pending(story_dir, scenes, force))
                )
            status = BatchStatus(progress)
            try:
                self._schedule(status, backend, model, force)
            finally:
                if started_here:
                    ray.shutdown()
        status.seconds = time.perf_counter() - t0
        return status

    @staticmethod
    def _pending(
        story_dir: Path, scenes: dict[Path, list[str]] | None, force: bool
    ) -> list[str]:
        from kg.schema import PENDING_STATUSES

        story = load_story(story_dir)
        order = generation_order(DynamicSceneGraph(story))
        wanted = (scenes or {}).get(story_dir)
        if wanted is not None:
            return [sid for sid in order if sid in set(wanted)]
        return [
            sid for sid in order if force or story.scene(sid).status in PENDING_STATUSES
        ]

    def _backend_name(self, story_dir: Path, backend: Any) -> Any:
        if backend is not None:
            return backend
        return load_story(story_dir).settings.backend

    def _schedule(
        self, status: BatchStatus, backend: Any, model: Any, force: bool
    ) -> None:
        import ray
        from ray.exceptions import RayActorError

        CancelBoard, BackendWorker = _remote_classes()
        self._board = CancelBoard.remote()
        if self._cancelled:
            self._board.set.remote()
        # one backend for the batch (the first story's when not given)
        name = self._backend_name(status.stories[0].story_dir, backend)
        gpus = self.gpus_per_worker
        if gpus is None:  # a GPU each for a GPU backend, when the cluster has them
            has_gpu = ray.cluster_resources().get("GPU", 0) >= self.workers
            gpus = 1.0 if name in GPU_BACKENDS and has_gpu else 0.0
        options: dict[str, Any] = {"num_cpus": 1}
        if gpus:
            options["num_gpus"] = gpus

        def new_worker() -> Any:
            return BackendWorker.options(**options).remote(name)

        free = [new_worker() for _ in range(self.workers)]
        # clips encode on a thread here while the workers make the next scenes
        writer = ClipWriter()
        stack = contextlib.ExitStack()
        stack.callback(writer.close)
        flights: dict[Any, _Flight] = {}
        graphs = {
            i: DynamicSceneGraph(load_story(s.story_dir))
            for i, s in enumerate(status.stories)
        }
        turn = 0
        try:
            while True:
                # submit every ready scene a free worker can take, stories in turn
                while free and not self._cancelled:
                    picked = self._next_ready(status, graphs, flights, turn)
                    if picked is None:
                        break
                    i, sid = picked
                    turn = i + 1
                    story = status.stories[i]
                    prepared = self._prepare(story, sid, name, model, force)
                    if prepared is None:
                        continue
                    worker = free.pop()
                    self._submit(flights, _Flight(i, prepared, worker), status)
                if not flights:
                    break
                ready, _ = ray.wait(list(flights), num_returns=1)
                ref = ready[0]
                flight = flights.pop(ref)
                story = status.stories[flight.story]
                sid = flight.prepared.tip.scene_id
                try:
                    result = ray.get(ref)
                except RayActorError as exc:
                    if flight.attempt < self.max_retries and not self._cancelled:
                        status.retries += 1
                        log.warning("worker died on %s; retrying: %s", sid, exc)
                        flight = _Flight(flight.story, flight.prepared, new_worker(),
                                         flight.attempt + 1)  # fmt: skip
                        self._submit(flights, flight, status)
                        continue
                    free.append(new_worker())
                    take = fail(
                        flight.prepared.tip,
                        f"the Ray worker died {flight.attempt + 1} time(s) making "
                        f"this scene: {exc}",
                    )
                    self._end(story, sid, take)
                    continue
                except Exception as exc:  # the backend's error, from the worker
                    free.append(flight.worker)
                    cause = getattr(exc, "cause", None) or exc
                    if isinstance(cause, GenerationCancelled) or self._cancelled:
                        abandon(flight.prepared.tip)
                        self._cancelled_scene(story, sid)
                        continue
                    try:
                        take = backend_failed(flight.prepared, cause)
                    except BaseException:  # noqa: BLE001 - abandoned, counted
                        self._cancelled_scene(story, sid)
                        continue
                    self._end(story, sid, take)
                    continue
                free.append(flight.worker)
                if self._cancelled:
                    abandon(flight.prepared.tip)
                    self._cancelled_scene(story, sid)
                    continue
                take = complete_take(flight.prepared, result, self.observer, writer)
                self._end(story, sid, take)
        except BaseException:
            self.cancel()
            for flight in flights.values():
                with contextlib.suppress(Exception):
                    abandon(flight.prepared.tip)
                self._cancelled_scene(status.stories[flight.story],
                                      flight.prepared.tip.scene_id)  # fmt: skip
            raise
        finally:
            stack.close()  # every clip written before the run returns
            for story in status.stories:
                story.cancelled.extend(story.pending)
                story.pending.clear()

    def _submit(
        self, flights: dict[Any, _Flight], flight: _Flight, status: BatchStatus
    ) -> None:
        ref = flight.worker.generate.remote(flight.prepared.request, self._board)
        flights[ref] = flight
        if len(flights) > status.max_in_flight:
            status.max_in_flight = len(flights)
            status.busiest = [
                (f.story, f.prepared.tip.scene_id) for f in flights.values()
            ]
        if self.on_submit is not None:
            story_dir = status.stories[flight.story].story_dir
            self.on_submit(story_dir, flight.prepared.tip.scene_id, flight.worker,
                           flight.attempt)  # fmt: skip

    def _next_ready(
        self,
        status: BatchStatus,
        graphs: dict[int, DynamicSceneGraph],
        flights: dict[Any, _Flight],
        turn: int,
    ) -> tuple[int, str] | None:
        n = len(status.stories)
        flying = {(f.story, f.prepared.tip.scene_id) for f in flights.values()}
        for k in range(n):
            i = (turn + k) % n
            story = status.stories[i]
            for sid in story.pending:
                if (i, sid) in flying:
                    continue
                source = continuity_predecessor(graphs[i], sid)
                waiting = source is not None and (
                    source in story.pending or (i, source) in flying
                )
                if not waiting:
                    return i, sid
        return None

    def _prepare(
        self, story: StoryProgress, sid: str, backend: Any, model: Any, force: bool
    ) -> PreparedTake | None:
        try:
            prepared = prepare_take(
                story.story_dir, sid, backend=backend, model=model, force=force
            )
        except (ContinuityError, ReferenceFileError, StoryError, KeyError) as exc:
            story.pending.remove(sid)
            story.failed.append(sid)
            story.errors[sid] = str(exc).strip("\"'")
            self._notify(story, sid, "failed")
            return None
        if isinstance(prepared, Take):  # an identical take was reused
            self._end(story, sid, prepared)
            return None
        # the scene is in flight: no longer pending, not yet finished
        return prepared

    def _end(self, story: StoryProgress, sid: str, take: Take) -> None:
        if sid in story.pending:
            story.pending.remove(sid)
        if take.status == "done":
            story.finished.append(sid)
            self._notify(story, sid, "done")
        else:
            story.failed.append(sid)
            story.errors[sid] = take.error or "failed"
            self._notify(story, sid, "failed")

    def _cancelled_scene(self, story: StoryProgress, sid: str) -> None:
        if sid in story.pending:
            story.pending.remove(sid)
        story.cancelled.append(sid)
        self._notify(story, sid, "cancelled")

    def _notify(self, story: StoryProgress, sid: str, outcome: str) -> None:
        if self.on_scene_end is not None:
            try:
                self.on_scene_end(story.story_dir, sid, outcome)
            except Exception:
                log.exception("on_scene_end failed after %r", sid)
