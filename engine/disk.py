"""A full disk, said plainly: which file, how much space is left, what to do.

Writing a take, a film, a dataset or the story itself can run out of space
(``ENOSPC``) or quota (``EDQUOT``). Every write of a story is atomic, so
nothing saved before is lost; what the user needs is which file could not be
written, how much is free where it goes, and how much to free. The scheduler
(`engine.scheduler.ERROR_RULES`), the ``storygraph`` command and the studio
show `disk_full_message` instead of a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

__all__ = ["DISK_FULL_ERRNOS", "NEEDED_FREE_BYTES", "disk_full", "disk_full_message"]

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# What to free at least: a take's clip, frames and latents are tens of MB, a
# film or a dataset hundreds; a gigabyte lets the next step finish.
NEEDED_FREE_BYTES = 1024**3


def disk_full(exc: BaseException | None) -> OSError | None:
    """The disk-full `OSError` ``exc`` is or was raised from, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _human(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _free_near(path: Path) -> tuple[Path, int] | None:
    for folder in (path, *path.parents):
        try:
            return folder, shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def disk_full_message(exc: BaseException) -> str | None:
    """What to tell the user when ``exc`` is a full disk or quota; None when
    it is not.

    >>> import errno
    >>> disk_full_message(OSError(errno.EPERM, "no")) is None
    True
    """
    err = disk_full(exc)
    if err is None:
        return None
    name = err.filename or err.filename2
    path = Path(os.fsdecode(name)) if name else None
    quota = err.errno == errno.EDQUOT
    what = "the disk quota is used up" if quota else "the disk is full"
    target = f"could not write {path}" if path else "a file could not be written"
    free = _free_near(path.parent) if path else None
    where = f"; {_human(free[1])} free on the disk holding {free[0]}" if free else ""
    return (
        f"{what}: {target}{where}. Free at least {_human(NEEDED_FREE_BYTES)} "
        "there (or move the story to a disk with room) and run it again; "
        "nothing saved before was lost"
    )
