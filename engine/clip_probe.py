"""What a take's clip really holds, asked of ffmpeg before anything decodes it.

A take records how many frames its clip has and at what rate, but the record
can lie (an edited ``kg_state.json``, a clip replaced by hand: 100,000
recorded frames at 1 fps would make a 48-frame clip 27 hours of film) and
the file can be anything: a FIFO, a truncated copy, not a video at all, a
video whose header claims 50,000 x 50,000 pixels. `probe_clips` checks each
file (`kg.files.check_story_file`: a regular file within the media limit),
reads its stream header and counts its packets without decoding them
(ffmpeg's ``framecrc`` muxer over a stream copy prints one line per packet),
up to `PROBE_BATCH` clips per ffmpeg process, reading at most
`MAX_CLIP_SECONDS` of each. Results are cached per file version (path,
inode, size, modification time). The film plan and the timelines trust
these counts, bounded, never the record.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kg.errors import StoryError
from kg.files import MAX_IMAGE_PIXELS, MAX_MEDIA_BYTES, check_story_file
from kg.vocabulary import MAX_SCENE_SECONDS

__all__ = ["MAX_CLIP_SECONDS", "MAX_CLIP_FPS", "ClipInfo", "probe_clips"]

# A scene lasts at most MAX_SCENE_SECONDS; a take's frame rule may add a few.
MAX_CLIP_SECONDS = MAX_SCENE_SECONDS + 10.0
MAX_CLIP_FPS = 120  # the story settings' highest frame rate
PROBE_BATCH = 64  # inputs one ffmpeg process reads at once (each holds a file)
PROBE_TIMEOUT_S = 120.0  # a batch of 64 short clips takes well under a second

_cache: dict[tuple[str, int, int, int], ClipInfo | str] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 4096

_VIDEO = re.compile(r"^\s*Stream #(\d+):\d+\S*: Video: (.*)$")
_SIZE = re.compile(r", (\d{1,6})x(\d{1,6})")
_FPS = re.compile(r", (\d+(?:\.\d+)?)(k?) fps")
_INPUT = re.compile(r"^Input #(\d+),")
_MAPPED = re.compile(r"^\s*Stream #(\d+):\d+ -> #0:(\d+)")


@dataclass(frozen=True)
class ClipInfo:
    """A clip as its file holds it: packets counted, size and rate from the
    stream header."""

    frames: int
    width: int
    height: int
    fps: float


def _version(path: Path) -> tuple[str, int, int, int]:
    info = check_story_file(path, max_bytes=MAX_MEDIA_BYTES, what="clip")
    return (str(path), info.st_ino, info.st_size, info.st_mtime_ns)


def _run(paths: Sequence[Path]) -> tuple[str, dict[int, int]] | None:
    """ffmpeg's stream list and the packets per input; None when it failed
    before reading every input (one that is not a video, say)."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin"]
    for path in paths:
        cmd += ["-t", f"{MAX_CLIP_SECONDS + 2:.0f}", "-i", str(path)]
    for k in range(len(paths)):
        cmd += ["-map", f"{k}:v:0?"]
    cmd += ["-c", "copy", "-f", "framecrc", "-"]
    try:
        done = subprocess.run(
            cmd, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    err = done.stderr.decode("utf-8", "replace")
    head = err.split("Stream mapping:", 1)[0]
    inputs = {
        int(m.group(1)) for line in head.splitlines() if (m := _INPUT.match(line))
    }
    if inputs != set(range(len(paths))):
        return None
    out_to_in = {
        int(m.group(2)): int(m.group(1))
        for line in err.splitlines()
        if (m := _MAPPED.match(line))
    }
    packets: dict[int, int] = {}
    for line in done.stdout.decode("ascii", "replace").splitlines():
        if line and line[0].isdigit():
            k = out_to_in.get(int(line.split(",", 1)[0]))
            if k is not None:
                packets[k] = packets.get(k, 0) + 1
    return head, packets


def _judge(head: str, k: int, frames: int) -> ClipInfo | str:
    """The clip of input ``k``, or why it cannot be played."""
    line = next(
        (
            m.group(2)
            for s in head.splitlines()
            if (m := _VIDEO.match(s)) and int(m.group(1)) == k
        ),
        None,
    )
    if line is None:
        return "it holds no video stream (not a clip, or a damaged one)"
    size, rate = _SIZE.search(line), _FPS.search(line)
    if size is None:
        return "its video stream has no picture size (a damaged clip)"
    width, height = int(size.group(1)), int(size.group(2))
    if width * height > MAX_IMAGE_PIXELS:
        return (
            f"its header claims {width:,} x {height:,} pixels, over the "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixel limit"
        )
    fps = float(rate.group(1)) * (1000 if rate.group(2) else 1) if rate else 0.0
    if not 1 <= round(fps) <= MAX_CLIP_FPS:
        return f"its frame rate {fps:g} fps is outside 1 to {MAX_CLIP_FPS} fps"
    if frames == 0:
        return "it holds no video frames (an empty or truncated clip)"
    if frames / fps > MAX_CLIP_SECONDS:
        return f"it lasts over {MAX_CLIP_SECONDS:.0f} s, longer than a scene can be"
    return ClipInfo(frames, width, height, fps)


def _probe(paths: Sequence[Path]) -> list[ClipInfo | str]:
    ran = _run(paths)
    if ran is None:
        if len(paths) == 1:
            return ["ffmpeg cannot read it as a video (a damaged or foreign file)"]
        return [_probe([p])[0] for p in paths]  # find the one that fails
    head, packets = ran
    return [_judge(head, k, packets.get(k, 0)) for k in range(len(paths))]


def probe_clips(paths: Sequence[str | Path]) -> list[ClipInfo | str]:
    """A `ClipInfo` per clip, or why it cannot be played (a sentence that
    names no file: the caller says which take it is)."""
    out: list[ClipInfo | str | None] = [None] * len(paths)
    todo: list[tuple[int, Path, tuple[str, int, int, int]]] = []
    for i, raw in enumerate(paths):
        path = Path(raw)
        try:
            key = _version(path)
        except FileNotFoundError:
            out[i] = "the file is missing"
            continue
        except (StoryError, OSError) as exc:
            out[i] = str(exc)
            continue
        with _cache_lock:
            out[i] = _cache.get(key)
        if out[i] is None:
            todo.append((i, path, key))
    for start in range(0, len(todo), PROBE_BATCH):
        batch = todo[start : start + PROBE_BATCH]
        for (i, _, key), result in zip(
            batch, _probe([p for _, p, _ in batch]), strict=True
        ):
            out[i] = result
            with _cache_lock:
                if len(_cache) >= _CACHE_SIZE:
                    _cache.clear()
                _cache[key] = result
    return [r if r is not None else "not probed" for r in out]
