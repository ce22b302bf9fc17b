"""The story library on disk.

Story folders under the outputs root: list (an unreadable folder never takes
the list down), create, import, duplicate (`studio.story_copy`: real files
only, all or nothing), delete, and the story opened last.

An entry of the root may be a symbolic link to a story kept elsewhere (a
shortcut: the user's choice of where a story lives, see `kg.paths`). It is
listed, marked as a link, and opens like any story; deleting it removes the
link only, never the story it points to. Hiding links instead would leave
such a story unreachable from the studio, and a delete that followed them
would destroy a folder the user never asked to delete.
Reference image uploads live in `studio.reference_images`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kg.edits import problems_of
from kg.errors import StoryError, StoryValidationError
from kg.files import MAX_MEDIA_BYTES, check_story_file, read_image
from kg.paths import inside, read_regular_file, write_atomic
from kg.paths import resolve_asset as _resolve_asset
from kg.store import STATE_FILE, parse_story_bytes, save_story
from studio.story_copy import Duplicated, copy_story_folder
from studio.story_views import forget_views, story_view

log = logging.getLogger(__name__)


OUTPUTS_ENV = "STORYGRAPH_OUTPUTS"
LAST_STORY_FILE = ".studio-last-story"
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


# Stories on disk ----------------------------------------------------------------


@dataclass(frozen=True)
class StoryEntry:
    """One folder under the outputs root, readable or not."""

    slug: str
    path: Path
    title: str
    scenes: int
    generated: int
    revision: int
    error: str | None = None
    link: str | None = None  # where a symbolic link in the root points


def outputs_root() -> Path:
    """Where stories live: ``$STORYGRAPH_OUTPUTS`` or ``story_outputs/``."""
    return Path(os.environ.get(OUTPUTS_ENV, "story_outputs")).resolve()


def list_stories(root: Path | None = None) -> list[StoryEntry]:
    """Every story folder under the root, by name; unreadable ones say why."""
    root = root or outputs_root()
    out = []
    for folder in _story_folders(root):
        link = _link_target(folder)
        try:
            story = story_view(folder).story
        except (StoryError, OSError) as exc:
            message = str(exc) if len(str(exc)) <= 2_000 else str(exc)[:2_000] + "…"
            out.append(
                StoryEntry(folder.name, folder, folder.name, 0, 0, 0, message, link)
            )
            continue
        generated = sum(1 for s in story.scenes if s.selected_take is not None)
        out.append(
            StoryEntry(
                folder.name,
                folder,
                story.title,
                len(story.scenes),
                generated,
                story.revision,
                link=link,
            )
        )
    return out


def _link_target(path: Path) -> str | None:
    """Where ``path`` points when it is a symbolic link, else None."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def _story_folders(root: Path) -> list[Path]:
    """Folders under ``root`` that hold a ``kg_state.json``, by name.

    One unreadable folder (permissions, a dangling link) is skipped with a log
    line; it never takes the listing down.
    """
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        log.warning("cannot list the stories in %s: %s", root, exc)
        return []
    folders = []
    for entry in entries:
        if entry.name.startswith("."):
            continue  # the last-story marker, a copy under construction
        try:
            if entry.is_dir() and os.path.lexists(os.path.join(entry.path, STATE_FILE)):
                folders.append(Path(entry.path))
        except OSError as exc:
            log.warning("skipping %s: %s", entry.path, exc)
    return folders


