"""Reference images users upload for characters and environments.

An upload is decoded completely before it is stored (a file whose header is
fine but whose body is not is refused here, not when the Cast page shows
it), and bombs are refused by the pixel count their header claims. Stored
images are shown through `kg.files.read_image`, which never blocks on a FIFO
and refuses bombs before decoding. An upload whose bytes equal one of the
entity's stored references (a second click, the same photo under another
name) is refused, naming the stored file.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any

from kg.edits import edit_story, reference_owner
from kg.errors import StoryError
from kg.files import MAX_IMAGE_PIXELS, read_image
from kg.layout import references_dir
from kg.paths import read_regular_file
from kg.schema import Story
from studio.uploads import store_new_file

__all__ = [
    "MAX_REFERENCE_BYTES",
    "MAX_REFERENCE_PIXELS",
    "REFERENCE_TYPES",
    "add_reference_image",
    "DuplicateReferenceError",
    "reference_thumbnail",
]

log = logging.getLogger(__name__)

# Reference images: what browsers and the encoders read, and a size that keeps
# the story folder portable.
REFERENCE_TYPES = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
MAX_REFERENCE_BYTES = 10 * 1024 * 1024
# 50 megapixels (e.g. 8,660 x 5,773): more is a decompression bomb, not a
# reference photo; Pillow itself only refuses beyond about 179 megapixels.
MAX_REFERENCE_PIXELS = MAX_IMAGE_PIXELS


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
    """A small RGB copy of a stored reference image; None when it cannot be read
    (a FIFO, a link, a bomb, not an image: `kg.files.read_image` says why)."""
    try:
        return read_image(path, what="reference image", thumbnail=(size, size))
    except (StoryError, OSError) as exc:
        log.warning("reference image %s cannot be shown: %s", path, exc)
        return None


class DuplicateReferenceError(StoryError):
    """The upload is already one of the entity's reference images."""


def _stored_copy(
    folder: Path, story: Story, entity_id: str, kind: str, data: bytes
) -> str | None:
    """The entity's stored reference with the same bytes as ``data``, if any."""
    digest = hashlib.sha256(data).digest()
    for rel in reference_owner(story, entity_id, kind).reference_images:
        try:
            stored = read_regular_file(folder / rel, MAX_REFERENCE_BYTES)
        except (OSError, StoryError):
            continue  # missing or unreadable: the Cast page says so
        if len(stored) == len(data) and hashlib.sha256(stored).digest() == digest:
            return rel
    return None


def add_reference_image(
    folder: Path, character_id: str, filename: str, data: bytes, kind: str = "character"
) -> str:
    """Store an uploaded reference image of a character (or an environment,
    ``kind``); returns its path in the story folder.

    Raises `DuplicateReferenceError` when the same bytes are stored already.
    """
    from kg.store import load_story

    ext, _ = _check_reference(filename, data)
    same = _stored_copy(folder, load_story(folder), character_id, kind, data)
    if same is not None:
        raise DuplicateReferenceError(
            f"This image is already a reference of {character_id}: {same}. "
            "Nothing was stored; upload another image"
        )
    rel, stored = store_new_file(
        folder, references_dir(character_id), filename, ext, data
    )

    def mutate(story: Story) -> None:
        c = reference_owner(story, character_id, kind)
        c.reference_images = [*c.reference_images, rel]
        if _stored_copy(folder, story, character_id, kind, data) not in (None, rel):
            raise DuplicateReferenceError(  # stored by another session meanwhile
                f"This image is already a reference of {character_id}; "
                "nothing was stored"
            )

    try:
        edit_story(folder, mutate)
    except BaseException:
        stored.unlink(missing_ok=True)  # not referenced: not kept
        raise
    return rel
