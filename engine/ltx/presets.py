"""Quality presets for LTX-Video: denoising steps and guidance per checkpoint kind.

Dev checkpoints run classifier-free guidance (two transformer passes per step)
over a few dozen steps; distilled checkpoints were trained for a handful of
steps without guidance, so they get their own, much smaller, step counts.
A scene may override steps and guidance; the preset fills in the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.backend import BackendError
from engine.models import TINY_MODEL_ID

__all__ = ["Preset", "PRESETS", "CheckpointKind", "checkpoint_kind", "resolve_preset"]

CheckpointKind = Literal["dev", "distilled", "tiny"]


@dataclass(frozen=True)
class Preset:
    steps: int
    guidance: float


PRESETS: dict[CheckpointKind, dict[str, Preset]] = {
    # LTX-Video's reference inference uses 40 steps at guidance 3 for dev models.
    "dev": {
        "fast": Preset(steps=20, guidance=3.0),
        "balanced": Preset(steps=40, guidance=3.0),
        "high": Preset(steps=50, guidance=3.5),
    },
    # Distilled models: 8 steps is their training target; guidance 1 = no CFG.
    "distilled": {
        "fast": Preset(steps=4, guidance=1.0),
        "balanced": Preset(steps=8, guidance=1.0),
        "high": Preset(steps=12, guidance=1.0),
    },
    # Random tiny weights: only the plumbing is exercised, so keep it cheap.
    "tiny": {
        "fast": Preset(steps=2, guidance=1.0),
        "balanced": Preset(steps=2, guidance=3.0),
        "high": Preset(steps=4, guidance=3.0),
    },
}


def checkpoint_kind(model: str) -> CheckpointKind:
    """Guess the kind from the model name (``tiny-random``, ``...-distilled``).

    Examples
    --------
    >>> checkpoint_kind("Lightricks/LTX-Video-0.9.7-distilled")
    'distilled'
    >>> checkpoint_kind("Lightricks/LTX-Video")
    'dev'
    """
    name = model.lower()
    if name == TINY_MODEL_ID:
        return "tiny"
    if "distill" in name:
        return "distilled"
    return "dev"


def resolve_preset(
    preset: str,
    model: str,
    *,
    steps: int | None = None,
    guidance: float | None = None,
) -> Preset:
    """Steps and guidance for ``preset`` on ``model``, with per-scene overrides.

    Examples
    --------
    >>> resolve_preset("balanced", "Lightricks/LTX-Video", steps=25)
    Preset(steps=25, guidance=3.0)
    """
    table = PRESETS[checkpoint_kind(model)]
    if preset not in table:
        raise BackendError(
            f"quality_preset must be one of {sorted(table)}, got {preset!r}"
        )
    base = table[preset]
    if steps is not None and steps < 1:
        raise BackendError(f"steps must be at least 1, got {steps}")
    return Preset(
        steps=base.steps if steps is None else steps,
        guidance=base.guidance if guidance is None else guidance,
    )