def slugify(text: str) -> str:
    """A folder name from a title: ``"The Storm!"`` -> ``"the-storm"``."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return slug[:64] or "story"


def check_slug(slug: str, root: Path | None = None) -> str | None:
    """Why ``slug`` cannot be a new story folder, or None when it can."""
    if not _SLUG_RE.match(slug):
        return (
            f"Folder name {slug!r}: use lowercase letters, digits, '-' and '_' "
            "(at most 64), starting with a letter or digit"
        )
    if ((root or outputs_root()) / slug).exists():
        return f"Folder name {slug!r} is taken; choose another or delete that story"
    return None


def _new_folder(slug: str) -> Path:
    problem = check_slug(slug)
    if problem:
        raise StoryError(problem)
    return outputs_root() / slug


def create_story(slug: str, title: str, *, example: bool = False) -> Path:
    """A new story folder, blank or holding the example story."""
    from kg.example import blank_story, example_story

    folder = _new_folder(slug)
    title = title.strip()
    try:
        if example:
            story = example_story(title) if title else example_story()
        else:
            story = blank_story(title or slug)
    except ValidationError as exc:
        raise StoryValidationError("new story", problems_of(exc)) from None
    save_story(story, folder)
    return folder


def import_story(slug: str, data: bytes, source: str = "kg_state.json") -> Path:
    """Validate an uploaded ``kg_state.json`` and store it as a new story.

    Raises `StoryValidationError` naming every problem's JSON path. Takes
    whose files did not come along keep their records (the files read as
    missing) so nothing the file said is dropped.
    """
    story = parse_story_bytes(data, source)
    folder = _new_folder(slug)
    story.revision = 0
    save_story(story, folder)
    return folder


def duplicate_story(source: Path, slug: str) -> Duplicated:
    """Copy a story folder with its takes (`studio.story_copy`); the copy
    starts at revision 0 and says what it left out."""
    return copy_story_folder(source, _new_folder(slug))


def delete_story(folder: Path) -> str | None:
    """Remove a story from the outputs root; refuses anything outside it.

    Returns where the link pointed when ``folder`` is a symbolic link: then
    only the link is removed and the story it points to is kept. None when a
    story folder was deleted.
    """
    root = outputs_root()
    given = Path(os.path.abspath(folder))
    entry = root / given.name
    if given.parent.resolve() != root:
        raise StoryError(f"{given} is not a story folder under {root}; not deleted")
    try:
        mode = os.lstat(entry).st_mode
    except FileNotFoundError:
        raise StoryError(f"{entry} no longer exists; nothing deleted") from None
    if stat.S_ISLNK(mode):
        target = os.readlink(entry)
        entry.unlink()  # the link itself; its target is never touched
        forget_views()
        return target
    if not stat.S_ISDIR(mode) or not os.path.lexists(entry / STATE_FILE):
        raise StoryError(f"{entry} is not a story folder under {root}; not deleted")
    shutil.rmtree(entry)  # refuses a link swapped in meanwhile; never follows one
    forget_views()
    return None


def remember_last_story(folder: Path | None) -> None:
    """Record the open story so a reloaded page opens it again."""
    marker = outputs_root() / LAST_STORY_FILE
    try:
        if folder is None:
            marker.unlink(missing_ok=True)
        else:
            # atomic: replaces whatever is there (a FIFO would block a write)
            write_atomic(marker, folder.name.encode("utf-8"))
    except OSError as exc:
        log.warning("could not remember the open story in %s: %s", marker, exc)


def last_story() -> Path | None:
    """The story open last, when it still exists."""
    marker = outputs_root() / LAST_STORY_FILE
    try:  # never blocks: a FIFO or a device there is refused
        slug = read_regular_file(marker, 256).decode("utf-8", "replace").strip()
    except (OSError, StoryError):
        return None
    if not slug or "/" in slug or slug.startswith("."):
        return None  # a name in the root, nothing else
    folder = outputs_root() / slug
    return folder if slug and (folder / STATE_FILE).exists() else None


def dataset_folder(folder: Path, rel: str) -> Path:
    """Where a dataset of the story goes; `UnsafePathError` through a link."""
    return inside(folder, rel)


def media_file(folder: Path, rel: str | None, what: str) -> Path | None:
    """A story file a page may hand to Streamlit (which reads it whole): None
    when there is none on disk, `StoryError` when it is a link, not a regular
    file (a FIFO would block the page for good) or over `MAX_MEDIA_BYTES`."""
    path = resolve_asset(folder, rel)
    if path is None:
        return None
    check_story_file(path, max_bytes=MAX_MEDIA_BYTES, what=what)
    return path


def frame_image(folder: Path, rel: str | None, what: str, size: int) -> Any | None:
    """A stored frame or image as a small RGB image (None: none on disk);
    `StoryError` for a bomb, a FIFO, a link or anything not an image."""
    path = resolve_asset(folder, rel)
    if path is None:
        return None
    return read_image(path, what=what, thumbnail=(size, size))


def frame_problems(folder: Path, take: Any) -> list[str]:
    """Why a take's first or last frame cannot be used (empty: they can).

    Each frame is decoded once per file version (a thumbnail, its pixel count
    checked first), so a page may ask on every run.
    """
    problems = []
    for rel, which in (
        (take.files.first_frame, "first frame"),
        (take.files.last_frame, "last frame"),
    ):
        what = f"{which} of take {take.index}"
        try:
            path = resolve_asset(folder, rel)
            if path is None:
                continue
            info = os.lstat(path)
            _checked_frame(str(path), info.st_mtime_ns, info.st_size, what)
        except (StoryError, OSError) as exc:
            problems.append(f"{exc}; generate the scene again to replace it")
    return problems


@functools.lru_cache(maxsize=512)
def _checked_frame(path: str, mtime_ns: int, size: int, what: str) -> None:
    read_image(path, what=what, thumbnail=(96, 96))


def resolve_asset(folder: Path, rel: str | None) -> Path | None:
    """Absolute path of a stored asset when it exists, else None."""
    if not rel:
        return None
    try:
        path = _resolve_asset(folder, rel)
    except StoryError:
        return None
    return path if path.exists() else None
