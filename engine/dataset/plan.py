"""Which scenes of a story become dataset rows, and why the others do not.

A scene's selected take is a captioned clip; a scene that continues from
another (a ``continuous`` edge) makes an IC-LoRA pair with its predecessor's
clip as the reference. Scenes left out (failed, stale, not generated, not
scored or under a threshold, too short for the bucket, no continuous
predecessor) are listed with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.catalog import CATALOG
from engine.dataset.bucket import Bucket, frames_fitting
from engine.dataset.options import (
    CLIPS_DIR,
    ClipRef,
    ExportOptions,
    ExportPlan,
    PlannedRow,
    Skip,
)
from kg.graph import DynamicSceneGraph, continuity_predecessor, generation_order
from kg.paths import resolve_asset
from kg.schema import SceneNode, Story, Take
from kg.store import load_story


def _source_kind(take: Take) -> str:
    if take.params.random_weights:
        return "random-weights"
    backend = CATALOG.get(take.params.backend)
    if backend is not None and backend.frames == "storyboard":
        return "animatic"
    return "model"


def _scores_dict(take: Take) -> dict[str, Any] | None:
    return None if take.scores is None else take.scores.model_dump(mode="json")


_STATUS_SKIPS = {
    "draft": ("not generated", "the scene has no take yet; generate it"),
    "queued": ("in progress", "the scene is queued for generation"),
    "generating": ("in progress", "the scene is being generated"),
    "interrupted": ("interrupted", "its generation stopped; generate it again"),
    "stale": (
        "stale",
        "its continuity source changed since it was generated; generate it again",
    ),
}


def _check_take(
    story_dir: Path, scene: SceneNode, options: ExportOptions
) -> Skip | None:
    """Why the scene's selected take cannot be used (bucket aside), or None."""
    take = scene.selected
    index = take.index if take else None
    if scene.status == "failed":
        last = scene.takes[-1] if scene.takes else None
        error = last.error if last and last.error else "no error recorded"
        return Skip(scene.id, index, "failed", f"its last generation failed: {error}")
    if scene.status in _STATUS_SKIPS:
        reason, detail = _STATUS_SKIPS[scene.status]
        return Skip(scene.id, index, reason, detail)
    if take is None:
        return Skip(scene.id, None, "not generated", "no take is selected")
    if take.status != "done":
        return Skip(scene.id, index, "failed", f"the selected take is {take.status}")
    if not take.files.video or not resolve_asset(story_dir, take.files.video).is_file():
        return Skip(scene.id, index, "clip missing", "the take's mp4 is not on disk")
    for metric, minimum in options.thresholds.items():
        value = None if take.scores is None else getattr(take.scores, metric)
        if value is None:
            why = (
                take.scores.unavailable.get(metric, "not computed")
                if take.scores
                else "the observer did not score this take"
            )
            return Skip(
                scene.id,
                index,
                "not scored",
                f"{metric} is missing ({why}) and a minimum of {minimum:g} is set; "
                "score the story (storygraph score) or drop the threshold",
            )
        if value < minimum:
            return Skip(
                scene.id,
                index,
                "below threshold",
                f"{metric} {value:.4g} < {minimum:g}",
            )
    return None


