"""What an export is asked and what it plans: options, rows, skips, summaries.

The value types shared by `engine.dataset.plan` (which scenes become rows and
why the others are left out) and `engine.dataset.write` (the files).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.dataset.bucket import Bucket
from engine.dataset.formats import (
    FORMATS,
    DatasetFormat,
    get_format,
)
from engine.errors import ExportError

PAIRINGS = ("continuation", "none")
GENERATOR = "storygraph export"
METADATA_FILE = "metadata.json"
README_FILE = "README.md"
CLIPS_DIR = "videos"
# Part of every clip's content hash: change it when the encoding changes so
# clips of older exports are encoded again.
ENCODING = "h264-yuv420p-crf18-veryfast/bicubic-centre-crop/v1"

ProgressFn = Callable[[int, int], None]


class EmptyDatasetError(ExportError):
    """No scene passed the filters; ``plan.skipped`` says why for each."""

    def __init__(self, plan: ExportPlan) -> None:
        counts = ", ".join(f"{n} {why}" for why, n in plan.skip_counts().items())
        super().__init__(
            "no scene can be exported"
            + (f" ({counts})" if counts else " (the story has no scenes)")
            + "; "
            + _empty_hint(plan)
        )
        self.plan = plan


def _empty_hint(plan: ExportPlan) -> str:
    """What to change: the bucket that fits every too-short clip, when that is
    what left them out, else the general advice."""
    from engine.dataset.bucket import frames_fitting

    short = [s.frames for s in plan.skipped if s.reason == "too short" and s.frames]
    fits = sorted({f for f in map(frames_fitting, short) if f})
    if short and fits:
        b = plan.bucket
        counts = ", ".join(str(f) for f in fits)
        return (
            f"the clips are shorter than the bucket's {b.frames} frames; "
            f"--bucket {b.width}x{b.height}x{fits[0]} fits all of them (bucket "
            f"frame counts that fit: {counts}, or fewer by 8)"
        )
    return "generate scenes, lower the score thresholds or use --pairing none"


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
    # The clips as their backend made them, before a colour correction
    # (False: as corrected, as the films play them).
    original_colors: bool = False

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
    # the take's sound (.wav, relative to the story) and where it goes (None:
    # a silent take)
    audio_source: str | None = None
    audio_dest: str | None = None


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
    # the take's frame count, for "too short" (the bucket that would fit it)
    frames: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "scene": self.scene_id,
            "take": self.take,
            "reason": self.reason,
            "detail": self.detail,
        }


def skip_counts(skips: list[Skip]) -> dict[str, int]:
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
        return skip_counts(self.skipped)

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
        return skip_counts(self.skipped)
