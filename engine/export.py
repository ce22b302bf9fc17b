"""Export a story as a training dataset for the LTX trainers (IC-LoRA or T2V).

A story is a data engine: every scene's selected take is a captioned clip, and
a scene that continues from another (a ``continuous`` edge) makes an IC-LoRA
pair, the predecessor's clip as the reference and the scene's clip as the
target. `plan_export` decides which rows a dataset gets and why each other
scene is left out (failed, stale, not generated, not scored or under a score
threshold, too short for the bucket, no continuous predecessor);
`export_dataset` writes them:

    OUT/videos/<scene>-take<n>.mp4   clips normalised to the bucket (H.264)
    OUT/dataset.jsonl | dataset.csv  the trainer's manifest (engine.dataset.formats)
    OUT/metadata.json                story, scene, take, seed, model, backend and
                                     every score per row; the skipped scenes
    OUT/README.md                    the preprocessing command lines

Formats follow the LTX-2 trainer (``Lightricks/LTX-2``,
``packages/ltx-trainer/docs/dataset-preparation.md``: ``caption``, ``video``,
``reference_video``) and the older ``Lightricks/LTX-Video-Trainer``
(``caption``, ``media_path``, ``reference_path``). Clips are resized and
centre-cropped to one ``WxHxF`` bucket, as their preprocessing does, so a
reference and its target always have the same shape.

Re-exporting into the same folder is idempotent: names and encodings are
deterministic, a clip whose source and bucket are unchanged (content hash) is
not encoded again, and files of a previous export that no longer belong are
removed. A dataset made of animatic or random-weight takes says so in its
metadata and README.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.dataset.bucket import Bucket, fit_to_bucket, parse_bucket
from engine.dataset.formats import (
    FORMATS,
    DatasetFormat,
    ManifestRow,
    get_format,
    render_readme,
)
from kg.graph import DynamicSceneGraph, continuity_predecessor, generation_order
from kg.paths import atomic_path, inside, refuse_link, resolve_asset, walk_files
from kg.schema import SceneNode, Story, Take
from kg.store import STATE_FILE, load_story

__all__ = [
    "PAIRINGS",
    "GENERATOR",
    "METADATA_FILE",
    "README_FILE",
    "CLIPS_DIR",
    "ExportError",
    "EmptyDatasetError",
    "ExportOptions",
    "ClipRef",
    "PlannedRow",
    "Skip",
    "ExportPlan",
    "ExportSummary",
    "default_bucket",
    "plan_export",
    "export_dataset",
    "zip_dataset",
    "parse_bucket",
]

log = logging.getLogger(__name__)

PAIRINGS = ("continuation", "none")
GENERATOR = "storygraph export"
METADATA_FILE = "metadata.json"
README_FILE = "README.md"
CLIPS_DIR = "videos"
# Part of every clip's content hash: change it when the encoding changes so
# clips of older exports are encoded again.
ENCODING = "h264-yuv420p-crf18-veryfast/bicubic-centre-crop/v1"

ProgressFn = Callable[[int, int], None]


class ExportError(ValueError):
    """An export the user asked for that cannot be done; says what to change."""


class EmptyDatasetError(ExportError):
    """No scene passed the filters; ``plan.skipped`` says why for each."""

    def __init__(self, plan: ExportPlan) -> None:
        counts = ", ".join(f"{n} {why}" for why, n in plan.skip_counts().items())
        super().__init__(
            "no scene can be exported"
            + (f" ({counts})" if counts else " (the story has no scenes)")
            + "; generate scenes, lower the score thresholds or use --pairing none"
        )
        self.plan = plan


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; `check` validates it with option-named errors."""

    format: str = "ltx2"
    # None: ``continuation`` for the formats with a reference column, else ``none``.
    pairing: str | None = None
    min_clip_score: float | None = None
    min_subject_consistency: float | None = None
    trigger: str | None = None
    # None: the story's resolution (floored to multiples of 32) and the longest
    # 8k+1 frame count every eligible clip has.
    bucket: Bucket | None = None

    @property
    def dataset_format(self) -> DatasetFormat:
        return get_format(self.format)

    @property
    def resolved_pairing(self) -> str:
        if self.pairing is not None:
            return self.pairing
        return "continuation" if self.dataset_format.reference_column else "none"

    @property
    def thresholds(self) -> dict[str, float]:
        """Score field -> minimum, for the thresholds that are set."""
        out = {}
        if self.min_clip_score is not None:
            out["clip_score"] = float(self.min_clip_score)
        if self.min_subject_consistency is not None:
            out["subject_consistency"] = float(self.min_subject_consistency)
        return out

    def check(self) -> ExportOptions:
        """Raise `ExportError` naming the option and the fix; returns self."""
        if self.format not in FORMATS:
            raise ExportError(
                f"--format {self.format!r} is not a dataset format; choose one of "
                f"{', '.join(FORMATS)}"
            )
        if self.pairing is not None and self.pairing not in PAIRINGS:
            raise ExportError(
                f"--pairing {self.pairing!r}: choose one of {', '.join(PAIRINGS)}"
            )
        if self.resolved_pairing == "continuation" and not (
            self.dataset_format.reference_column
        ):
            raise ExportError(
                f"--format {self.format} has no reference column, so it cannot "
                "hold continuation pairs; use --pairing none or --format ltx2/ltxv"
            )
        for option, value in (
            ("--min-clip-score", self.min_clip_score),
            ("--min-subject-consistency", self.min_subject_consistency),
        ):
            if value is not None and not math.isfinite(value):
                raise ExportError(f"{option} must be a finite number, got {value}")
        if self.trigger is not None:
            if not self.trigger.strip():
                raise ExportError("--trigger is blank; give a token or leave it out")
            if "\n" in self.trigger or "\r" in self.trigger:
                raise ExportError("--trigger must be one line; remove the line break")
        return self


