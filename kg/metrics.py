"""The metric table: one row per score the observer gives a take.

A row (`Metric`) holds everything about a metric except its formula: the
name (the field of `kg.schema.Scores` and the word a best-of objective
uses), a label and a short label (take cards, the filmstrip, CLI tables),
its range and unit, which way is better, the tolerance within which best of
N counts two takes as tied, what it needs (pixels, optical flow, CLIP,
DINOv2), whether it is scored across a continuous join, whether it is one
of the few shown where room is short, and a one-line definition.

The formulas live in ``scoring``; everything else reads this table: the
schema's `Scores` and `ObjectiveMetric`, best of N (``engine.best_of``), the
observer's encoder needs, Insights, Screening, the take cards and the CLI.
A new metric is one row of `METRICS` plus its formula in ``scoring``.

Readers call the functions below (`metric_table`, `metric`, ...) when they
need the table, so they always see `METRICS` as it is; the schema builds
`Scores` from it once, at import. Pure data: no numpy, no torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Better",
    "Need",
    "NEEDS",
    "Metric",
    "METRICS",
    "metric_table",
    "metric_names",
    "metric",
    "needing",
    "headline_metrics",
    "table_problems",
]

# Which way is better: a larger value, a smaller one, or one closest to 1.
Better = Literal["higher", "lower", "near 1"]
# What computing a metric takes; the values are how a screen names them.
Need = Literal["pixels", "flow", "clip", "dino"]
NEEDS: dict[str, str] = {
    "pixels": "the frames' pixels",
    "flow": "optical flow (OpenCV)",
    "clip": "CLIP",
    "dino": "DINOv2",
}
_BETTER = ("higher", "lower", "near 1")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_SHORT_LABEL = 12


@dataclass(frozen=True)
class Metric:
    """One metric: what it is called, how it reads, how best of N ranks it.

    ``low``/``high``: the range of its values (``high`` None: no upper
    bound); ``unit``: "" for a unitless score; ``tolerance``: best of N
    counts two takes within it as tied, in the metric's units (log units of
    the ratio for ``better="near 1"``); ``at_join``: compares this take with
    the previous one across a continuous join (none on a first scene or
    after a cut); ``headline``: one of the few shown where room is short
    (the Screening filmstrip, ``storygraph show``); ``chart_top``: a chart's
    axis reaches at least this high (for wide or open ranges);
    ``vbench_departure``: where a VBench-style metric is computed otherwise
    than VBench's own code, how (empty when it is not).
    """

    name: str
    label: str
    short: str
    low: float
    high: float | None
    better: Better
    tolerance: float
    needs: tuple[Need, ...]
    definition: str
    unit: str = ""
    at_join: bool = False
    headline: bool = False
    chart_top: float | None = None
    # how the metric departs from VBench's own code ("": a VBench dimension
    # computed as VBench does, or a metric that is not VBench's)
    vbench_departure: str = ""

    @property
    def range_text(self) -> str:
        """The range in words.

        >>> metric("clip_score").range_text, metric("motion").range_text
        ('0 to 2.5', '0 or more')
        """
        if self.high is None:
            return f"{self.low:g} or more"
        return f"{self.low:g} to {self.high:g}"

    @property
    def better_text(self) -> str:
        """Which way is better, as a sentence fragment.

        >>> metric("seam_pixel_mae").better_text
        'lower is better'
        """
        if self.better == "near 1":
            return "closest to 1 is best"
        return f"{self.better} is better"

    @property
    def axis_title(self) -> str:
        """The label with its unit and a bounded range, for a chart's axis.

        >>> metric("seam_pixel_mae").axis_title, metric("motion").axis_title
        ('seam pixel difference (pixel values, 0 to 255)', 'motion (px)')
        """
        parts = [self.unit] if self.unit else []
        if self.high is not None:
            parts.append(self.range_text)
        return f"{self.label} ({', '.join(parts)})" if parts else self.label

    @property
    def needs_text(self) -> str:
        """What it needs, as a screen names it.

        >>> metric("seam_dino_cosine").needs_text
        'DINOv2'
        """
        return ", ".join(NEEDS.get(n, n) for n in self.needs)


METRICS: tuple[Metric, ...] = (
    Metric(
        name="clip_score",
        label="CLIPScore",
        short="CLIP",
        low=0.0,
        high=2.5,
        better="higher",
        tolerance=0.01,
        needs=("clip",),
        definition="How well the frames show the prompt: 2.5 times the cosine of "
        "the prompt and each frame in CLIP space (negatives as 0), "
        "averaged.",
        headline=True,
    ),
    Metric(
        name="subject_consistency",
        label="subject consistency",
        short="subject",
        low=0.0,
        high=1.0,
        better="higher",
        tolerance=0.005,
        needs=("dino",),
        definition="VBench's subject consistency: how alike each frame is to "
        "the one before it and to the first one, in DINOv2 features.",
        headline=True,
        vbench_departure="DINOv2-small (Hugging Face transformers) where VBench "
        "loads DINO ViT-B/16 from torch.hub; every frame, as VBench.",
    ),
    Metric(
        name="background_consistency",
        label="background consistency",
        short="background",
        low=0.0,
        high=1.0,
        better="higher",
        tolerance=0.005,
        needs=("clip",),
        definition="VBench's background consistency: the subject consistency "
        "formula on CLIP image features.",
        vbench_departure="open_clip ViT-B-32 features, the same architecture as "
        "VBench's CLIP ViT-B/32; every frame, as VBench.",
    ),
    Metric(
        name="temporal_flicker",
        label="temporal flicker",
        short="flicker",
        low=0.0,
        high=1.0,
        better="higher",
        tolerance=0.002,
        needs=("pixels",),
        definition="VBench's temporal flicker score: 1 minus the mean absolute "
        "change between consecutive frames over 255; 1 is no flicker at all.",
        vbench_departure="scored on every take; VBench applies it to clips of "
        "static scenes only, so on a moving clip it also counts motion.",
    ),
    Metric(
        name="seam_dino_cosine",
        label="seam DINO cosine",
        short="seam cos",
        low=-1.0,
        high=1.0,
        better="higher",
        tolerance=0.01,
        needs=("dino",),
        definition="DINOv2 cosine of the previous take's last frame and the "
        "first frame the film shows after the join (after the frames that "
        "repeat the previous take): how alike the two sides of the join look.",
        at_join=True,
        headline=True,
    ),
    Metric(
        name="seam_pixel_mae",
        label="seam pixel difference",
        short="seam MAE",
        low=0.0,
        high=255.0,
        unit="pixel values",
        better="lower",
        tolerance=1.0,
        needs=("pixels",),
        definition="Mean absolute difference between the previous take's last "
        "frame and the first frame the film shows after the join, in 8-bit "
        "pixel values.",
        at_join=True,
        chart_top=10.0,
    ),
    Metric(
        name="dynamic_degree",
        label="dynamic degree",
        short="dynamic",
        low=0.0,
        high=1.0,
        better="higher",
        tolerance=0.5,
        needs=("flow",),
        definition="VBench's dynamic degree on optical flow: 1 when the clip "
        "moves, 0 when it barely does.",
        vbench_departure="OpenCV DIS optical flow at a 256-pixel short side "
        "where VBench runs RAFT at full size (its threshold scales with the "
        "size, so it is the same 6 px here); sampling and threshold as VBench.",
    ),
    Metric(
        name="motion",
        label="motion",
        short="motion",
        low=0.0,
        high=None,
        unit="px",
        better="higher",
        tolerance=0.25,
        needs=("flow",),
        definition="Optical flow (OpenCV DIS) between frames sampled at about "
        "8 fps: the mean of the largest 5 % of motions, in pixels of a "
        "256-pixel short side; VBench counts a clip as dynamic above 6.",
        chart_top=8.0,
    ),
    Metric(
        name="seam_flow",
        label="seam flow",
        short="seam flow",
        low=0.0,
        high=None,
        unit="ratio",
        better="near 1",
        tolerance=0.05,
        needs=("flow",),
        definition="Optical flow across the continuous join against the flow "
        "just before and after it: about 1 when the cut flows, well above 1 "
        "when it jumps.",
        at_join=True,
        chart_top=3.0,
    ),
    Metric(
        name="join_color_shift",
        label="join colour shift",
        short="join ΔE00",
        low=0.0,
        high=None,
        unit="ΔE00",
        better="lower",
        tolerance=0.5,
        needs=("pixels",),
        definition="CIEDE2000 colour difference between the previous take's last "
        "frame and this take's first four new frames (after the repeated "
        "ones), per pixel at 64x64 and averaged; about 1 is barely visible.",
        at_join=True,
        chart_top=6.0,
    ),
    Metric(
        name="line_color_drift",
        label="line colour drift",
        short="line ΔE00",
        low=0.0,
        high=None,
        unit="ΔE00",
        better="lower",
        tolerance=0.5,
        needs=("pixels",),
        definition="CIEDE2000 colour difference between the line's anchor (its "
        "environment's reference image, else the line's first scene) and this "
        "take's last frames, per pixel at 64x64 and averaged.",
        chart_top=10.0,
    ),
)


def metric_table() -> tuple[Metric, ...]:
    """Every metric, in the order screens list them."""
    return METRICS


def metric_names() -> tuple[str, ...]:
    """The names of every metric, in table order.

    >>> metric_names()[:2]
    ('clip_score', 'subject_consistency')
    """
    return tuple(m.name for m in METRICS)


def metric(name: str) -> Metric:
    """The row of metric ``name``; ``KeyError`` naming the known ones.

    >>> metric("seam_flow").better
    'near 1'
    """
    for m in METRICS:
        if m.name == name:
            return m
    raise KeyError(f"no metric {name!r}; the metrics are {', '.join(metric_names())}")


def needing(need: Need) -> tuple[Metric, ...]:
    """The metrics that need ``need`` (pixels, flow, clip, dino).

    >>> [m.name for m in needing("clip")]
    ['clip_score', 'background_consistency']
    """
    return tuple(m for m in METRICS if need in m.needs)


def headline_metrics() -> tuple[Metric, ...]:
    """The few metrics shown where room is short.

    >>> [m.short for m in headline_metrics()]
    ['CLIP', 'subject', 'seam cos']
    """
    return tuple(m for m in METRICS if m.headline)


def _row_problems(m: Metric) -> list[str]:
    problems = []
    if not _NAME.fullmatch(m.name):
        problems.append(
            f"{m.name!r}: a name is lower-case letters, digits and '_' "
            "(at most 40), starting with a letter"
        )
    if not m.label.strip() or not m.short.strip():
        problems.append(f"{m.name}: needs a label and a short label")
    if len(m.short) > MAX_SHORT_LABEL:
        problems.append(
            f"{m.name}: short label {m.short!r} is longer than {MAX_SHORT_LABEL}"
        )
    if m.better not in _BETTER:
        problems.append(f"{m.name}: better is one of {_BETTER}, got {m.better!r}")
    if not (math.isfinite(m.tolerance) and m.tolerance >= 0):
        problems.append(f"{m.name}: tolerance must be 0 or more, got {m.tolerance}")
    unknown = [n for n in m.needs if n not in NEEDS]
    if not m.needs or unknown:
        problems.append(f"{m.name}: needs is some of {list(NEEDS)}, got {m.needs}")
    if m.high is not None and not m.high > m.low:
        problems.append(f"{m.name}: high {m.high} must be above low {m.low}")
    if not m.definition.strip() or "\n" in m.definition:
        problems.append(f"{m.name}: needs a one-line definition")
    return problems


def table_problems(table: tuple[Metric, ...]) -> list[str]:
    """What is wrong with ``table`` (empty when nothing is).

    >>> table_problems(METRICS)
    []
    >>> table_problems((*METRICS, metric("motion")))[:2]
    ['motion: named twice', 'label motion: used twice']
    """
    problems = [p for m in table for p in _row_problems(m)]
    for what, values in (
        ("", [m.name for m in table]),
        ("label ", [m.label for m in table]),
        ("short label ", [m.short for m in table]),
    ):
        seen: set[str] = set()
        for value in values:
            if value in seen:
                problems.append(
                    f"{what}{value}: {'named' if not what else 'used'} twice"
                )
            seen.add(value)
    return problems
