"""Decoding many take clips as one stream of frames, each clip its exact length.

The film (`engine.film.assemble`) streams every shot's frames through here:
one ffmpeg process decodes up to `DECODE_BATCH` clips (``concat`` filter),
each scaled to the film's size and cut to the frames it holds. A clip that
decodes to fewer frames than it holds is never padded with a frozen last
frame (that made films freeze silently): the error names it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from kg.files import MAX_MEDIA_BYTES, check_story_file

__all__ = ["DECODE_BATCH", "decode_clips"]

# Inputs one ffmpeg process decodes at once (each holds a file and a decoder).
DECODE_BATCH = 64


def decode_clips(
    clips: Sequence[tuple[str | os.PathLike[str], int]],
    size: tuple[int, int],
    pix_fmt: str = "rgb24",
) -> Iterator[np.ndarray]:
    """Frames of many clips in order, each clip exactly its stated frame count.

    ``clips`` holds ``(path, frames)`` (``frames``: what the clip holds, as
    `engine.clip_probe` counts it); every clip is scaled to ``size`` (width,
    height) and cut to ``frames``. A clip that decodes to fewer frames is
    never padded with a frozen last frame: `ValueError` names it. One ffmpeg
    process decodes up to `DECODE_BATCH` clips (``concat`` filter): starting
    a decoder per clip costs more than decoding a short one. ``pix_fmt``
    ``"yuv420p"`` yields the planes as they are (a ``[H * 3 / 2, W]`` array per
    frame, no colour conversion) for an encoder that takes them as they are.
    """
    import subprocess

    import imageio_ffmpeg

    width, height = size
    planar = pix_fmt == "yuv420p"
    if not planar and pix_fmt != "rgb24":
        raise ValueError(f"pix_fmt must be rgb24 or yuv420p, got {pix_fmt!r}")
    shape = (height * 3 // 2, width) if planar else (height, width, 3)
    frame_bytes = width * height * 3 // (2 if planar else 1)
    for start in range(0, len(clips), DECODE_BATCH):
        batch = clips[start : start + DECODE_BATCH]
        inputs: list[str] = []
        chains: list[str] = []
        for k, (path, frames) in enumerate(batch):
            check_story_file(path, max_bytes=MAX_MEDIA_BYTES, what="clip")
            inputs += ["-i", str(path)]
            chains.append(
                f"[{k}:v:0]scale={width}:{height}:flags=bicubic,setsar=1,"
                f"trim=end_frame={frames},setpts=PTS-STARTPTS[v{k}]"
            )
        joined = "".join(f"[v{k}]" for k in range(len(batch)))
        chains.append(f"{joined}concat=n={len(batch)}:v=1:a=0[out]")
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
            "-nostdin", *inputs, "-filter_complex", ";".join(chains),
            "-map", "[out]", "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", pix_fmt, "-",
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
                    yield np.frombuffer(buf, dtype=np.uint8).reshape(shape)
            finally:
                proc.stdout.close()
                if got < expected:
                    proc.kill()
                err = proc.stderr.read().decode(errors="replace").strip()
                proc.wait()
            if got < expected:
                raise ValueError(_short_clips(batch, got, expected, err))


def _short_clips(
    batch: Sequence[tuple[str | os.PathLike[str], int]], got: int, want: int, err: str
) -> str:
    """Which clips of a batch decode to fewer frames than they hold (asked of
    each alone: this runs only when a batch came up short)."""
    import imageio_ffmpeg

    short = []
    for path, frames in batch:
        try:
            decoded, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
        except (RuntimeError, OSError):
            decoded = 0
        if decoded < frames:
            short.append(f"{path} decodes to {decoded} of its {frames} frames")
    named = "; ".join(short) or f"{got} of {want} frames decoded ({err})"
    return f"a clip cannot be decoded whole: {named}; generate its scene again"