@dataclass(frozen=True)
class ClipRef:
    """A take's clip as it goes into the dataset."""

    scene_id: str
    take: int
    source: str  # relative to the story folder
    dest: str  # relative to the dataset folder
    fps: int
    source_kind: str  # model, animatic or random-weights


@dataclass(frozen=True)
class PlannedRow:
    """One sample: caption, target clip, optional reference, its metadata."""

    caption: str
    target: ClipRef
    reference: ClipRef | None
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Skip:
    """A scene left out: ``reason`` is a short category, ``detail`` the why."""

    scene_id: str
    take: int | None
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "scene": self.scene_id,
            "take": self.take,
            "reason": self.reason,
            "detail": self.detail,
        }


def _count(skips: list[Skip]) -> dict[str, int]:
    return dict(sorted(Counter(s.reason for s in skips).items()))


@dataclass
class ExportPlan:
    """The rows a dataset will hold and the scenes left out, before writing."""

    story_title: str
    options: ExportOptions
    bucket: Bucket
    rows: list[PlannedRow]
    skipped: list[Skip]

    @property
    def paired(self) -> bool:
        return self.options.resolved_pairing == "continuation"

    def clips(self) -> list[ClipRef]:
        """Every distinct clip the rows use, in row order."""
        seen: dict[str, ClipRef] = {}
        for row in self.rows:
            for clip in (row.reference, row.target):
                if clip is not None:
                    seen.setdefault(clip.dest, clip)
        return list(seen.values())

    def skip_counts(self) -> dict[str, int]:
        """Reason -> number of scenes skipped for it."""
        return _count(self.skipped)

    def preview(self) -> list[dict[str, Any]]:
        """One flat dict per row for a table (scene, take, caption, files, scores)."""
        out = []
        for row in self.rows:
            meta = row.metadata
            item = {
                "scene": meta["scene"],
                "take": meta["take"],
                "caption": row.caption,
                "video": row.target.dest,
            }
            if self.paired:
                item["reference"] = row.reference.dest if row.reference else None
            scores = meta.get("scores") or {}
            item["clip_score"] = scores.get("clip_score")
            item["subject_consistency"] = scores.get("subject_consistency")
            item["source"] = meta["source_kind"]
            out.append(item)
        return out


@dataclass
class ExportSummary:
    """What an export wrote, reused, removed and skipped."""

    out: Path
    plan: ExportPlan
    clips_written: int = 0
    clips_reused: int = 0
    removed: list[str] = field(default_factory=list)
    # Scenes dropped while writing (a clip that could not be decoded).
    late_skips: list[Skip] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.plan.rows)

    @property
    def skipped(self) -> list[Skip]:
        return self.plan.skipped + self.late_skips

    def skip_counts(self) -> dict[str, int]:
        return _count(self.skipped)


# Planning ---------------------------------------------------------------------


def _source_kind(take: Take) -> str:
    if take.params.random_weights:
        return "random-weights"
    if take.params.backend == "animatic":
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


def _clip_ref(scene_id: str, take: Take) -> ClipRef:
    assert take.files.video, f"take {take.index} of {scene_id} has no clip"
    return ClipRef(
        scene_id=scene_id,
        take=take.index,
        source=take.files.video,
        dest=f"{CLIPS_DIR}/{scene_id}-take{take.index}.mp4",
        fps=take.params.fps,
        source_kind=_source_kind(take),
    )


