"""Opening story files: regular files only, never blocking, within limits.

A story folder may hold whatever a zip, a colleague or a careless copy put
there: a FIFO whose read never ends, a socket or a device, a link, a
gigabyte "frame", a PNG whose 100-byte header claims 50,000 x 50,000 pixels
(a decompression bomb: 7.5 GB once decoded). Every story file StoryGraph
reads goes through here:

- `check_story_file`: what a path is, without opening it (``os.lstat``): a
  regular file within a size limit, else `StoryFileError` (a link is
  `UnsafePathError`). Files handed to another program (ffmpeg, safetensors'
  memory map, Streamlit's media server) are checked right before.
- `read_story_file`: the bytes of a regular file, opened with ``O_NONBLOCK``
  and ``O_NOFOLLOW`` and checked with ``fstat`` (`kg.paths.read_regular_file`),
  at most ``max_bytes``.
- `read_image`: a PNG, JPEG or WebP decoded only after the pixel count its
  header claims is checked against `MAX_IMAGE_PIXELS` (Pillow's own
  ``DecompressionBombError`` is caught as well, never relied on).

Messages name the file, say what is wrong and what to do.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from kg.errors import StoryFileError, UnsafePathError
from kg.paths import file_kind, read_regular_file

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_MEDIA_BYTES",
    "MAX_TENSOR_BYTES",
    "check_story_file",
    "read_story_file",
    "read_image",
]

# 50 megapixels (8,660 x 5,773): a frame or a reference photo is far smaller;
# more is a decompression bomb. Pillow itself only refuses beyond 179 MP.
MAX_IMAGE_PIXELS = 50_000_000
# A still image file, even an uncompressed 50 MP one, is under 150 MB; frames
# and references are a few MB.
MAX_IMAGE_BYTES = 160 * 1024 * 1024
# A clip, a film or a sound file: a 120 s 4K take is well under 1 GB.
MAX_MEDIA_BYTES = 2 * 1024**3
# Tail latents and embeddings: a few MB even at 1080p.
MAX_TENSOR_BYTES = 1024**3


def _label(path: Path, what: str | None) -> str:
    return f"{what} ({path.name})" if what else str(path)


def _size_text(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB" if n < 1024**3 else f"{n / 1024**3:,.1f} GB"


def check_story_file(
    path: str | os.PathLike[str], *, max_bytes: int, what: str | None = None
) -> os.stat_result:
    """The ``lstat`` of a regular file of at most ``max_bytes``, or an error.

    Raises `FileNotFoundError` when nothing is there, `UnsafePathError` for a
    symbolic link, `StoryFileError` for a folder, FIFO, socket or device and
    for a file over ``max_bytes``. Nothing is opened, so nothing can block.
    """
    path = Path(path)
    info = os.lstat(path)  # FileNotFoundError passes through
    shown = _label(path, what)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePathError(
            f"{shown} is a symbolic link; StoryGraph never follows links inside "
            "a story (they can reach outside it): replace it with the real file"
        )
    if not stat.S_ISREG(info.st_mode):
        raise StoryFileError(
            f"{shown} is {file_kind(info.st_mode)}, not a regular file; StoryGraph "
            "never reads one (it can block for good): delete it or replace it "
            "with the real file"
        )
    if info.st_size > max_bytes:
        raise StoryFileError(
            f"{shown} is {_size_text(info.st_size)}, over the "
            f"{_size_text(max_bytes)} a file of its kind may be; replace it "
            "with the real file"
        )
    return info


def read_story_file(
    path: str | os.PathLike[str], *, max_bytes: int, what: str | None = None
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (never blocks).

    Raises as `check_story_file` does (the checks run on the opened file).
    """
    path = Path(path)
    try:
        data = read_regular_file(path, max_bytes)
    except IsADirectoryError:
        raise StoryFileError(
            f"{_label(path, what)} is a folder, not a file; move it away"
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.EWOULDBLOCK):  # a socket, a device
            raise StoryFileError(
                f"{_label(path, what)} cannot be opened as a file ({exc.strerror}); "
                "delete it or replace it with the real file"
            ) from None
        raise
    except StoryFileError as exc:
        if what is None:
            raise
        raise StoryFileError(f"{what}: {exc}") from None
    if len(data) > max_bytes:
        raise StoryFileError(
            f"{_label(path, what)} is over the {_size_text(max_bytes)} a file of "
            "its kind may be; replace it with the real file"
        )
    return data


def read_image(
    source: str | os.PathLike[str] | bytes,
    *,
    what: str | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_bytes: int = MAX_IMAGE_BYTES,
    thumbnail: tuple[int, int] | None = None,
) -> Image.Image:
    """An image file (or its bytes) decoded as RGB, its size checked first.

    The pixel count the header claims is checked against ``max_pixels``
    before a single pixel is decoded; ``thumbnail`` shrinks the result to fit
    that box. Raises `StoryFileError` for a bomb, a truncated or corrupt body
    and anything that is not an image (and as `read_story_file` for paths).

    Examples
    --------
    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> Image.new("RGB", (4, 3), "red").save(buf, format="PNG")
    >>> read_image(buf.getvalue()).size
    (4, 3)
    >>> read_image(b"not an image", what="frame")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kg.errors.StoryFileError: frame is not a readable image ...
    """
    from PIL import Image

    if isinstance(source, bytes):
        data, shown = source, what or "image"
    else:
        path = Path(source)
        data = read_story_file(path, max_bytes=max_bytes, what=what)
        shown = _label(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size  # from the header: nothing decoded yet
                if width * height > max_pixels:
                    raise StoryFileError(
                        f"{shown} claims {width:,} x {height:,} pixels, over the "
                        f"{max_pixels // 1_000_000} megapixel limit (a "
                        "decompression bomb, or far larger than a frame); "
                        "replace it with a smaller image"
                    )
                if thumbnail is not None:
                    img.draft("RGB", thumbnail)  # JPEG: decode at a smaller scale
                    img.thumbnail(thumbnail)
                out = img.convert("RGB")
                out.load()
    except StoryFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        count = f" ({int(claimed.group(1)):,} pixels)" if claimed else ""
        raise StoryFileError(
            f"{shown} claims more pixels than can be decoded safely{count}, over "
            f"the {max_pixels // 1_000_000} megapixel limit (a decompression "
            "bomb); replace it with a smaller image"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure: not an image
        raise StoryFileError(
            f"{shown} is not a readable image ({type(exc).__name__}: "
            f"{str(exc)[:120]}); replace it with a PNG or JPEG file"
        ) from None
    return out
