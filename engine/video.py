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
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.sound import mux_aac
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


def remove_partial_files(root: str | os.PathLike[str], rel: str = ".") -> list[Path]:
    """Delete temporary files writers killed mid-write left under ``root/rel``.

    Confined to ``root``: a linked folder on the way is refused
    (`kg.errors.UnsafePathError`), links below are neither entered nor removed.
    Returns the files removed.
    """
    removed = []
    for path in walk_files(root, rel):
        if path.name.startswith(".") and f"{TMP_MARK}-" in path.name:
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


# Inputs one ffmpeg process decodes at once (each holds a file and a decoder).
DECODE_BATCH = 64


def decode_clips(
    clips: Sequence[tuple[str | os.PathLike[str], int]], size: tuple[int, int]
) -> Iterator[np.ndarray]:
    """Frames of many clips in order, each clip exactly its stated frame count.

    ``clips`` holds ``(path, frames)``; every clip is scaled to ``size``
    (width, height), cut to ``frames`` or held on its last frame up to it, so
    a caller can count on the boundaries. One ffmpeg process decodes up to
    `DECODE_BATCH` clips (``concat`` filter): starting a decoder per clip
    costs more than decoding a short one.
    """
    import subprocess

    import imageio_ffmpeg

    width, height = size
    frame_bytes = width * height * 3
    for start in range(0, len(clips), DECODE_BATCH):
        batch = clips[start : start + DECODE_BATCH]
        inputs: list[str] = []
        chains: list[str] = []
        for k, (path, frames) in enumerate(batch):
            inputs += ["-i", str(path)]
            chains.append(
                f"[{k}:v:0]scale={width}:{height}:flags=bicubic,setsar=1,"
                f"tpad=stop_mode=clone:stop={frames},trim=end_frame={frames},"
                f"setpts=PTS-STARTPTS[v{k}]"
            )
        joined = "".join(f"[v{k}]" for k in range(len(batch)))
        chains.append(f"{joined}concat=n={len(batch)}:v=1:a=0[out]")
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
            "-nostdin", *inputs, "-filter_complex", ";".join(chains),
            "-map", "[out]", "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ]  # fmt: skip
        expected = sum(frames for _, frames in batch)
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            got = 0
            try:
                while got < expected:
                    buf = proc.stdout.read(frame_bytes)
                    if len(buf) < frame_bytes:
                        break
                    got += 1
                    yield np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
            finally:
                proc.stdout.close()
                if got < expected:
                    proc.kill()
                err = proc.stderr.read().decode(errors="replace").strip()
                proc.wait()
            if got < expected:
                raise ValueError(
                    f"decoding {len(batch)} clips gave {got} of {expected} frames: "
                    f"{err or 'a clip holds no video'}; generate the scene again"
                )


def video_info(path: str | os.PathLike[str]) -> dict[str, float | int]:
    """``{"frames", "width", "height", "fps"}`` of a clip (frames counted exactly)."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    gen.close()
    n_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    width, height = meta["size"]
    return {"frames": n_frames, "width": width, "height": height, "fps": meta["fps"]}


def read_video(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a clip into ``[F, H, W, 3]`` uint8 RGB frames."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(gen)
    width, height = meta["size"]
    frames = [
        np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3) for buf in gen
    ]
    if not frames:
        raise ValueError(f"{path} holds no video frames; generate the take again")
    return np.stack(frames)


def last_frames(path: str | os.PathLike[str], count: int = 2) -> np.ndarray:
    """The last ``count`` frames of a clip, ``[N, H, W, 3]`` uint8 (fewer when
    the clip is shorter), decoding only its last seconds (``-sseof``)."""
    import collections

    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(
        str(path), pix_fmt="rgb24", input_params=["-sseof", "-2"]
    )
    meta = next(gen)
    width, height = meta["size"]
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


def read_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG as ``[H, W, 3]`` uint8 RGB."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).copy()


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
