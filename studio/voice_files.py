"""A scene's dialogue track, uploaded on the Storyboard and stored in the story.

The upload is checked before it is stored: a known sound type by its name
(WAV, FLAC, MP3, M4A, AAC, Ogg, Opus), at most
`engine.dialogue_audio.MAX_DIALOGUE_AUDIO_BYTES`, and decoded completely by
ffmpeg (`engine.dialogue_audio.decode_track`), so a file that is not sound
is refused here, not when a take starts. It is stored under
``voices/<scene>/`` (never overwriting, never through a link) and the scene
keeps its story-relative path (``SceneNode.dialogue_audio``); the edit
joins the undo history (`kg.edits.edit_story`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from engine.dialogue_audio import (
    AUDIO_TYPES,
    MAX_DIALOGUE_AUDIO_BYTES,
    PROBE_RATE,
    decode_track,
)
from kg.edits import edit_story
from kg.errors import StoryError
from kg.files import check_story_file, read_story_file
from kg.graph import DynamicSceneGraph, mark_stale_descendants
from kg.paths import resolve_asset
from kg.schema import GENERATED_STATUSES, Story
from studio.uploads import store_new_file

__all__ = [
    "AUDIO_TYPES",
    "MAX_DIALOGUE_AUDIO_BYTES",
    "VOICES_DIR",
    "add_dialogue_audio",
    "remove_dialogue_audio",
    "stored_seconds",
]

VOICES_DIR = "voices"


def _check(filename: str, data: bytes) -> tuple[str, float]:
    """(extension, seconds) of an acceptable upload, else `StoryError`."""
    shown = repr(filename if len(filename) <= 60 else filename[:57] + "...")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in AUDIO_TYPES:
        raise StoryError(
            f"Dialogue track {shown}: type .{ext[:10] or '?'} is not accepted; "
            f"upload a {', '.join(t.upper() for t in AUDIO_TYPES)} file"
        )
    if len(data) > MAX_DIALOGUE_AUDIO_BYTES:
        raise StoryError(
            f"Dialogue track {shown}: {len(data) / 1e6:.1f} MB is over the "
            f"{MAX_DIALOGUE_AUDIO_BYTES // (1024 * 1024)} MB limit; upload a "
            "shorter or compressed file"
        )
    samples = decode_track(data, PROBE_RATE, what=f"Dialogue track {shown}")
    return ext, samples.shape[1] / PROBE_RATE


def add_dialogue_audio(folder: Path, scene_id: str, filename: str, data: bytes) -> str:
    """Store an uploaded dialogue track as the scene's; returns its path in
    the story folder (a track the scene had stays on disk, no longer used)."""
    ext, _ = _check(filename, data)
    rel, stored = store_new_file(
        folder, f"{VOICES_DIR}/{scene_id}", filename, ext, data
    )

    def mutate(story: Story) -> None:
        _set_track(story, scene_id, rel)

    try:
        edit_story(folder, mutate)
    except BaseException:
        stored.unlink(missing_ok=True)  # not referenced: not kept
        raise
    return rel


def remove_dialogue_audio(folder: Path, scene_id: str) -> None:
    """The scene speaks its dialogue from the prompt again (the file stays,
    so an undo brings it back)."""
    edit_story(folder, lambda story: _set_track(story, scene_id, None))


def _set_track(story: Story, scene_id: str, rel: str | None) -> list[str]:
    """Give the scene its track; a generated scene (and what continues it)
    no longer matches its takes: stale, as when its fields change."""
    scene = story.scene(scene_id)
    if scene.dialogue_audio == rel:
        return []
    scene.dialogue_audio = rel
    if scene.status not in GENERATED_STATUSES or not scene.takes:
        return []
    scene.status = "stale"
    return [scene_id, *mark_stale_descendants(DynamicSceneGraph(story), scene_id)]


@functools.lru_cache(maxsize=64)
def _seconds_of(path: str, mtime_ns: int, size: int) -> float:
    """How long a track plays, decoded once per version of the file."""
    data = read_story_file(Path(path), max_bytes=MAX_DIALOGUE_AUDIO_BYTES)
    what = f"dialogue track {Path(path).name}"
    return decode_track(data, PROBE_RATE, what=what).shape[1] / PROBE_RATE


def stored_seconds(folder: Path, rel: str) -> float:
    """How long the stored track at ``rel`` plays (decoded once per version
    of the file); `StoryError` when it is missing or not sound."""
    path = resolve_asset(folder, rel)
    try:
        info = check_story_file(path, max_bytes=MAX_DIALOGUE_AUDIO_BYTES)
    except FileNotFoundError:
        raise StoryError(f"{rel} is missing; store the track again") from None
    return _seconds_of(str(path), info.st_mtime_ns, info.st_size)
