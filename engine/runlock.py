"""The run lock: tells a live generation from one a dead process left behind.

A process generating scenes of a story holds ``<story>/.run.lock`` (an OS file
lock, released by the kernel when the process dies, even by SIGKILL). So a
``generating`` scene whose story nobody holds the lock of was left by a process
that died, and `engine.recovery.recover_interrupted` may mark it
``interrupted``. Within one process the lock is re-entrant (the job runner
holds it for a whole queue; each scene generation takes it again).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from engine.errors import RunLockedError
from kg.paths import refuse_link

__all__ = ["RUN_LOCK_FILE", "RunLockedError", "hold_run", "held_here"]

RUN_LOCK_FILE = ".run.lock"


_guard = threading.Lock()
_held: dict[Path, tuple[FileLock, int]] = {}  # story folder -> (lock, depth)


def _key(story_dir: str | os.PathLike[str]) -> Path:
    return Path(story_dir).resolve()


def held_here(story_dir: str | os.PathLike[str]) -> bool:
    """Whether this process is generating scenes of the story right now."""
    with _guard:
        return _key(story_dir) in _held


@contextlib.contextmanager
def hold_run(story_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the story's run lock; raises `RunLockedError` if another process has it."""
    key = _key(story_dir)
    with _guard:
        if key in _held:
            lock, depth = _held[key]
            _held[key] = (lock, depth + 1)
        else:
            # FileLock opens (and truncates) the file: never through a link.
            lock_file = refuse_link(key / RUN_LOCK_FILE)
            lock = FileLock(lock_file, timeout=0, thread_local=False)
            try:
                lock.acquire()
            except Timeout:
                raise RunLockedError(
                    f"another process is generating scenes of {key} (it holds "
                    f"{key / RUN_LOCK_FILE}); wait for it to finish or stop it"
                ) from None
            _held[key] = (lock, 1)
    try:
        yield
    finally:
        with _guard:
            lock, depth = _held[key]
            if depth == 1:
                del _held[key]
                lock.release()
            else:
                _held[key] = (lock, depth - 1)
