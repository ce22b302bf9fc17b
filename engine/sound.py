"""Sound files: 16-bit PCM .wav in and out, AAC muxed into mp4, audio probes.

Takes keep their sound lossless as a .wav and as AAC in the mp4 (`mux_aac`
is the one way sound goes into an mp4: takes, films and datasets use it).
Probing and muxing run the ffmpeg binary that ``imageio-ffmpeg`` ships;
writes land atomically (`kg.paths.atomic_path`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kg.paths import atomic_path

__all__ = [
    "mux_aac",
    "write_wav",
    "read_wav",
    "audio_duration",
    "has_audio",
    "audio_streams",
]

# Inputs one ffmpeg probe reads at once (each holds a file open).
PROBE_BATCH = 64


def mux_aac(
    video: str | os.PathLike[str],
    sounds: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    audio_filter: str | None = None,
    seconds: float | None = None,
    bitrate: str = "192k",
) -> Path:
    """Write ``out``: ``video``'s picture stream copied, sound encoded as AAC.

    The one way StoryGraph puts sound into an mp4. ``sounds`` are ffmpeg's
    inputs 1, 2, ... (``video`` is input 0). Without ``audio_filter`` the sound
    is the first audio stream of ``sounds[0]``; with it, ``audio_filter`` is a
    ``-filter_complex`` graph over those inputs whose output is labelled
    ``[aout]``. ``seconds`` cuts the result at that length. The container is
    mp4 whatever ``out`` is called (temporary names need not end in ``.mp4``).
    Raises `OSError` with ffmpeg's message when it fails.
    """
    import subprocess

    import imageio_ffmpeg

    if not sounds:
        raise ValueError("mux_aac needs at least one sound input")
    inputs = [arg for sound in sounds for arg in ("-i", str(sound))]
    audio = (
        ("-filter_complex", audio_filter, "-map", "[aout]")
        if audio_filter
        else ("-map", "1:a:0")
    )
    cut = ("-t", f"{seconds:.6f}") if seconds is not None else ()
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        *("-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
        *("-i", str(video), *inputs),
        *("-map", "0:v:0", *audio, "-c:v", "copy"),
        *("-c:a", "aac", "-b:a", bitrate, *cut, "-movflags", "+faststart"),
        *("-f", "mp4", str(out)),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, errors="replace", check=False
    )
    if done.returncode != 0:
        raise OSError(f"ffmpeg could not add the sound to {out}: {done.stderr[-500:]}")
    return Path(out)


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, rate: int) -> Path:
    """``samples`` ``[channels, n]`` float in [-1, 1] as a 16-bit PCM .wav, atomically.

    16-bit PCM is what editors, browsers and the LTX trainers read everywhere;
    the mp4's AAC is encoded from this file.
    """
    import wave

    if samples.ndim != 2 or samples.shape[1] == 0:
        raise ValueError(
            f"samples must be [channels, n] with n > 0, got {tuple(samples.shape)}"
        )
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    final = Path(path)
    with atomic_path(final) as tmp, wave.open(str(tmp), "wb") as fh:
        fh.setnchannels(samples.shape[0])
        fh.setsampwidth(2)
        fh.setframerate(int(rate))
        fh.writeframes(np.ascontiguousarray(pcm.T).tobytes())
    return final


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A 16-bit PCM .wav as ``[channels, n]`` float32 and its sample rate."""
    import wave

    with wave.open(str(path), "rb") as fh:
        if fh.getsampwidth() != 2:
            raise ValueError(f"{path} is not 16-bit PCM")
        channels, rate = fh.getnchannels(), fh.getframerate()
        data = np.frombuffer(fh.readframes(fh.getnframes()), dtype="<i2")
    return (data.reshape(-1, channels).T.astype(np.float32) / 32767.0), rate


def audio_duration(path: str | os.PathLike[str]) -> float | None:
    """Seconds of the first audio stream of a media file (None: no sound),
    decoded by the bundled ffmpeg (exact, not the container's estimate)."""
    import re
    import subprocess

    import imageio_ffmpeg

    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        *("-hide_banner", "-nostdin", "-i", str(path)),
        *("-map", "0:a:0", "-f", "null", "-"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    times = re.findall(r"time=(\d+):(\d+):(\d+\.\d+)", done.stderr)
    if done.returncode != 0 or not times:
        return None
    h, m, sec = times[-1]
    return int(h) * 3600 + int(m) * 60 + float(sec)


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether the media file holds an audio stream (asked of the bundled ffmpeg)."""
    return audio_streams([path])[0]


def audio_streams(paths: Sequence[str | os.PathLike[str]]) -> list[bool]:
    """Whether each media file holds an audio stream: one ffmpeg probe per
    `PROBE_BATCH` files, reading the stream list ffmpeg prints per input."""
    import re
    import subprocess

    import imageio_ffmpeg

    found = [False] * len(paths)
    stream = re.compile(r"^\s*Stream #(\d+):\d+.*: Audio:")
    for start in range(0, len(paths), PROBE_BATCH):
        batch = paths[start : start + PROBE_BATCH]
        inputs = [arg for p in batch for arg in ("-i", str(p))]
        probe = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *inputs],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        for line in probe.stderr.splitlines():
            if match := stream.match(line):
                found[start + int(match.group(1))] = True
    return found
