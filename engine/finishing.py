"""Takes finished behind the next scene: the job runner's finisher thread.

Once a scene's backend is done, `engine.outcome.finish` with ``defer`` has
written the take's frames, tail latents and sound and started its clip on
the writer; what is left (the clip awaited, the observer's scores, ``done``
and selected in one save) is `engine.outcome.Finishing.rest`. `Finisher`
runs those on one thread in the order the takes were handed over, so a take
is always saved before any take that started from it, while the runner's
worker starts the next scene. Meanwhile a continuous successor may start
from a take being finished (`Finisher.provisional`: what
`engine.generate.prepare_take` plans from).

A take that does not end ``done`` (its clip could not be written, or it was
cancelled) is recorded as lost, with why: a take that started from it is
cancelled on this thread before its own rest runs (it is discarded and its
scene fails, saying so: `lost_sources`), and the runner is told
(``on_lost``) so it can stop the take being made if that one started from
it too. At most one take waits here while a scene is made (`room`), so the
frames of a queue of takes are never held at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from engine.backend import CancelToken
from engine.generate import PreparedTake
from engine.outcome import Finishing
from engine.scheduler import Outcome, outcome_of_error, outcome_of_take
from kg.schema import Take

__all__ = ["Behind", "Finisher", "lost_message", "taken_from"]


@dataclass(frozen=True)
class Behind:
    """A scene past its backend: its take's clip, scores and save to come."""

    job: Any  # the runner's job, handed back with the outcome
    scene_id: str
    finishing: Finishing
    sources: frozenset[str]  # takes still finishing that it started from
    started: float  # perf_counter when the scene started

    @property
    def cancel(self) -> CancelToken:
        return self.finishing.cancel

    @property
    def phase(self) -> str:
        """The phase its take is in (``encode``, ``score``; "" before one)."""
        report = self.finishing.progress.current
        return report.phase if report is not None else ""


def taken_from(prepared: PreparedTake) -> set[str]:
    """The scenes whose takes a prepared take reads: its continuity source
    and its colour anchor (those still being finished are what it must not
    outlive)."""
    request = prepared.request
    anchor = request.color_anchor.anchor_take if request.color_anchor else None
    return {ref.scene_id for ref in (prepared.tip.plan.source, anchor) if ref}


def lost_message(scene_id: str, outcome: Outcome) -> str:
    """Why a take that started from ``scene_id``'s take is not kept.

    >>> lost_message("arrival", Outcome("failed", "disk full"))[:66]
    "scene 'arrival', which it continues from, ended failed (disk full)"
    """
    how = outcome.kind + (f" ({outcome.message})" if outcome.message else "")
    return (
        f"scene {scene_id!r}, which it continues from, ended {how} while this "
        f"scene was being made; generate {scene_id!r} again, then this scene"
    )


