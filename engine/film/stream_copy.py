"""A film of whole clips joined by cuts, its video streams copied, not re-encoded.

When every shot of a line plays its clip whole (no repeated head skipped, no
dissolve, no conform of size or rate), the film's picture is exactly the
clips' pictures one after another, and ffmpeg's concat demuxer can copy their
H.264 streams into one file without decoding a frame. That is valid only
where the clips agree on what a decoder needs to know (ISO/IEC 14496-15: the
``avcC`` box holds the stream's SPS and PPS; one file has one) and every
clip starts on a keyframe, as the film's rules want: a keyframe at every
scene start and at least every second. Both are read from the clips' MP4
boxes (ISO/IEC 14496-12: ``stss`` lists the sync samples, none means every
sample is one), so a clip written before those rules, or by another
encoder, is re-encoded instead, and `copy_refusal` says why.

Clips of one encoding that must be re-encoded (a line that skips repeated
frames or dissolves) are decoded the same way, through the concat demuxer
by one decoder (`decode_joined`): the filter graph that decodes clips of any
size (`engine.clip_decode`) opens a decoder per clip and took twice as long.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from kg.files import MAX_MEDIA_BYTES, check_story_file

__all__ = [
    "VideoTrack",
    "copy_refusal",
    "concat_copy",
    "decode_joined",
    "read_video_track",
]

# Containers whose children are boxes (the path from the file to ``stsd``).
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
# ``moov`` of a short clip is a few kB; a larger one is not a take's clip.
_MAX_MOOV = 16 * 1024 * 1024


@dataclass(frozen=True)
class VideoTrack:
    """What stream copy needs to know of a clip's video track."""

    avcc: bytes  # the decoder configuration (SPS, PPS), b"" when not H.264
    samples: int
    sync: tuple[int, ...] | None  # 1-based keyframe sample numbers; None: all
    # ``colr`` nclx: (primaries, transfer, matrix, full range); None: untagged
    colour: tuple[int, int, int, bool] | None = None
    sound: bool = False  # the file also holds an audio track

    @property
    def bt709_tv(self) -> bool:
        """Tagged BT.709 throughout, TV range (H.273 code points 1, 1, 1)."""
        return self.colour == (1, 1, 1, False)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload start, box end)`` of the boxes in ``data[start:end]``."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if size == 1 and at + 16 <= end:
            size, head = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < head or at + size > end:
            return
        yield kind, at + head, at + size
        at += size


def _moov(path: Path) -> bytes | None:
    """The ``moov`` box of an MP4 file (read box by box, never the media)."""
    with open(path, "rb") as fh:
        while True:
            head = fh.read(8)
            if len(head) < 8:
                return None
            size, kind = struct.unpack(">I4s", head)
            skip = size - 8
            if size == 1:
                skip = struct.unpack(">Q", fh.read(8))[0] - 16
            if kind == b"moov":
                return fh.read(skip) if 0 <= skip <= _MAX_MOOV else None
            if size == 0 or skip < 0:
                return None
            fh.seek(skip, os.SEEK_CUR)


def read_video_track(path: str | os.PathLike[str]) -> VideoTrack | None:
    """The first video track of an MP4 clip; None when it has none, or the file
    is not an MP4 whose boxes add up (a hostile or truncated one)."""
    check_story_file(path, max_bytes=MAX_MEDIA_BYTES, what="clip")
    try:
        moov = _moov(Path(path))
        if moov is None:
            return None
        video, sound = None, False
        for kind, start, end in _boxes(moov, 0, len(moov)):
            if kind == b"trak":
                sound = sound or _handler(moov, start, end) == b"soun"
                video = video or _track(moov, start, end)
    except (struct.error, IndexError, ValueError, OSError):
        return None  # not an MP4 this reads: the film re-encodes and probes it
    return None if video is None else dataclasses.replace(video, sound=sound)


