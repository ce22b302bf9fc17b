"""A scene's supplied dialogue track: checked, read and decoded with ffmpeg.

A scene may bring its own dialogue (a recording, or any TTS) as a sound file
in the story folder (``SceneNode.dialogue_audio``, a story-relative path that
stays inside the folder: `kg.paths`). A backend that makes sound holds its
audio stream to the track and generates the picture to match (LTX-2: the
makers' audio-to-video route, `engine.backends.ltx2.supplied_audio`); the
take keeps the track itself as its sound.

The file is checked before any take begins (`read_dialogue_audio`): a
missing file, a link, a special file, one over `MAX_DIALOGUE_AUDIO_BYTES` or
one ffmpeg cannot decode is refused with the file and what to do. Decoding
and resampling run the ffmpeg that ``imageio-ffmpeg`` ships (as
`engine.sound` does), from a private copy of the bytes, to float32 samples
at the rate a caller asks for (`decode_track`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from engine.backend import DialogueAudio
from kg.errors import StoryError
from kg.files import read_story_file
from kg.paths import resolve_asset
from kg.schema import MAX_SCENE_SECONDS, SceneNode

__all__ = [
    "AUDIO_TYPES",
    "DialogueAudioError",
    "MAX_DIALOGUE_AUDIO_BYTES",
    "PROBE_RATE",
    "decode_track",
    "read_dialogue_audio",
]

# What recorders and TTS tools write.
AUDIO_TYPES = ("wav", "flac", "mp3", "m4a", "aac", "ogg", "opus")
# 120 s of 48 kHz stereo 24-bit PCM is 35 MB; compressed files are far smaller.
MAX_DIALOGUE_AUDIO_BYTES = 64 * 1024 * 1024
# The rate a track is decoded at to check and measure it (LTX-2's audio VAE's).
PROBE_RATE = 16_000


class DialogueAudioError(StoryError):
    """A scene's dialogue track cannot be used; the message names the file."""


def decode_track(
    data: bytes,
    rate: int,
    *,
    channels: int = 2,
    max_seconds: float = MAX_SCENE_SECONDS + 1.0,
    what: str = "dialogue track",
) -> np.ndarray:
    """The first audio stream of ``data`` as ``[channels, n]`` float32 at ``rate``.

    ffmpeg decodes, mixes to ``channels`` and resamples; at most
    ``max_seconds`` are read. Raises `DialogueAudioError` naming ``what``
    when nothing can be decoded.
    """
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory(prefix="storygraph-track-") as folder:
        source = Path(folder) / "track"
        source.write_bytes(data)
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-hide_banner", "-nostdin", "-loglevel", "error"),
            *("-i", str(source), "-map", "0:a:0", "-vn"),
            *("-ac", str(channels), "-ar", str(int(rate))),
            *("-t", f"{max_seconds:.3f}", "-f", "f32le", "-acodec", "pcm_f32le"),
            "pipe:1",
        ]
        done = subprocess.run(cmd, capture_output=True, check=False)
    usable = len(done.stdout) - len(done.stdout) % (4 * channels)
    if done.returncode != 0 or usable == 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = said[-1][:160] if said else "no sound in it"
        raise DialogueAudioError(
            f"{what} is not a readable sound file ({why}); replace it with a "
            f"{', '.join(t.upper() for t in AUDIO_TYPES[:4])} file"
        )
    samples = np.frombuffer(done.stdout[:usable], dtype="<f4").reshape(-1, channels)
    return np.ascontiguousarray(samples.T, dtype=np.float32)


def read_dialogue_audio(
    story_dir: str | os.PathLike[str], scene: SceneNode
) -> DialogueAudio | None:
    """The scene's dialogue track read and checked (None: it has none).

    Raises `DialogueAudioError` naming the file and what to do.
    """
    rel = scene.dialogue_audio
    if rel is None:
        return None
    what = f"the dialogue track {rel} (scene {scene.id})"
    try:
        data = read_story_file(
            resolve_asset(story_dir, rel), max_bytes=MAX_DIALOGUE_AUDIO_BYTES
        )
    except FileNotFoundError:
        raise DialogueAudioError(
            f"{what} is missing; upload it again on the Storyboard or remove it "
            "from the scene"
        ) from None
    except StoryError as exc:
        raise DialogueAudioError(f"{what}: {exc}") from None
    samples = decode_track(data, PROBE_RATE, what=what)
    return DialogueAudio(
        path=rel,
        data=data,
        seconds=samples.shape[1] / PROBE_RATE,
        digest=hashlib.sha256(data).hexdigest(),
    )
