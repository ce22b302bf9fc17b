"""One queue for every story a process generates: one order, one scene at a time.

Each story has its own `engine.runner.JobRunner` (its own book of queued
scenes, its own run lock); a front end that generates several stories at
once (the studio) gives them all one `SharedQueue`. The queue keeps a single
order of every queued and running scene, across stories, which the user can
change (`move`), and lets one scene run at a time in the process (one model
on one device): a runner waiting to start a scene gets its turn once no
scene runs and no other waiting runner's scene stands earlier in the order
(`acquire`). A runner never waits on a scene of another story that is not
ready, so the turns cannot deadlock.

Nothing here imports torch or the story: entries are plain (story key,
scene id) pairs, the key being the story folder's resolved path.
"""

from __future__ import annotations

import threading

__all__ = ["Entry", "SharedQueue"]

Entry = tuple[str, str]  # (story key, scene id)

# A waiting runner looks again this often even when nobody wakes it (a
# safety net; every change notifies at once).
_RECHECK_S = 0.5


class SharedQueue:
    """The order of every queued scene across stories, and whose turn it is."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._order: list[Entry] = []
        self._holder: Entry | None = None  # the scene running now
        self._waiting: dict[str, str] = {}  # story key -> the scene it would start

    # the order ------------------------------------------------------------------
    def add(self, key: str, scene_ids: list[str] | tuple[str, ...]) -> None:
        """Queue scenes of story ``key`` behind everything queued."""
        with self._cond:
            for sid in scene_ids:
                if (key, sid) not in self._order:
                    self._order.append((key, sid))
            self._cond.notify_all()

    def discard(self, key: str, scene_id: str) -> None:
        """The scene left the queue (it ended or was removed)."""
        with self._cond:
            if (key, scene_id) in self._order:
                self._order.remove((key, scene_id))
            self._cond.notify_all()

    def order(self) -> list[Entry]:
        """Every queued or running scene, the running one first."""
        with self._cond:
            rest = [e for e in self._order if e != self._holder]
            return ([self._holder] if self._holder in self._order else []) + rest

    def position(self, key: str, scene_id: str) -> int:
        """Where the scene stands in the order (after everything when absent)."""
        with self._cond:
            try:
                return self._order.index((key, scene_id))
            except ValueError:
                return len(self._order)

    def move(self, key: str, scene_id: str, offset: int) -> bool:
        """Move a queued scene ``offset`` places (negative: sooner) among the
        queued ones; False when it is not queued or cannot move."""
        with self._cond:
            entry = (key, scene_id)
            queued = [e for e in self._order if e != self._holder]
            if entry not in queued:
                return False
            i = queued.index(entry)
            j = max(0, min(len(queued) - 1, i + offset))
            if i == j:
                return False
            queued.insert(j, queued.pop(i))
            self._order = (
                [self._holder] if self._holder in self._order else []
            ) + queued
            self._cond.notify_all()
            return True

    # the turn -------------------------------------------------------------------
    def acquire(self, key: str, scene_id: str, wake: threading.Event) -> bool:
        """Wait for scene ``scene_id`` of story ``key`` to run; True once it
        may. False as soon as ``wake`` is set (the runner's queue changed, or
        it was cancelled): the caller looks again at what to start."""
        with self._cond:
            self._waiting[key] = scene_id
            self._cond.notify_all()
            try:
                while not wake.is_set():
                    if self._holder is None and self._first_waiting() == key:
                        self._holder = (key, scene_id)
                        return True
                    self._cond.wait(_RECHECK_S)
                return False
            finally:
                self._waiting.pop(key, None)
                self._cond.notify_all()

    def release(self, key: str, scene_id: str) -> None:
        """The scene ended: the next waiting runner may start."""
        with self._cond:
            if self._holder == (key, scene_id):
                self._holder = None
            if (key, scene_id) in self._order:
                self._order.remove((key, scene_id))
            self._cond.notify_all()

    def give_back(self, key: str, scene_id: str) -> None:
        """The turn was granted but the scene does not start (the queue
        changed meanwhile): the next waiting runner may start; the scene stays
        where it is in the order."""
        with self._cond:
            if self._holder == (key, scene_id):
                self._holder = None
            self._cond.notify_all()

    def wake(self) -> None:
        """Make every waiting runner look again (its own wake event is set)."""
        with self._cond:
            self._cond.notify_all()

    def _first_waiting(self) -> str | None:
        """The story whose waiting scene stands first in the order."""
        best: tuple[int, str] | None = None
        for key, sid in self._waiting.items():
            try:
                at = self._order.index((key, sid))
            except ValueError:
                at = len(self._order)
            if best is None or at < best[0]:
                best = (at, key)
        return None if best is None else best[1]