def _handler(data: bytes, start: int, end: int) -> bytes:
    """The handler type of a ``trak`` (``vide``, ``soun``...)."""
    for kind, ps, pe in _boxes(data, start, end):
        if kind == b"mdia":
            for child, cs, _ in _boxes(data, ps, pe):
                if child == b"hdlr":
                    return data[cs + 8 : cs + 12]
    return b""


def _track(data: bytes, start: int, end: int) -> VideoTrack | None:
    found: dict[bytes, tuple[int, int]] = {}
    is_video = False

    def walk(s: int, e: int) -> None:
        nonlocal is_video
        for kind, ps, pe in _boxes(data, s, e):
            if kind in _CONTAINERS:
                walk(ps, pe)
            elif kind == b"hdlr" and data[ps + 8 : ps + 12] == b"vide":
                is_video = True
            elif kind in (b"stsd", b"stsz", b"stss"):
                found[kind] = (ps, pe)

    walk(start, end)
    if not is_video or b"stsd" not in found or b"stsz" not in found:
        return None
    ps, pe = found[b"stsd"]
    avcc = b""
    colour = None
    # stsd: version/flags, count, then sample entries; avc1's children follow
    # its 78 bytes of visual sample entry fields
    for kind, es, ee in _boxes(data, ps + 8, pe):
        if kind in (b"avc1", b"avc3"):
            for child, cs, ce in _boxes(data, es + 78, ee):
                if child == b"avcC":
                    avcc = data[cs:ce]
                elif child == b"colr" and data[cs : cs + 4] == b"nclx":
                    # nclx: primaries, transfer, matrix (16 bits each), range bit
                    p, t, m = struct.unpack_from(">HHH", data, cs + 4)
                    colour = (p, t, m, bool(data[cs + 10] & 0x80))
        break
    ss, _ = found[b"stsz"]
    samples = struct.unpack_from(">I", data, ss + 8)[0]
    sync = None
    if b"stss" in found:
        ks, _ = found[b"stss"]
        count = struct.unpack_from(">I", data, ks + 4)[0]
        sync = struct.unpack_from(f">{count}I", data, ks + 8)
    return VideoTrack(avcc, samples, sync, colour)


def copy_refusal(
    clips: Sequence[str | os.PathLike[str]],
    tracks: Sequence[VideoTrack | None],
    frames: Sequence[int],
    fps: int,
) -> str | None:
    """Why these clips cannot be stream-copied into one film; None when they can.

    ``tracks``: `read_video_track` of each clip; ``frames``: what each clip
    holds (`engine.clip_probe`); ``fps``: the film's rate, which bounds the
    distance between keyframes.
    """
    first: bytes | None = None
    for path, track, count in zip(clips, tracks, frames, strict=True):
        name = Path(path).name
        if any(c in str(Path(path).resolve()) for c in "\r\n"):
            return f"the path of {name!r} has a line break (the concat list is lines)"
        if track is None or not track.avcc:
            return f"{name} holds no H.264 video track in an MP4"
        if track.samples != count:
            return f"{name} holds {track.samples} samples for {count} frames"
        if not track.bt709_tv:
            return f"{name} is not tagged BT.709 (written before the film's rules)"
        if first is None:
            first = track.avcc
        elif track.avcc != first:
            return f"{name} was encoded with other settings than the first clip"
        if track.sync is not None:
            keys = [*track.sync, track.samples + 1]
            if keys[0] != 1:
                return f"{name} does not start on a keyframe"
            gap = max(b - a for a, b in zip(keys, keys[1:], strict=False))
            if gap > fps:
                return (
                    f"{name} has {gap} frames between keyframes, over the film's "
                    f"one a second ({fps}); it was written before that rule"
                )
    return None


def _listing(clips: Sequence[str | os.PathLike[str]]) -> str:
    """The concat demuxer's list of ``clips`` (absolute, quoted)."""
    lines = []
    for clip in clips:
        quoted = str(Path(clip).resolve()).replace("'", "'\\''")
        if "\n" in quoted or "\r" in quoted:
            raise ValueError(f"a clip path has a line break: {quoted!r}")
        lines.append(f"file '{quoted}'\n")
    return "".join(lines)