class Finisher:
    """Finishes takes on one thread, in hand-over order (module docstring).

    Parameters
    ----------
    cond : the runner's condition; every change here notifies it, and its
        lock guards this object's state.
    on_end : called on the finisher thread with ``(behind, outcome)`` once a
        take has ended (its state saved).
    on_lost : called with a scene whose take did not end done (under
        ``cond``), for the runner to stop a take that started from it.
    stopping : True once everything is being cancelled (then nothing is
        reported as lost: it was all cancelled).
    """

    def __init__(
        self,
        cond: threading.Condition,
        on_end: Callable[[Behind, Outcome], None],
        on_lost: Callable[[str], None],
        stopping: Callable[[], bool],
    ) -> None:
        self._cond = cond
        self._on_end = on_end
        self._on_lost = on_lost
        self._stopping = stopping
        self._behind: dict[str, Behind] = {}
        self._lost: dict[str, str] = {}
        self._pool: ThreadPoolExecutor | None = None

    # the worker's side -----------------------------------------------------------
    def start(self) -> ThreadPoolExecutor:
        """Start a thread for a worker's run (takes handed over from now on
        go to it); `close` it at the end of that run."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="storygraph-finish")
        with self._cond:
            self._pool = pool
        return pool

    def close(self, pool: ThreadPoolExecutor) -> None:
        """Wait for every take handed over to ``pool``, then stop its thread
        (a run started meanwhile keeps its own)."""
        pool.shutdown(wait=True)
        with self._cond:
            if self._pool is pool:
                self._pool = None

    def hand_over(
        self,
        job: Any,
        scene_id: str,
        finishing: Finishing,
        sources: Iterable[str],
        started: float,
    ) -> None:
        """Finish ``finishing`` on the thread (the caller holds ``cond``)."""
        assert self._pool is not None, "start the finisher first"
        behind = Behind(job, scene_id, finishing, frozenset(sources), started)
        self._behind[scene_id] = behind
        self._cond.notify_all()
        self._pool.submit(self._finish, behind)

    def provisional(self, with_clip: bool = False) -> dict[str, Take]:
        """The takes being finished, by scene, for a take to start from (not
        those already cancelled or started from a lost take); ``with_clip``:
        each once its clip is written (`Finishing.with_clip`)."""
        with self._cond:
            usable = [
                b
                for b in self._behind.values()
                if not b.cancel.is_set() and not self.lost(b.sources)
            ]
        return {
            b.scene_id: b.finishing.with_clip() if with_clip else b.finishing.take
            for b in usable
        }

    def room(self) -> bool:
        """Wait until at most one take is being finished; False once
        everything is being cancelled."""
        with self._cond:
            while len(self._behind) > 1 and not self._stopping():
                self._cond.wait()
            return not self._stopping()

    def settle(self) -> None:
        """Wait until no take is being finished."""
        with self._cond:
            while self._behind:
                self._cond.wait()

    def forget(self, scene_id: str) -> None:
        """The scene starts again: its lost take no longer matters."""
        with self._cond:
            self._lost.pop(scene_id, None)

    # what the runner reports ---------------------------------------------------------
    def __contains__(self, scene_id: object) -> bool:
        return scene_id in self._behind

    def __bool__(self) -> bool:
        return bool(self._behind)

    def first(self) -> Behind | None:
        """The take handed over first (None: none is being finished)."""
        with self._cond:
            return next(iter(self._behind.values()), None)

    def listing(self, besides: Behind | None = None) -> tuple[tuple[str, str], ...]:
        """``(scene, phase)`` of each take being finished, ``besides`` left out."""
        with self._cond:
            return tuple(
                (sid, b.phase) for sid, b in self._behind.items() if b is not besides
            )

    def lost_sources(self, sources: Iterable[str]) -> list[str]:
        """Why each of ``sources`` did not end done (none while everything
        is being cancelled)."""
        with self._cond:
            if self._stopping():
                return []
            return [self._lost[s] for s in sorted(sources) if s in self._lost]

    def lost(self, sources: Iterable[str]) -> bool:
        """Whether any of ``sources`` did not end done (the caller holds
        ``cond``)."""
        return any(s in self._lost for s in sources)

    # cancel ---------------------------------------------------------------------------
    def cancel(self, scene_id: str | None = None) -> bool:
        """Cancel the take of ``scene_id`` being finished (every one when
        None); False when it is not here."""
        with self._cond:
            if scene_id is None:
                for behind in self._behind.values():
                    behind.cancel.set()
                return bool(self._behind)
            behind = self._behind.get(scene_id)
            if behind is None:
                return False
            behind.cancel.set()
            self._cond.notify_all()
            return True

    # the finisher thread ----------------------------------------------------------
    def _finish(self, behind: Behind) -> None:
        lost = self.lost_sources(behind.sources)
        if lost:
            behind.cancel.set()  # its source failed: it is not kept
        try:
            outcome = outcome_of_take(behind.finishing.rest())
        except Exception as exc:  # how it ends: engine.scheduler.ERROR_RULES
            outcome = outcome_of_error(behind.scene_id, exc)
        if lost:
            outcome = Outcome("failed", lost[0])
        with self._cond:
            if outcome.kind != "done":
                self._lost[behind.scene_id] = lost_message(behind.scene_id, outcome)
                for other in self._behind.values():
                    if behind.scene_id in other.sources:
                        other.cancel.set()
                self._on_lost(behind.scene_id)
        try:
            self._on_end(behind, outcome)
        finally:  # only now is it no longer being finished
            with self._cond:
                del self._behind[behind.scene_id]
                self._cond.notify_all()
