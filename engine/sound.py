"""Sound files: 16-bit PCM .wav in and out, AAC muxed into mp4, audio probes.

Takes keep their sound lossless as a .wav and as AAC in the mp4 (`mux_aac`
is the one way sound goes into an mp4: takes, films and datasets use it).
Probing and muxing run the ffmpeg binary that ``imageio-ffmpeg`` ships;
writes land atomically (`kg.paths.atomic_path`).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kg.errors import StoryFileError
from kg.files import MAX_MEDIA_BYTES, check_story_file
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
        *("-c:a", "aac", "-b:a", bitrate, *cut, "-movflags", "+faststart+write_colr"),
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


# What a take's .wav may be: what write_wav makes, and what editors export.
WAV_CHANNELS = (1, 8)
WAV_RATES = (8_000, 192_000)


def read_wav(
    path: str | os.PathLike[str],
    *,
    max_seconds: float | None = None,
    what: str = "sound file",
) -> tuple[np.ndarray, int]:
    """A 16-bit PCM .wav as ``[channels, n]`` float32 and its sample rate.

    The header is checked before any sample is read: 1-8 channels, 16-bit
    samples, 8-192 kHz. At most ``max_seconds`` are read (a long file never
    bloats memory), and never more than the file really holds, whatever its
    header claims. The file is opened without blocking and only when it is a
    regular file (`kg.files`). Raises `kg.errors.StoryFileError` naming the
    file, what is wrong and what to do.
    """
    import wave

    path = Path(path)
    shown = f"{what} ({path.name})"
    with _open_regular(path, what) as raw:
        try:
            with wave.open(raw, "rb") as fh:
                channels, width = fh.getnchannels(), fh.getsampwidth()
                rate, claimed = fh.getframerate(), fh.getnframes()
                _check_wav_header(shown, channels, width, rate)
                want = claimed
                if max_seconds is not None:
                    want = min(want, math.ceil(max_seconds * rate) + 1)
                data = fh.readframes(want)  # only what the file holds
        except (wave.Error, EOFError, ValueError) as exc:
            raise StoryFileError(
                f"{shown} is not a readable .wav ({exc}); replace it with a "
                "16-bit PCM .wav or generate the take again"
            ) from None
    usable = len(data) - len(data) % (2 * channels)  # whole frames only
    if usable == 0:
        raise StoryFileError(
            f"{shown} holds no sound (its header claims {claimed} frames); "
            "replace it or generate the take again"
        )
    samples = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, channels).T
    return samples.astype(np.float32) / 32767.0, rate


def _open_regular(path: Path, what: str):  # noqa: ANN202 - a binary file object
    """``path`` opened for reading only when it is a regular file (never a
    FIFO, device or link: `kg.files.check_story_file` on the open file)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    check_story_file(path, max_bytes=MAX_MEDIA_BYTES, what=what)
    fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the check
        os.close(fd)
        raise StoryFileError(
            f"{what} ({path.name}) changed into a special file while it was "
            "opened; replace it with the real file"
        )
    return os.fdopen(fd, "rb")


def _check_wav_header(shown: str, channels: int, width: int, rate: int) -> None:
    low, high = WAV_CHANNELS
    if not low <= channels <= high:
        raise StoryFileError(
            f"{shown} has {channels} channels; a take's sound has {low} to "
            f"{high}: replace it or generate the take again"
        )
    if width != 2:
        raise StoryFileError(
            f"{shown} holds {8 * width}-bit samples; StoryGraph reads 16-bit PCM "
            ".wav: re-export it as 16-bit PCM or generate the take again"
        )
    low, high = WAV_RATES
    if not low <= rate <= high:
        raise StoryFileError(
            f"{shown} is sampled at {rate} Hz, outside {low} to {high} Hz; "
            "re-export it or generate the take again"
        )


def audio_duration(path: str | os.PathLike[str]) -> float | None:
    """Seconds of the first audio stream of a media file (None: no sound),
    decoded by the bundled ffmpeg (exact, not the container's estimate)."""
    import re
    import subprocess

    import imageio_ffmpeg

    check_story_file(path, max_bytes=MAX_MEDIA_BYTES, what="sound")  # a FIFO blocks
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
    """Whether each media file holds an audio stream (`audio_descriptions`)."""
    return [d is not None for d in audio_descriptions(paths)]


def audio_descriptions(paths: Sequence[str | os.PathLike[str]]) -> list[str | None]:
    """Each media file's first audio stream as ffmpeg describes it ("aac,
    48000 Hz, stereo, ..."; None: no sound): one probe of the bundled ffmpeg
    per `PROBE_BATCH` files, reading the stream list it prints per input. A
    FIFO or oversized file is refused first (ffmpeg would block on a FIFO)."""
    import re
    import subprocess

    import imageio_ffmpeg

    found: list[str | None] = [None] * len(paths)
    stream = re.compile(r"^\s*Stream #(\d+):\d+.*: Audio: (.*)$")
    for path in paths:
        check_story_file(path, max_bytes=MAX_MEDIA_BYTES, what="clip")
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
                k = start + int(match.group(1))
                if k < len(found) and found[k] is None:
                    found[k] = match.group(2)
    return found
