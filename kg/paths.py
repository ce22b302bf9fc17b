"""File access confined to a story folder.

A story folder may come from anywhere (a zip, a colleague, a download), so
nothing inside it is trusted to stay inside it: every path StoryGraph opens
for a story goes through this module, which

- accepts only relative, forward-slash paths that do not climb out
  (`kg.schema.check_relative_path`), and
- refuses a symbolic link at any component below the story folder (a
  ``scenes`` or ``dataset`` link, a linked ``kg_state.json`` or lock file), so
  no read, write, delete or copy can reach outside the folder through a link.

Links are refused rather than resolved and checked: a link that points inside
the folder today can be changed to point outside tomorrow, between the check
and the use. The story folder itself may be a link (that is the user's
choice of where stories live); only what is inside it is checked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from kg.errors import StoryFileError, UnsafePathError
from kg.fields import check_relative_path

__all__ = [
    "inside",
    "make_folder",
    "read_regular_file",
    "refuse_link",
    "resolve_asset",
    "walk_files",
    "write_atomic",
    "atomic_path",
    "file_kind",
    "TMP_MARK",
]

TMP_MARK = ".partial"  # in every temporary file name, so cleanup finds them


def _link_message(shown: str) -> str:
    return (
        f"{shown} in the story folder is a symbolic link; StoryGraph never "
        "follows links inside a story (they can reach outside it): replace it "
        "with the real folder or file"
    )


def refuse_link(path: str | os.PathLike[str]) -> Path:
    """``path``, or `UnsafePathError` when it is a symbolic link."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafePathError(_link_message(path.name))
    return path


def inside(story_dir: str | os.PathLike[str], rel: str) -> Path:
    """``story_dir / rel``, refusing unsafe paths and links on the way.

    Components that do not exist yet are fine (the caller may create them);
    every existing one below ``story_dir`` must be a real folder or file.

    Examples
    --------
    >>> inside("/stories/a", "scenes/s1/take-1.mp4").as_posix()
    '/stories/a/scenes/s1/take-1.mp4'
    >>> inside("/stories/a", "../b/kg_state.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kg.errors.UnsafePathError: path '../b/kg_state.json' leaves the story folder...
    """
    try:
        check_relative_path(rel)
    except ValueError as exc:
        raise UnsafePathError(str(exc)) from None
    root = Path(story_dir)
    current = root
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            break  # nothing further down exists yet
        if stat.S_ISLNK(mode):
            raise UnsafePathError(_link_message(current.relative_to(root).as_posix()))
    return root / rel


def resolve_asset(story_dir: str | os.PathLike[str], rel: str) -> Path:
    """Absolute path of an asset inside the story folder (see `inside`)."""
    return inside(Path(story_dir).absolute(), rel)


def make_folder(story_dir: str | os.PathLike[str], rel: str) -> Path:
    """Create ``story_dir / rel`` (and its parents) inside the story folder."""
    path = inside(story_dir, rel)
    path.mkdir(parents=True, exist_ok=True)
    return inside(story_dir, rel)  # nothing on the way became a link meanwhile


def walk_files(story_dir: str | os.PathLike[str], rel: str) -> Iterator[Path]:
    """Regular files under ``story_dir / rel``; links are neither entered nor
    listed, nor are FIFOs, sockets or devices (reading one can block)."""
    top = inside(story_dir, rel)
    if not top.is_dir():
        return
    for folder, _dirs, files in os.walk(top, followlinks=False):
        for name in files:
            path = Path(folder) / name
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISREG(mode):  # no link, FIFO, socket or device
                yield path


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ("a FIFO (named pipe)")."""
    for test, words in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return words
    return "a special file"


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of a regular file, at most ``max_bytes + 1`` of them.

    Never follows a link at the last component, never blocks on a FIFO or a
    device, and says so when the path is a folder.
    """
    path = Path(path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(_link_message(path.name)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(
                errno.EISDIR, "is a folder where a file should be", str(path)
            )
        if not stat.S_ISREG(mode):
            raise StoryFileError(
                f"{path.name} is {file_kind(mode)}, not a regular file; StoryGraph "
                "never reads one (it can block for good): delete it or replace "
                "it with the real file"
            )
        chunks = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The one way StoryGraph writes a file: a reader never sees a half-written
    one, and a process killed mid-write leaves only a hidden temporary file
    (``.take-1.partial-ab12cd.mp4``: the suffix stays for tools that pick the
    format by it) that `engine.video.remove_partial_files` cleans up. The name
    is random, so a link planted beside ``path`` is never written through, and
    the rename replaces a link at ``path`` itself, never its target.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(
        f".{final.stem}{TMP_MARK}-{secrets.token_hex(6)}{final.suffix}"
    )
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (`atomic_path`), synced to disk."""
    with atomic_path(path) as tmp, open(tmp, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
