"""Video and frame files: mp4 clips, lossless PNG frames, a background writer.

Clips are H.264 in yuv420p (what every browser plays) written through the
ffmpeg binary that ``imageio-ffmpeg`` ships. Every file lands atomically: it is
written under a hidden temporary name in the same folder and renamed, so a
process killed mid-write leaves either the whole file or none (plus a
temporary file `remove_partial_files` cleans up). `ClipWriter` encodes on its
own thread so the next scene does not wait on the encoder.

Every clip and film is tagged BT.709 (primaries, transfer, matrix) in TV
range and converted from RGB with the BT.709 matrix (ITU-R BT.709-6; what
players assume for HD, so an untagged clip decoded as BT.601 no longer shifts
colours), and has a keyframe at least every second (x264's default GOP of
250 frames made seeking slow). A storyboard preview is encoded with x264's
``ultrafast`` preset (`clip_preset`): at the same CRF its pictures are as
good (PSNR within 1 dB of ``veryfast`` on animatic clips), about four times
faster to write and about twice the size (``bench/bench_engine.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.clip_decode import decode_clips
from engine.sound import mux_aac
from kg.errors import StoryFileError
from kg.files import MAX_IMAGE_PIXELS, MAX_MEDIA_BYTES, check_story_file, read_image
from kg.paths import TMP_MARK, atomic_path, walk_files

__all__ = [
    "CLIP_PRESET",
    "COLOUR_TAGS",
    "PREVIEW_PRESET",
    "clip_preset",
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


# x264 presets: model clips (minutes of denoising each) get the smaller file;
# storyboard previews (milliseconds of rendering) the fast encode.
CLIP_PRESET = "veryfast"
PREVIEW_PRESET = "ultrafast"
# BT.709 primaries, transfer and matrix, TV range, said three times so they
# always agree: the conversion from RGB and the frames' tags (the filter),
# the stream's VUI (x264's parameters) and the MP4 ``colr`` box (the muxer
# writes it from ffmpeg's options, with ``+write_colr``).
_BT709 = (
    *("-colorspace", "bt709", "-color_primaries", "bt709"),
    *("-color_trc", "bt709", "-color_range", "tv"),
)
COLOUR_TAGS = (
    "-vf",
    "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,setparams="
    "color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv",
    *_BT709,
    *("-x264-params", "colorprim=bt709:transfer=bt709:colormatrix=bt709"),
)


def clip_preset(backend: str) -> str:
    """The x264 preset of a take's clip: `PREVIEW_PRESET` for a backend whose
    takes are storyboards (`engine.catalog`: the animatic), else `CLIP_PRESET`."""
    from engine.catalog import CATALOG

    spec = CATALOG.get(backend)
    preview = spec is not None and spec.frames == "storyboard"
    return PREVIEW_PRESET if preview else CLIP_PRESET


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
    preset: str = CLIP_PRESET,
    audio: str | os.PathLike[str] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> Path:
    """Encode ``frames`` ``[F, H, W, 3]`` uint8 as an H.264 yuv420p mp4.

    yuv420p halves the chroma resolution, so width and height must be even.
    ``crf`` 18 is visually lossless for storyboards; ``veryfast`` keeps
    encoding well ahead of generation. ``audio``: a sound file muxed in as
    AAC (192 kb/s, `mux_aac`), the picture stream copied. ``cancelled`` is
    asked before every frame: true, the encode stops with
    `engine.errors.GenerationCancelled` and leaves no file; ``on_frame(i, n)``
    hears each frame sent.
    """
    from engine.errors import GenerationCancelled

    _check_frames(frames)
    _, height, width, _ = frames.shape
    final = Path(path)
    with atomic_path(final) as tmp:
        silent = tmp.with_name(tmp.name + ".video.mp4") if audio else tmp
        try:
            writer = open_writer(silent, width, height, fps, crf=crf, preset=preset)
            for i, frame in enumerate(frames, start=1):
                if cancelled is not None and cancelled():
                    writer.close()
                    raise GenerationCancelled(
                        f"cancelled while encoding, frame {i} of {len(frames)}"
                    )
                writer.send(np.ascontiguousarray(frame))
                if on_frame is not None:
                    on_frame(i, len(frames))
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
    preset: str = CLIP_PRESET,
    key_frames: Sequence[int] = (),
    pix_fmt_in: str = "rgb24",
) -> Generator[None, np.ndarray | None, None]:
    """A started H.264 yuv420p encoder writing ``path``: ``send`` it ``[H, W, 3]``
    uint8 frames one at a time, then ``close`` it (see `write_video`).

    A keyframe comes at least every ``fps`` frames (one a second) and at each
    frame index in ``key_frames`` (a film's scene starts). ``pix_fmt_in``
    ``"yuv420p"`` takes BT.709 planes as they are (``[H * 3 / 2, W]`` uint8,
    `engine.clip_decode.decode_clips`), no colour conversion on the way."""
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
        pix_fmt_in=pix_fmt_in,
        input_params=list(_BT709) if pix_fmt_in == "yuv420p" else None,
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        ffmpeg_log_level="error",
        output_params=[
            *("-crf", str(crf), "-preset", preset),
            *("-g", str(max(1, round(fps)))),
            *_forced_key_frames(key_frames, fps),
            *COLOUR_TAGS,
            *("-movflags", "+faststart+write_colr"),
        ],
    )
    writer.send(None)  # start the encoder
    return writer


def _forced_key_frames(frames: Sequence[int], fps: int) -> list[str]:
    """``-force_key_frames`` for frame indices: each time half a frame early,
    so rounding never moves it onto the frame after."""
    times = sorted({(k - 0.5) / fps for k in frames if k > 0})
    if not times:
        return []
    return ["-force_key_frames", ",".join(f"{t:.6f}" for t in times)]


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
    """Encodes clips on background threads (one: in submission order).

    ``submit`` returns at once with a `Future`; ``on_done(path, error)`` runs on
    the writer thread when the file has landed (``error`` is None) or failed.
    ``flush`` waits for everything submitted so far. ``threads`` > 1 encodes
    that many clips at once (each in its own ffmpeg process), for a driver
    that receives takes from several workers.
    """

    def __init__(self, threads: int = 1) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, threads), thread_name_prefix="clip-writer"
        )
        self._pending: list[Future[Path]] = []
        self._lock = threading.Lock()

    def submit(
        self,
        path: str | os.PathLike[str],
        frames: np.ndarray,
        fps: int,
        on_done: Callable[[Path, BaseException | None], None] | None = None,
        audio: str | os.PathLike[str] | None = None,
        cancelled: Callable[[], bool] | None = None,
        on_frame: Callable[[int, int], None] | None = None,
        preset: str = CLIP_PRESET,
    ) -> Future[Path]:
        def job() -> Path:
            error: BaseException | None = None
            try:
                write_video(
                    path,
                    frames,
                    fps,
                    audio=audio,
                    cancelled=cancelled,
                    on_frame=on_frame,
                    preset=preset,
                )
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
