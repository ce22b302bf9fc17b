"""The story library on disk and what users upload into it.

Story folders under the outputs root: list (an unreadable folder never takes
the list down), create, import, duplicate (links are not copied), delete,
and the story opened last. Reference images are decoded completely before
they are stored, and bombs are refused.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kg.edits import edit_story, problems_of, reference_owner
from kg.errors import StoryError, StoryValidationError
from kg.layout import references_dir
from kg.paths import TMP_MARK, inside, make_folder
from kg.paths import resolve_asset as _resolve_asset
from kg.schema import Story
from kg.store import STATE_FILE, parse_story_bytes, save_story
from studio.story_views import forget_views, story_view

log = logging.getLogger(__name__)


OUTPUTS_ENV = "STORYGRAPH_OUTPUTS"
LAST_STORY_FILE = ".studio-last-story"
# A take that exists on disk: regenerating or reselecting upstream makes it stale.
# What "generate all pending" picks up.
# Reference images: what browsers and the encoders read, and a size that keeps
# the story folder portable.
REFERENCE_TYPES = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
MAX_REFERENCE_BYTES = 10 * 1024 * 1024
# 50 megapixels (e.g. 8,660 x 5,773): more is a decompression bomb, not a
# reference photo; Pillow itself only refuses beyond about 179 megapixels.
MAX_REFERENCE_PIXELS = 50_000_000
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


def outputs_root() -> Path:
    """Where stories live: ``$STORYGRAPH_OUTPUTS`` or ``story_outputs/``."""
    return Path(os.environ.get(OUTPUTS_ENV, "story_outputs")).resolve()


def list_stories(root: Path | None = None) -> list[StoryEntry]:
    """Every story folder under the root, by name; unreadable ones say why."""
    root = root or outputs_root()
    out = []
    for folder in _story_folders(root):
        try:
            story = story_view(folder).story
        except (StoryError, OSError) as exc:
            message = str(exc) if len(str(exc)) <= 2_000 else str(exc)[:2_000] + "…"
            out.append(StoryEntry(folder.name, folder, folder.name, 0, 0, 0, message))
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
            )
        )
    return out


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


def duplicate_story(source: Path, slug: str) -> Path:
    """Copy a story folder with its takes; the copy starts at revision 0."""
    folder = _new_folder(slug)
    shutil.copytree(source, folder, symlinks=True, ignore=_not_copied)

    def reset(story: Story) -> None:
        story.title = f"{story.title} (copy)"[:200]

    edit_story(folder, reset)
    return folder


def _not_copied(directory: str, names: list[str]) -> set[str]:
    """What Duplicate leaves behind: locks, temporary files, backups and links.

    A link is not followed (its target may be outside the story) nor copied
    (the copy would refuse to use it anyway).
    """
    patterns = shutil.ignore_patterns(
        ".kg_state.lock", ".run.lock", f".*{TMP_MARK}-*", "*.bak"
    )
    skip = set(patterns(directory, names))
    skip.update(n for n in names if os.path.islink(os.path.join(directory, n)))
    return skip


def delete_story(folder: Path) -> None:
    """Remove a story folder; refuses anything outside the outputs root."""
    folder = folder.resolve()
    root = outputs_root()
    if folder.parent != root or not (folder / STATE_FILE).exists():
        raise StoryError(f"{folder} is not a story folder under {root}; not deleted")
    shutil.rmtree(folder)
    forget_views()


def remember_last_story(folder: Path | None) -> None:
    """Record the open story so a reloaded page opens it again."""
    marker = outputs_root() / LAST_STORY_FILE
    try:
        if folder is None:
            marker.unlink(missing_ok=True)
        else:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(folder.name, encoding="utf-8")
    except OSError as exc:
        log.warning("could not remember the open story in %s: %s", marker, exc)


def last_story() -> Path | None:
    """The story open last, when it still exists."""
    marker = outputs_root() / LAST_STORY_FILE
    try:
        slug = marker.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    folder = outputs_root() / slug
    return folder if slug and (folder / STATE_FILE).exists() else None


def _check_reference(filename: str, data: bytes) -> tuple[str, str]:
    """(extension, PIL format) of an acceptable image, else `StoryError`.

    The image is decoded completely, so a file whose header is fine but whose
    body is not is refused here, not when the Cast page shows it.
    """
    shown = repr(filename if len(filename) <= 60 else filename[:57] + "...")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in REFERENCE_TYPES:
        raise StoryError(
            f"Reference image {shown}: type .{ext[:10] or '?'} is not accepted; "
            "upload a PNG, JPEG or WebP file"
        )
    if len(data) > MAX_REFERENCE_BYTES:
        raise StoryError(
            f"Reference image {shown}: {len(data) / 1e6:.1f} MB is over the "
            f"{MAX_REFERENCE_BYTES // (1024 * 1024)} MB limit; upload a smaller image"
        )
    fmt = _decode_image(shown, data)
    if fmt != REFERENCE_TYPES[ext]:
        raise StoryError(
            f"Reference image {shown}: the file is {fmt}, not "
            f"{REFERENCE_TYPES[ext]} as its name says; rename or re-export it"
        )
    return ext, fmt


def _decode_image(shown: str, data: bytes) -> str:
    """Decode every pixel of an uploaded image; its PIL format, else `StoryError`."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                width, height = img.size
                if width * height > MAX_REFERENCE_PIXELS:
                    raise StoryError(
                        f"Reference image {shown}: {width} x {height} pixels is "
                        f"over the {MAX_REFERENCE_PIXELS // 1_000_000} megapixel "
                        "limit; upload a smaller image"
                    )
                img.verify()  # checksums (PNG chunks) before decoding
            with Image.open(io.BytesIO(data)) as img:
                img.load()  # every pixel: a truncated or corrupt body fails here
    except StoryError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise StoryError(
            f"Reference image {shown}: too many pixels to decode safely; upload a "
            "smaller image"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means unreadable
        raise StoryError(
            f"Reference image {shown}: not a readable image "
            f"({type(exc).__name__}: {str(exc)[:120]}); upload a PNG, JPEG or "
            "WebP file"
        ) from None
    return fmt


def reference_thumbnail(path: Path, size: int = 240) -> Any | None:
    """A small RGB copy of a stored reference image; None when it cannot be read."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.size[0] * img.size[1] > MAX_REFERENCE_PIXELS:
                    return None
                img.thumbnail((size, size))
                return img.convert("RGB")
    except Exception:  # noqa: BLE001 - whatever is wrong with it, it is not shown
        log.warning("reference image %s cannot be decoded", path)
        return None


def add_reference_image(
    folder: Path, character_id: str, filename: str, data: bytes, kind: str = "character"
) -> str:
    """Store an uploaded reference image of a character (or an environment,
    ``kind``); returns its path in the story folder."""
    ext, _ = _check_reference(filename, data)
    stem = slugify(filename.rsplit(".", 1)[0])
    rel_dir = references_dir(character_id)
    target_dir = make_folder(folder, rel_dir)
    name, n = f"{stem}.{ext}", 1
    while True:
        try:
            # "x": never overwrites, never writes through a planted link
            with open(target_dir / name, "xb") as fh:
                fh.write(data)
            break
        except FileExistsError:
            n += 1
            name = f"{stem}-{n}.{ext}"
    rel = f"{rel_dir}/{name}"

    def mutate(story: Story) -> None:
        c = reference_owner(story, character_id, kind)
        c.reference_images = [*c.reference_images, rel]

    edit_story(folder, mutate)
    return rel


def dataset_folder(folder: Path, rel: str) -> Path:
    """Where a dataset of the story goes; `UnsafePathError` through a link."""
    return inside(folder, rel)


def resolve_asset(folder: Path, rel: str | None) -> Path | None:
    """Absolute path of a stored asset when it exists, else None."""
    if not rel:
        return None
    try:
        path = _resolve_asset(folder, rel)
    except StoryError:
        return None
    return path if path.exists() else None
