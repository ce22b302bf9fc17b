"""The words of the story data model: statuses, choices, limits, the base model.

What `kg.schema`'s models are made of: the closed vocabularies (scene
statuses, transitions, weathers, camera moves, memory modes, the metric
names of `kg.metrics`), the limits a scene keeps to, and `StrictModel`, the
base of every stored model (unknown fields and NaN are errors).
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
)

from kg.metrics import metric_names, metric_table, table_problems

__all__ = [
    "SCHEMA_VERSION",
    "MAX_SCENE_SECONDS",
    "MAX_SCENE_FRAMES",
    "MAX_WINDOW_PROMPTS",
    "SceneStatus",
    "SCENE_STATUSES",
    "Transition",
    "Weather",
    "WEATHERS",
    "CameraMove",
    "CAMERA_MOVES",
    "ContinuityMode",
    "QualityPreset",
    "MemoryMode",
    "METRIC_NAMES",
    "ObjectiveMetric",
    "MAX_CANDIDATES",
    "MAX_DIALOGUE_LINES",
    "MAX_LINE_CHARS",
    "MAX_SOUND_EFFECTS",
    "MEMORY_MODES",
    "PENDING_STATUSES",
    "GENERATED_STATUSES",
    "StrictModel",
]

# 2: long takes (windows, per-window prompts, overlap frames); 3: each take's
# sampling recipe, the join strength
SCHEMA_VERSION = 3
# A scene may be a long take: generated window by window (`kg.windows`).
MAX_SCENE_SECONDS = 120.0
MAX_SCENE_FRAMES = 2_881  # 120 s at 24 fps; a backend's own limit is in its spec
MAX_WINDOW_PROMPTS = 64

SceneStatus = Literal[
    "draft", "queued", "generating", "done", "failed", "interrupted", "stale"
]
SCENE_STATUSES: tuple[str, ...] = SceneStatus.__args__  # type: ignore[attr-defined]
Transition = Literal["continuous", "cut"]
Weather = Literal["clear", "overcast", "rain", "storm", "fog", "snow"]
WEATHERS: tuple[str, ...] = Weather.__args__  # type: ignore[attr-defined]
CameraMove = Literal[
    "static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out"
]
CAMERA_MOVES: tuple[str, ...] = CameraMove.__args__  # type: ignore[attr-defined]
ContinuityMode = Literal["latent", "frame", "none"]
QualityPreset = Literal["fast", "balanced", "high"]
MemoryMode = Literal[
    "none", "model_offload", "sequential_offload", "vae_tiling", "fp8", "group_offload"
]
# The metrics of the table (`kg.metrics`), read once at import: the fields of
# `Scores`, and what a best-of-N objective can rank takes by (engine.best_of
# says how).
_metric_problems = table_problems(metric_table())
if _metric_problems:
    raise ValueError("kg.metrics.METRICS: " + "; ".join(_metric_problems))
METRIC_NAMES: tuple[str, ...] = metric_names()
ObjectiveMetric = Literal[METRIC_NAMES]  # type: ignore[valid-type]
MAX_CANDIDATES = 16
MAX_DIALOGUE_LINES = 12
MAX_LINE_CHARS = 300
MAX_SOUND_EFFECTS = 8
MEMORY_MODES: tuple[str, ...] = MemoryMode.__args__  # type: ignore[attr-defined]
# What "generate all pending" and `storygraph run` pick by default.
PENDING_STATUSES = ("draft", "failed", "interrupted", "stale")
# Scenes that went through a generation (an edit of one makes it stale).
GENERATED_STATUSES = ("done", "failed", "interrupted")


class StrictModel(BaseModel):
    """Base for every stored model: unknown fields are errors."""

    # NaN and Infinity are refused: JSON cannot hold them (they would be saved
    # as null and the story could never be saved again).
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, allow_inf_nan=False
    )
