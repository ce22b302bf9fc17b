"""Duplicate a story folder: real files and folders only, all or nothing.

The copy is built under a hidden temporary name in the outputs root and
renamed into place once complete, so a failure on the way (a full disk, a
file that cannot be read) removes it: no half copy is ever listed.

What a copy leaves out, and why:

- locks, temporary files and backups: they belong to the original;
- symbolic links: never followed (their target may be outside the story)
  nor copied (the copy would refuse to use them);
- FIFOs, sockets and devices: they hold no data to copy, and reading one
  can block for good. Every file is opened with ``O_NONBLOCK`` and
  ``O_NOFOLLOW`` and checked with ``fstat`` before a byte is read, so a file
  swapped for one while the copy runs is left out too.

Links and special files that were left out are reported, so the studio can
say what the copy lacks. The story folder itself may be a link (a shortcut
in the outputs root): it is read where it points.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from kg.edits import edit_story
from kg.errors import StoryError
from kg.paths import TMP_MARK, file_kind
from kg.schema import Story

__all__ = ["Duplicated", "copy_story_folder"]

# Names Duplicate never copies: the original's locks, temporary files, backups.
NOT_COPIED = (".kg_state.lock", ".run.lock", f".*{TMP_MARK}-*", "*.bak")


@dataclass(frozen=True)
class Duplicated:
    """A finished copy and what it left out (``"scenes/x/pipe (a FIFO ...)"``)."""

    folder: Path
    left_out: tuple[str, ...] = ()


def _copy_file(src: Path, dst: Path) -> str | None:
    """Copy one regular file; what it is instead when it is not one."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(src, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link"
        if exc.errno == errno.ENXIO:
            return "a socket"
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return file_kind(info.st_mode)
        with os.fdopen(os.dup(fd), "rb") as source, open(dst, "xb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        os.chmod(dst, stat.S_IMODE(info.st_mode))
        os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns))
    finally:
        os.close(fd)
    return None


def _copy_tree(src: Path, dst: Path, rel: str, left_out: list[str]) -> None:
    dst.mkdir()
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if any(fnmatch.fnmatch(entry.name, pattern) for pattern in NOT_COPIED):
            continue
        shown = f"{rel}{entry.name}"
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            _copy_tree(Path(entry.path), dst / entry.name, f"{shown}/", left_out)
            continue
        why = (
            _copy_file(Path(entry.path), dst / entry.name)
            if stat.S_ISREG(mode)
            else file_kind(mode)
        )
        if why is not None:
            left_out.append(f"{shown} ({why})")


def copy_story_folder(source: Path, folder: Path) -> Duplicated:
    """Copy the story at ``source`` to the new ``folder`` (see the module
    docstring); the copy's title gains " (copy)"."""
    tmp = folder.with_name(f".{folder.name}{TMP_MARK}-{secrets.token_hex(6)}")
    left_out: list[str] = []
    try:
        _copy_tree(Path(source), tmp, "", left_out)

        def retitle(story: Story) -> None:
            story.title = f"{story.title} (copy)"[:200]

        edit_story(tmp, retitle)
        try:
            os.rename(tmp, folder)  # refuses a folder made meanwhile (not empty)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise StoryError(
                    f"Folder name {folder.name!r} was taken while copying; "
                    "choose another"
                ) from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Duplicated(folder, tuple(left_out))
