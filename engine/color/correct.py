"""A take's colour moved toward its anchor, the original kept, and undone.

`correct_result` runs after the backend, before the take's files are
written (`engine.generate.complete_take`): where the backend did not pull
its latents toward the anchor itself (frame and hosted backends, or an
anchor without latent statistics) the frames are transferred in CIELAB
(`engine.color.transfer`) and the uncorrected ones kept, so the take's
clip, first and last frames are the corrected ones (the next scene
continues from them: drift is corrected where it starts) and the
originals are written beside them (`write_originals`):

::

    scenes/<scene>/take-<n>.original.mp4, .original.first.png, .original.last.png

`undo_correction` moves the originals back over the corrected files (byte
for byte the clip the backend made), clears the record and marks the
continuous successors of a selected take ``stale``. A latent correction is
part of the generation and cannot be undone this way.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from engine.backend import GenerationResult
from engine.color.anchor import ColorAnchor
from engine.color.transfer import transfer
from engine.video import write_png, write_video
from kg.errors import StoryError
from kg.graph import DynamicSceneGraph, mark_stale_descendants
from kg.layout import take_stem
from kg.paths import resolve_asset
from kg.schema import ColorCorrection, Story, Take
from kg.store import update_story

__all__ = [
    "CorrectionError",
    "original_files",
    "correct_result",
    "write_originals",
    "undo_correction",
]


class CorrectionError(StoryError):
    """A colour correction cannot be undone (says why and what to do)."""


def original_files(scene_id: str, index: int) -> tuple[str, str, str]:
    """Where a corrected take keeps its original clip, first and last frame.

    >>> original_files("dawn", 2)[0]
    'scenes/dawn/take-2.original.mp4'
    """
    stem = take_stem(scene_id, index)
    return (
        f"{stem}.original.mp4",
        f"{stem}.original.first.png",
        f"{stem}.original.last.png",
    )


def correct_result(
    result: GenerationResult,
    anchor: ColorAnchor | None,
    scene_id: str,
    index: int,
) -> GenerationResult:
    """``result`` with its frames transferred toward ``anchor`` (the original
    frames kept and the correction recorded); unchanged when there is no
    anchor, no pixel statistics, or the backend corrected its latents."""
    if anchor is None or anchor.pixel is None or result.color_correction is not None:
        return result
    frames = transfer(
        result.frames, anchor.pixel, method=anchor.method, strength=anchor.strength
    )
    video, first, last = original_files(scene_id, index)
    record = ColorCorrection(
        method=anchor.method,
        mode=anchor.mode,
        strength=anchor.strength,
        anchor_take=anchor.anchor_take,
        anchor_image=anchor.anchor_image,
        original_video=video,
        original_first_frame=first,
        original_last_frame=last,
    )
    return dataclasses.replace(
        result, frames=frames, original_frames=result.frames, color_correction=record
    )


def write_originals(
    story_dir: str | os.PathLike[str],
    result: GenerationResult,
    fps: int,
    audio: str | os.PathLike[str] | None = None,
) -> None:
    """Write a corrected result's original clip and frames (nothing when it
    was not transferred in pixels)."""
    record, frames = result.color_correction, result.original_frames
    if record is None or frames is None or record.original_video is None:
        return
    assert record.original_first_frame and record.original_last_frame, (
        "a pixel correction names its original frames"
    )
    write_png(resolve_asset(story_dir, record.original_first_frame), frames[0])
    write_png(resolve_asset(story_dir, record.original_last_frame), frames[-1])
    write_video(
        resolve_asset(story_dir, record.original_video),
        np.asarray(frames),
        fps,
        audio=audio,
    )


def _pairs(take: Take) -> list[tuple[str, str]]:
    """(original, corrected) relative paths of a pixel-corrected take."""
    record = take.color_correction
    assert record is not None
    pairs = [
        (record.original_video, take.files.video),
        (record.original_first_frame, take.files.first_frame),
        (record.original_last_frame, take.files.last_frame),
    ]
    return [(a, b) for a, b in pairs if a and b]


def undo_correction(
    story_dir: str | os.PathLike[str], scene_id: str, index: int
) -> Take:
    """Restore take ``index`` of ``scene_id`` as the backend made it.

    The originals replace the corrected files (atomic renames), the record
    is cleared, the take's scores are cleared (they were of the corrected
    clip; ``storygraph score`` scores it again) and, when the take is
    selected, its continuous successors become ``stale``. Raises
    `CorrectionError` for a take without a pixel correction or whose
    originals are gone.
    """
    story_dir = Path(story_dir)

    def mutate(story: Story) -> Take:
        scene = story.scene(scene_id)
        take = scene.take(index)
        record = take.color_correction
        where = f"take {index} of {scene_id!r}"
        if record is None:
            raise CorrectionError(f"{where} has no colour correction to undo")
        if record.original_video is None:
            raise CorrectionError(
                f"{where} was corrected in latent space while it was made; "
                "generate it again with Settings, Colour drift, correction off"
            )
        pairs = _pairs(take)
        missing = [a for a, _ in pairs if not resolve_asset(story_dir, a).is_file()]
        if missing:
            raise CorrectionError(
                f"{where}: the original {', '.join(missing)} is gone; generate "
                "the scene again to get an uncorrected take"
            )
        moves[:] = pairs  # moved once the state is saved (below)
        take.color_correction = None
        take.scores = None
        if scene.selected_take == index:
            mark_stale_descendants(DynamicSceneGraph(story), scene_id)
        return take.model_copy(deep=True)

    moves: list[tuple[str, str]] = []
    # the files move only after the state without the record is saved: a save
    # that fails (a conflict, a full disk) leaves both clips and the record
    undone = update_story(story_dir, mutate)
    for original, corrected in moves:
        os.replace(
            resolve_asset(story_dir, original), resolve_asset(story_dir, corrected)
        )
    return undone