def _caption(scene: SceneNode, take: Take, trigger: str | None) -> str:
    text = " ".join(take.params.prompt.split()) or scene.title
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
        if take.params.num_frames < bucket.frames:
            skips[sid] = Skip(
                sid,
                take.index,
                "too short",
                f"{take.params.num_frames} frames < the bucket's {bucket.frames} "
                "(clips are never padded); choose a bucket with fewer frames",
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
            reference = _clip_ref(pred, pred_take)
            meta["reference"] = _take_meta(story, graph.scene(pred), pred_take)
        target = _clip_ref(sid, take)
        meta["video"] = target.dest
        meta["reference_video"] = reference.dest if reference else None
        caption = _caption(scene, take, options.trigger)
        meta["caption"] = caption
        rows.append(PlannedRow(caption, target, reference, meta))

    ordered_skips = [skips[sid] for sid in order if sid in skips]
    return ExportPlan(story.title, options, bucket, rows, ordered_skips)


# Writing ----------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_text(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return  # unchanged: keep the file (and its mtime) as it is
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _previous_export(story_dir: Path, out: Path) -> dict[str, Any]:
    """The metadata of the previous export in ``out``, {} for a new or empty folder.

    Refuses folders that hold anything but a previous export.
    """
    if (out / STATE_FILE).exists() or out.resolve() == story_dir.resolve():
        raise ExportError(
            f"--out {out} is a story folder; choose a folder for the dataset, "
            f"e.g. {story_dir / 'dataset'}"
        )
    if not out.exists() or not any(out.iterdir()):
        return {}
    try:
        meta = json.loads((out / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("generator") != GENERATOR:
        raise ExportError(
            f"--out {out} is not empty and holds no previous StoryGraph export "
            f"({METADATA_FILE}); choose an empty or new folder"
        )
    return meta


def _previous_clips(previous: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The clip hashes a previous export recorded, or {}."""
    clips = previous.get("clips")
    return clips if isinstance(clips, dict) else {}


def _synthetic_note(kinds: Counter[str]) -> str | None:
    """The warning for datasets with clips that are not model footage, or None."""
    total = sum(kinds.values())
    parts = []
    if kinds["animatic"]:
        parts.append(
            f"{kinds['animatic']} of its {total} clips are animatic storyboard previews"
        )
    if kinds["random-weights"]:
        parts.append(
            f"{kinds['random-weights']} of its {total} clips come from a tiny "
            "random-weight model"
        )
    if not parts:
        return None
    return (
        "; ".join(parts)
        + ", not model footage: use this dataset to test a training pipeline, "
        "not to train a LoRA worth keeping."
    )


def _metadata(
    plan: ExportPlan, clips: dict[str, dict[str, str]], late: list[Skip]
) -> dict[str, Any]:
    opts = plan.options
    kinds = Counter(c.source_kind for c in plan.clips())
    skipped = plan.skipped + late
    return {
        "generator": GENERATOR,
        "story": plan.story_title,
        "format": opts.format,
        "manifest": opts.dataset_format.manifest,
        "pairing": opts.resolved_pairing,
        "bucket": {
            "width": plan.bucket.width,
            "height": plan.bucket.height,
            "frames": plan.bucket.frames,
            "text": plan.bucket.text,
        },
        "trigger": opts.trigger,
        "thresholds": opts.thresholds,
        "source_kinds": dict(sorted(kinds.items())),
        "synthetic": _synthetic_note(kinds),
        "rows": [r.metadata for r in plan.rows],
        "skipped": [s.as_dict() for s in skipped],
        "skip_counts": _count(skipped),
        "clips": clips,
    }


def export_dataset(
    story_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ExportOptions,
    *,
    progress: ProgressFn | None = None,
    plan: ExportPlan | None = None,
) -> ExportSummary:
    """Write the dataset of ``story_dir`` into ``out``; returns what it did.

    Parameters
    ----------
    story_dir : the story folder.
    out : the dataset folder: new, empty, or a previous export (updated in
        place; files that no longer belong are removed).
    options : format, pairing, thresholds, trigger, bucket.
    progress : called as ``progress(clips_done, clips_total)``.
    plan : a plan made by `plan_export` with the same options (saves a pass).

    Raises `ExportError` for invalid options or ``out``, `EmptyDatasetError`
    when no scene passes the filters (nothing is written then).
    """
    from engine.video import read_video, remove_partial_files, write_video

    story_dir, out = Path(story_dir), _confined_out(Path(story_dir), Path(out))
    plan = plan or plan_export(story_dir, options)
    if not plan.rows:
        raise EmptyDatasetError(plan)
    previous = _previous_clips(_previous_export(story_dir, out))
    out.mkdir(parents=True, exist_ok=True)
    remove_partial_files(out)
    progress = progress or (lambda done, total: None)
    summary = ExportSummary(out, plan)

    clips: dict[str, dict[str, str]] = {}
    bad: dict[str, str] = {}  # dest -> why it could not be written
    todo = plan.clips()
    progress(0, len(todo))
    for done, clip in enumerate(todo, start=1):
        src = resolve_asset(story_dir, clip.source)
        dest = inside(out, clip.dest)
        record = {
            "source": clip.source,
            "source_sha256": _sha256_file(src),
            "bucket": plan.bucket.text,
            "encoding": ENCODING,
        }
        old = previous.get(clip.dest)
        if (
            isinstance(old, dict)
            and {k: old.get(k) for k in record} == record
            and dest.is_file()
            and _sha256_file(dest) == old.get("sha256")
        ):
            clips[clip.dest] = old
            summary.clips_reused += 1
        else:
            try:
                frames = fit_to_bucket(read_video(src), plan.bucket)
                write_video(dest, frames, clip.fps)
            except (ValueError, OSError) as exc:
                log.warning("clip %s could not be exported: %s", clip.source, exc)
                bad[clip.dest] = f"{clip.source}: {exc}"
            else:
                clips[clip.dest] = {**record, "sha256": _sha256_file(dest)}
                summary.clips_written += 1
        progress(done, len(todo))

    if bad:
        kept = []
        for row in plan.rows:
            broken = [c for c in (row.target, row.reference) if c and c.dest in bad]
            if broken:
                summary.late_skips.append(
                    Skip(
                        row.target.scene_id,
                        row.target.take,
                        "unreadable clip",
                        bad[broken[0].dest],
                    )
                )
            else:
                kept.append(row)
        plan = summary.plan = replace(plan, rows=kept)
        if not kept:
            raise EmptyDatasetError(replace(plan, skipped=summary.skipped))
    used = {c.dest for c in plan.clips()}
    clips = {k: v for k, v in sorted(clips.items()) if k in used}

    fmt = options.dataset_format
    manifest = [
        ManifestRow(r.caption, r.target.dest, r.reference.dest if r.reference else None)
        for r in plan.rows
    ]
    _write_text(inside(out, fmt.manifest), fmt.render_manifest(manifest, plan.paired))
    meta = _metadata(plan, clips, summary.late_skips)
    _write_text(
        inside(out, METADATA_FILE),
        json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
    )
    readme = render_readme(
        fmt,
        story_title=plan.story_title,
        bucket=plan.bucket,
        paired=plan.paired,
        trigger=options.trigger,
        rows=len(plan.rows),
        skipped=len(summary.skipped),
        synthetic_note=meta["synthetic"],
    )
    _write_text(inside(out, README_FILE), readme)

    # files of a previous export that no longer belong
    keep = {fmt.manifest, METADATA_FILE, README_FILE} | used
    for name in {f.manifest for f in FORMATS.values()} - {fmt.manifest}:
        if (out / name).is_file():
            (out / name).unlink()
            summary.removed.append(name)
    for path in sorted(walk_files(out, CLIPS_DIR)):
        rel = path.relative_to(out).as_posix()
        if rel not in keep:
            path.unlink()
            summary.removed.append(rel)
    return summary


def _confined_out(story_dir: Path, out: Path) -> Path:
    """``out``; inside the story folder it must not go through a link.

    A dataset folder elsewhere is the user's explicit choice; one under the
    story (the default ``dataset/<format>``) could be a link planted to make
    the export write outside.
    """
    story_abs = Path(os.path.abspath(story_dir))
    out_abs = Path(os.path.abspath(out))
    if out_abs != story_abs and out_abs.is_relative_to(story_abs):
        inside(story_abs, out_abs.relative_to(story_abs).as_posix())
    else:
        refuse_link(out_abs)
    return out


def zip_dataset(out: str | os.PathLike[str]) -> bytes:
    """The dataset folder as zip bytes (deterministic: sorted, fixed dates).

    Hidden entries (``.precomputed``, temporary files) are left out; every
    name starts with the folder's name.
    """
    root = Path(out)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(walk_files(root, ".")):
            rel = path.relative_to(root)
            if any(p.startswith(".") for p in rel.parts):
                continue
            info = zipfile.ZipInfo(
                f"{root.name}/{rel.as_posix()}", (1980, 1, 1, 0, 0, 0)
            )
            # mp4 is already compressed; text compresses well
            info.compress_type = (
                zipfile.ZIP_STORED if path.suffix == ".mp4" else zipfile.ZIP_DEFLATED
            )
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()
