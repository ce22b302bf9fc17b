"""Video and frame files: mp4 clips, lossless PNG frames, a background writer.

Clips are H.264 in yuv420p (what every browser plays) written through the
ffmpeg binary that ``imageio-ffmpeg`` ships. Every file lands atomically: it is
written under a hidden temporary name in the same folder and renamed, so a
process killed mid-write leaves either the whole file or none (plus a
temporary file `remove_partial_files` cleans up). `ClipWriter` encodes on its
own thread so the next scene does not wait on the encoder.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.clip_decode import decode_clips
from engine.sound import mux_aac
from kg.errors import StoryFileError
from kg.files import MAX_IMAGE_PIXELS, MAX_MEDIA_BYTES, check_story_file, read_image
from kg.paths import TMP_MARK, atomic_path, walk_files

__all__ = [
    "write_video",
    "open_writer",
    "decode_clips",
    "read_video",
    "last_frames",
    "video_info",
    "write_png",
    "read_png",
    "remove_partial_files",
    "ClipWriter",
]

log = logging.getLogger(__name__)


def remove_partial_files(
    root: str | os.PathLike[str], rel: str = ".", *, older_than: float = 0.0
) -> list[Path]:
    """Delete temporary files writers killed mid-write left under ``root/rel``.

    Confined to ``root``: a linked folder on the way is refused
    (`kg.errors.UnsafePathError`), links below are neither entered nor removed.
    ``older_than``: only files not written for that many seconds (a writer in
    another process may still be busy with a fresh one). Returns the files
    removed.
    """
    import time

    removed = []
    now = time.time()
    for path in walk_files(root, rel):
        if path.name.startswith(".") and f"{TMP_MARK}-" in path.name:
            try:
                if older_than and now - path.stat().st_mtime < older_than:
                    continue
            except OSError:
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            "frames must be a uint8 array of shape [F, H, W, 3], got "
            f"{frames.dtype} {tuple(frames.shape)}"
        )
    if len(frames) == 0:
        raise ValueError("frames is empty; a clip needs at least one frame")


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: int,
    *,
    crf: int = 18,
    preset: str = "veryfast",
    audio: str | os.PathLike[str] | None = None,
) -> Path:
    """Encode ``frames`` ``[F, H, W, 3]`` uint8 as an H.264 yuv420p mp4.

    yuv420p halves the chroma resolution, so width and height must be even.
    ``crf`` 18 is visually lossless for storyboards; ``veryfast`` keeps
    encoding well ahead of generation. ``audio``: a sound file muxed in as
    AAC (192 kb/s, `mux_aac`), the picture stream copied.
    """
    _check_frames(frames)
    _, height, width, _ = frames.shape
    final = Path(path)
    with atomic_path(final) as tmp:
        silent = tmp.with_name(tmp.name + ".video.mp4") if audio else tmp
        try:
            writer = open_writer(silent, width, height, fps, crf=crf, preset=preset)
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
            writer.close()
            if audio:
                mux_aac(silent, [audio], tmp)
        finally:
            if audio:
                silent.unlink(missing_ok=True)
    return final


def open_writer(
    path: str | os.PathLike[str],
    width: int,
    height: int,
    fps: int,
    *,
    crf: int = 18,
    preset: str = "veryfast",
) -> Generator[None, np.ndarray | None, None]:
    """A started H.264 yuv420p encoder writing ``path``: ``send`` it ``[H, W, 3]``
    uint8 frames one at a time, then ``close`` it (see `write_video`)."""
    import imageio_ffmpeg

    if width % 2 or height % 2:
        raise ValueError(
            f"H.264 yuv420p needs an even width and height, got {width}x{height}; "
            "set an even resolution in the story settings"
        )
    writer = imageio_ffmpeg.write_frames(
        str(path),
        size=(width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=[
            *("-crf", str(crf), "-preset", preset),
            *("-movflags", "+faststart"),
        ],
    )
    writer.send(None)  # start the encoder
    return writer


def _check_media(path: str | os.PathLike[str], what: str) -> None:
    """Refuse a file ffmpeg must not open: a FIFO (it would block for good),
    a device, a link, a file over the media limit (`kg.files`)."""
    check_story_file(path, max_bytes=MAX_MEDIA_BYTES, what=what)


def _check_picture(path: str | os.PathLike[str], width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise StoryFileError(
            f"clip ({Path(path).name}) claims {width:,} x {height:,} pixels a "
            f"frame, over the {MAX_IMAGE_PIXELS // 1_000_000} megapixel limit; "
            "generate the take again"
        )


def video_info(path: str | os.PathLike[str]) -> dict[str, float | int]:
    """``{"frames", "width", "height", "fps"}`` of a clip (frames counted exactly)."""
    import imageio_ffmpeg

    _check_media(path, "clip")
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    gen.close()
    _check_picture(path, *meta["size"])
    n_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    width, height = meta["size"]
    return {"frames": n_frames, "width": width, "height": height, "fps": meta["fps"]}


def read_video(
    path: str | os.PathLike[str], *, max_frames: int | None = None
) -> np.ndarray:
    """Decode a clip into ``[F, H, W, 3]`` uint8 RGB frames (its first
    ``max_frames`` only, when given: the rest is never decoded)."""
    import imageio_ffmpeg

    _check_media(path, "clip")
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(gen)
    width, height = meta["size"]
    if width * height > MAX_IMAGE_PIXELS:
        gen.close()
        _check_picture(path, width, height)
    frames = []
    for buf in gen:
        frames.append(np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3))
        if max_frames is not None and len(frames) >= max_frames:
            gen.close()
            break
    if not frames:
        raise ValueError(f"{path} holds no video frames; generate the take again")
    return np.stack(frames)


def last_frames(
    path: str | os.PathLike[str], count: int = 2, *, seconds: float = 2.0
) -> np.ndarray:
    """The last ``count`` frames of a clip, ``[N, H, W, 3]`` uint8 (fewer when
    the clip is shorter), decoding only its last ``seconds`` (``-sseof``)."""
    import collections

    import imageio_ffmpeg

    _check_media(path, "clip")
    gen = imageio_ffmpeg.read_frames(
        str(path), pix_fmt="rgb24", input_params=["-sseof", f"-{seconds:g}"]
    )
    meta = next(gen)
    width, height = meta["size"]
    if width * height > MAX_IMAGE_PIXELS:
        gen.close()
        _check_picture(path, width, height)
    tail = collections.deque(maxlen=count)
    for buf in gen:
        tail.append(np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3))
    if not tail:
        raise ValueError(f"{path} holds no video frames; generate the take again")
    return np.stack(tail)


def write_png(path: str | os.PathLike[str], frame: np.ndarray) -> Path:
    """Write one ``[H, W, 3]`` uint8 frame as a lossless PNG, atomically."""
    from PIL import Image

    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(
            f"a frame must be uint8 [H, W, 3], got {frame.dtype} {tuple(frame.shape)}"
        )
    final = Path(path)
    with atomic_path(final) as tmp:
        # compress_level 1: PNG stays lossless, and writing is several times faster
        Image.fromarray(frame).save(tmp, format="PNG", compress_level=1)
    return final


def read_png(path: str | os.PathLike[str], what: str = "frame") -> np.ndarray:
    """Read a PNG as ``[H, W, 3]`` uint8 RGB (`kg.files.read_image`: never
    blocks on a FIFO, refuses a bomb before decoding it)."""
    return np.asarray(read_image(path, what=what)).copy()


class ClipWriter:
    """Encodes clips on one background thread, in submission order.

    ``submit`` returns at once with a `Future`; ``on_done(path, error)`` runs on
    the writer thread when the file has landed (``error`` is None) or failed.
    ``flush`` waits for everything submitted so far.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-writer")
        self._pending: list[Future[Path]] = []
        self._lock = threading.Lock()

    def submit(
        self,
        path: str | os.PathLike[str],
        frames: np.ndarray,
        fps: int,
        on_done: Callable[[Path, BaseException | None], None] | None = None,
        audio: str | os.PathLike[str] | None = None,
    ) -> Future[Path]:
        def job() -> Path:
            error: BaseException | None = None
            try:
                write_video(path, frames, fps, audio=audio)
            except BaseException as exc:  # reported to on_done, then re-raised
                error = exc
            if on_done is not None:
                try:
                    on_done(Path(path), error)
                except Exception:
                    log.exception("recording the clip %s failed", path)
            if error is not None:
                raise error
            return Path(path)

        future = self._pool.submit(job)
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [future]
        return future

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every submitted clip is written (errors are logged)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            try:
                future.result(timeout=timeout)
            except TimeoutError:
                raise
            except Exception as exc:
                log.warning("a clip could not be written: %s", exc)

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