# Decoded frames read ahead of the encoder: the decoder keeps working while
# the encoder takes a frame (a pipe holds 64 KiB, under two small frames).
READ_AHEAD_BYTES = 32 * 1024 * 1024


def _read_ahead(stream: IO[bytes], frame_bytes: int, count: int) -> Iterator[bytes]:
    """Up to ``count`` frames of ``stream``, read on a thread up to
    `READ_AHEAD_BYTES` ahead of the caller; stops at a short read. The thread
    ends with the generator (the caller kills the writer of ``stream``)."""
    ahead: queue.Queue[bytes] = queue.Queue(max(2, READ_AHEAD_BYTES // frame_bytes))
    stop, done = threading.Event(), threading.Event()

    def pump() -> None:
        try:
            for _ in range(count):
                buf = stream.read(frame_bytes)
                if len(buf) < frame_bytes:
                    return
                while not stop.is_set():
                    try:
                        ahead.put(buf, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except (OSError, ValueError):
            return  # the stream was closed under it: the generator has ended
        finally:
            done.set()

    thread = threading.Thread(target=pump, name="film-decode", daemon=True)
    thread.start()
    try:
        given = 0
        while given < count:
            try:
                buf = ahead.get(timeout=0.1)
            except queue.Empty:
                if done.is_set() and ahead.empty():
                    return
                continue
            given += 1
            yield buf
    finally:
        stop.set()


def decode_joined(
    clips: Sequence[str | os.PathLike[str]],
    frames: Sequence[int],
    size: tuple[int, int],
) -> Iterator[np.ndarray]:
    """The frames of clips of one encoding (equal ``avcC``, ``size``, BT.709),
    in order, as ``[H * 3 / 2, W]`` yuv420p planes, each clip exactly its
    ``frames``: one ffmpeg decoder reads them through the concat demuxer.

    A clip that decodes to fewer frames than it holds is never padded: the
    clips are then decoded one by one (`engine.clip_decode.decode_clips`),
    whose `ValueError` names it.
    """
    import imageio_ffmpeg

    from engine.clip_decode import decode_clips

    width, height = size
    frame_bytes = width * height * 3 // 2
    expected = sum(frames)
    with tempfile.NamedTemporaryFile(
        "w", suffix=".txt", delete=False, encoding="utf-8"
    ) as fh:
        fh.write(_listing(clips))
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
        "-nostdin", "-f", "concat", "-safe", "0", "-i", fh.name,
        "-map", "0:v:0", "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-",
    ]  # fmt: skip
    got = 0
    try:
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        ) as proc:
            assert proc.stdout is not None
            try:
                for buf in _read_ahead(proc.stdout, frame_bytes, expected):
                    got += 1
                    yield np.frombuffer(buf, np.uint8).reshape(height * 3 // 2, width)
            finally:
                proc.kill()
                proc.stdout.close()
    finally:
        os.unlink(fh.name)
    if got < expected:
        for _ in decode_clips(list(zip(clips, frames, strict=True)), size):
            pass  # raises, naming the clip that falls short
        raise ValueError(
            f"the clips decoded to {got} of their {expected} frames; generate "
            "the scenes again"
        )


def concat_copy(
    clips: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]
) -> None:
    """Copy the clips' video streams one after another into ``out`` (an MP4,
    no sound: the film's sound is muxed afterwards)."""
    import imageio_ffmpeg

    out = Path(out)
    listing = out.with_name(out.name + ".concat.txt")
    listing.write_text(_listing(clips), encoding="utf-8")
    try:
        done = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
             "-nostdin", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
             "-map", "0:v:0", "-c", "copy", "-an", "-movflags", "+faststart+write_colr",
             "-f", "mp4", str(out)],
            capture_output=True,
            text=True,
        )  # fmt: skip
    finally:
        listing.unlink(missing_ok=True)
    if done.returncode != 0:
        raise OSError(f"ffmpeg could not join the clips: {done.stderr[-500:]}")