def default_bucket(story: Story, frame_counts: list[int]) -> Bucket:
    """The story's resolution floored to 32, frames floored to 8k+1 of the shortest.

    Examples
    --------
    >>> from kg.schema import Story
    >>> default_bucket(Story(title="t"), [49, 60]).text
    '768x512x49'
    """
    s = story.settings
    shortest = min(frame_counts, default=49)
    return Bucket(
        max(32, s.width // 32 * 32),
        max(32, s.height // 32 * 32),
        max(1, (shortest - 1) // 8 * 8 + 1),
    )


def _clip_ref(scene_id: str, take: Take, original: bool = False) -> ClipRef:
    """The take's clip; with ``original``, the one its backend made before a
    colour correction (`engine.color.correct`), where it has one."""
    assert take.files.video, f"take {take.index} of {scene_id} has no clip"
    source = take.files.video
    if original and take.color_correction and take.color_correction.original_video:
        source = take.color_correction.original_video
    return ClipRef(
        scene_id=scene_id,
        take=take.index,
        source=source,
        dest=f"{CLIPS_DIR}/{scene_id}-take{take.index}.mp4",
        fps=take.params.fps,
        source_kind=_source_kind(take),
        audio_source=take.files.audio,
        audio_dest=(
            f"{CLIPS_DIR}/{scene_id}-take{take.index}.wav" if take.files.audio else None
        ),
    )


def _caption(scene: SceneNode, take: Take, trigger: str | None) -> str:
    text = " ".join(take.params.prompt.split()) or " ".join(scene.title.split())
    return f"{trigger.strip()} {text}" if trigger else text


def _take_meta(story: Story, scene: SceneNode, take: Take) -> dict[str, Any]:
    p = take.params
    return {
        "story": story.title,
        "scene": scene.id,
        "scene_title": scene.title,
        "take": take.index,
        "seed": p.seed,
        "model": p.model,
        "backend": p.backend,
        "random_weights": p.random_weights,
        "source_kind": _source_kind(take),
        "size": f"{p.width}x{p.height}x{p.num_frames}",
        "fps": p.fps,
        "prompt": p.prompt,
        "source_video": take.files.video,
        "scores": _scores_dict(take),
    }


def plan_export(
    story_dir: str | os.PathLike[str], options: ExportOptions
) -> ExportPlan:
    """Which rows the dataset gets and why every other scene is left out.

    Reads the story and checks that clips exist; writes nothing. Raises
    `ExportError` for invalid options.
    """
    options.check()
    story_dir = Path(story_dir)
    story = load_story(story_dir)
    graph = DynamicSceneGraph(story)
    order = generation_order(graph)

    usable: dict[str, Take] = {}
    skips: dict[str, Skip] = {}
    for sid in order:
        scene = graph.scene(sid)
        skip = _check_take(story_dir, scene, options)
        if skip is None:
            assert scene.selected is not None
            usable[sid] = scene.selected
        else:
            skips[sid] = skip

    bucket = options.bucket or default_bucket(
        story, [t.params.num_frames for t in usable.values()]
    )
    for sid, take in list(usable.items()):
        n = take.params.num_frames
        if n < bucket.frames:
            fit = frames_fitting(n)
            hint = (
                f"--bucket {bucket.width}x{bucket.height}x{fit} fits it ({fit} is "
                f"the largest 8k+1 count of its {n} frames)"
                if fit
                else "it has no frames; generate it again"
            )
            skips[sid] = Skip(
                sid,
                take.index,
                "too short",
                f"{n} frames < the bucket's {bucket.frames} (clips are never "
                f"padded); {hint}",
                frames=n,
            )
            del usable[sid]

    paired = options.resolved_pairing == "continuation"
    rows: list[PlannedRow] = []
    for sid in order:
        if sid not in usable:
            continue
        scene, take = graph.scene(sid), usable[sid]
        reference: ClipRef | None = None
        meta = _take_meta(story, scene, take)
        if paired:
            pred = continuity_predecessor(graph, sid)
            if pred is None:
                skips[sid] = Skip(
                    sid,
                    take.index,
                    "no continuous predecessor",
                    "first scene or after a cut: no reference to pair it with "
                    "(its clip can still be the reference of the next scene)",
                )
                continue
            if pred not in usable:
                why = skips[pred]
                skips[sid] = Skip(
                    sid,
                    take.index,
                    "reference skipped",
                    f"its reference {pred!r} is skipped ({why.reason})",
                )
                continue
            source = take.params.continuity_source
            pred_take = usable[pred]
            if source is not None and (source.scene_id, source.take) != (
                pred,
                pred_take.index,
            ):
                skips[sid] = Skip(
                    sid,
                    take.index,
                    "stale",
                    f"it continues from take {source.take} of {source.scene_id!r}, "
                    f"not the selected take {pred_take.index}; generate it again",
                )
                continue
            reference = _clip_ref(pred, pred_take, options.original_colors)
            meta["reference"] = _take_meta(story, graph.scene(pred), pred_take)
        target = _clip_ref(sid, take, options.original_colors)
        meta["video"] = target.dest
        meta["reference_video"] = reference.dest if reference else None
        caption = _caption(scene, take, options.trigger)
        meta["caption"] = caption
        rows.append(PlannedRow(caption, target, reference, meta))

    ordered_skips = [skips[sid] for sid in order if sid in skips]
    return ExportPlan(story.title, options, bucket, rows, ordered_skips)
