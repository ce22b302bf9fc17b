"""The backend catalog: every backend's facts, declared once, without torch.

Each backend is one folder under `engine/backends/` plus one `BackendSpec`
here. Everything that needs a backend's facts reads them from its spec, never
from a copied list: the registry (which module registers the backend), Ray (a
GPU per worker), Settings and generation (size multiple, frame rule, window
rules, memory modes), the prompt preview (token budget, sound), cost
estimates (hosted), dataset planning (what kind of frames a take holds) and
the model cache (which family's models a backend holds).

Adding a backend is one folder, one entry in `CATALOG` and, when it has
weights, its entries in `engine.models`. Importing this module imports no
backend and no torch, so front ends may read it at first paint.

Presets follow each model maker's reference inference: LTX-Video's runs 40
steps at guidance 3 on dev checkpoints (Lightricks/LTX-Video
``configs/*.yaml``), LTX-2's dev model card 40 steps at guidance 4;
distilled checkpoints were trained for 8 steps without guidance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from engine.errors import BackendError
from engine.models import is_tiny
from engine.presets import LTX2_VERSIONS, LTX_VIDEO_PRESETS, ModelVersion, Preset

if TYPE_CHECKING:
    from kg.schema import Settings

__all__ = [
    "Preset",
    "ModelVersion",
    "LTX2_VERSIONS",
    "BackendSpec",
    "CATALOG",
    "MEMORY_MODE_NEEDS",
    "spec",
    "backend_names",
    "checkpoint_kind",
    "resolve_preset",
    "settings_problems",
    "check_settings",
    "plan_frames",
]

CheckpointKind = Literal["dev", "distilled", "tiny"]

# What each memory mode needs (the diffusers runtime applies them; Settings
# shows this table for the backends that support the mode).
MEMORY_MODE_NEEDS: Mapping[str, str] = MappingProxyType(
    {
        "none": "all weights on the GPU: LTX-Video 2B ~24 GB, LTX-2 19B ~60 GB in bf16",
        "model_offload": "CUDA; components move to the GPU in turn (the largest "
        "one must fit: LTX-2's transformer ~38 GB bf16, ~19 GB fp8 or GGUF Q8)",
        "sequential_offload": "CUDA; layer by layer: least GPU memory, several "
        "times slower",
        "vae_tiling": "all weights on the GPU; decodes in tiles (lower decode peak)",
        "fp8": "any device; the transformer stored as float8, computed in bf16 "
        "(fp32 on CPU): about half its memory, small quality cost",
        "group_offload": "CUDA and enough CPU RAM for the weights; transformer "
        "and text encoder streamed block by block, overlapped with compute",
    }
)


@dataclass(frozen=True)
class BackendSpec:
    """What one backend is and needs; read by every layer that asks.

    ``temporal_ratio``: pixel frames per latent frame after the first (the
    causal VAE's ``8k + 1`` rule), None when any frame count works;
    ``max_frames``: frames made in one piece (None: no limit);
    ``windows``: whether a longer scene is made window by window (the
    story's window settings, whose overlap is also the tail carried across a
    join, must fit ``temporal_ratio`` whenever the backend has one);
    ``presets``: checkpoint kind -> quality preset -> steps and guidance
    (empty: the backend has no denoising steps; takes record one step and
    no guidance, so the cache key holds nothing it does not use);
    ``model_family``: the model cache family of the weights it holds ("":
    none); ``frames``: what its takes hold, for dataset planning.
    """

    name: str
    module: str
    summary: str
    needs_gpu: bool = False
    makes_audio: bool = False
    hosted: bool = False
    model_family: str = ""
    prompt_token_budget: int | None = None
    size_multiple: int = 1
    temporal_ratio: int | None = None
    max_frames: int | None = None
    windows: bool = False
    memory_modes: tuple[str, ...] = ("none",)
    presets: Mapping[str, Mapping[str, Preset]] = field(default_factory=dict)
    frames: Literal["storyboard", "model"] = "model"
    # frame rates the model was trained around (empty: any); above the
    # highest of them up to 30 only these are accepted (RoPE time is frame /
    # fps, so 48 or 120 squeeze it outside what the model saw)
    trained_fps: tuple[int, ...] = ()
    # a continued clip's first latent slot (the causal VAE's one-frame slot)
    # is encoded from the predecessor's frame before its tail: the engine
    # reads that frame from the predecessor's clip for it
    one_frame_slot: bool = False
    # a preview backend's takes have the frame counts of the render it
    # previews: `plan_frames` follows this backend's frame rule (None: its own)
    frame_rule_of: str | None = None
    # releases of its model family, each with the makers' recipe (empty: one)
    versions: Mapping[str, ModelVersion] = field(default_factory=dict)

    @property
    def holds_models(self) -> bool:
        return bool(self.model_family)


_ALL_MODES = tuple(MEMORY_MODE_NEEDS)

CATALOG: Mapping[str, BackendSpec] = MappingProxyType(
    {
        "animatic": BackendSpec(
            name="animatic",
            module="engine.backends.animatic.backend",
            summary="CPU storyboard clips from the scene's attributes; no weights",
            frames="storyboard",
            # previews LTX renders: 8k+1 frames, so previews, datasets and the
            # trainers' buckets agree (49 frames for 2 s at 24 fps)
            frame_rule_of="ltx",
        ),
        "ltx": BackendSpec(
            name="ltx",
            module="engine.backends.ltx.backend",
            summary="LTX-Video on diffusers; tail latents carried, long takes",
            needs_gpu=True,
            model_family="ltx",
            prompt_token_budget=256,  # LTXConditionPipeline's T5 max_sequence_length
            size_multiple=32,
            temporal_ratio=8,
            windows=True,
            memory_modes=_ALL_MODES,
            presets=LTX_VIDEO_PRESETS,
        ),
        "ltx2": BackendSpec(
            name="ltx2",
            module="engine.backends.ltx2.backend",
            summary="LTX-2 (2.0, 2.3, 2.5) on diffusers: video with synchronized "
            "sound, long takes",
            needs_gpu=True,
            makes_audio=True,
            model_family="ltx2",
            prompt_token_budget=1024,  # LTX-2's Gemma max_sequence_length
            size_multiple=32,
            temporal_ratio=8,
            max_frames=481,  # 20 s at 24 fps, LTX-2's longest clip (a window)
            windows=True,
            memory_modes=_ALL_MODES,
            presets=LTX2_VERSIONS["2.0"].presets,
            versions=LTX2_VERSIONS,
            # diffusers pipelines/ltx2/utils.py: "trained around 24/25/30 and
            # 60 fps, not 48 or 120"
            trained_fps=(24, 25, 30, 60),
            one_frame_slot=True,
        ),
        "replicate": BackendSpec(
            name="replicate",
            module="engine.backends.hosted.replicate",
            summary="LTX-Video at Replicate's hosted API; charged per take",
            hosted=True,
            presets={"dev": LTX_VIDEO_PRESETS["dev"]},
        ),
        "fal": BackendSpec(
            name="fal",
            module="engine.backends.hosted.fal",
            summary="LTX-2 at fal's hosted API; charged per take",
            hosted=True,
        ),
    }
)


def backend_names() -> list[str]:
    """The catalog's backends, sorted."""
    return sorted(CATALOG)


def spec(name: str) -> BackendSpec:
    """The spec of backend ``name``; a named error for an unknown one."""
    try:
        return CATALOG[name]
    except KeyError:
        raise BackendError(
            f"unknown backend {name!r}; choose one of {backend_names()}"
        ) from None


def checkpoint_kind(model: str) -> CheckpointKind:
    """Guess the kind from the model name (``tiny-random``, ``...-distilled``).

    >>> checkpoint_kind("Lightricks/LTX-Video-0.9.7-distilled")
    'distilled'
    >>> checkpoint_kind("Lightricks/LTX-2")
    'dev'
    """
    name = model.lower()
    if is_tiny(name) and "distill" not in name:
        return "tiny"
    return "distilled" if "distill" in name else "dev"


def resolve_preset(
    backend: str,
    preset: str,
    model: str,
    *,
    steps: int | None = None,
    guidance: float | None = None,
    kind: str | None = None,
    version: str | None = None,
) -> Preset:
    """Steps and guidance of ``preset`` for ``model`` on ``backend``, with
    per-scene overrides; ``kind`` (dev, distilled, tiny) when the backend
    read it from the checkpoint, else the name's; ``version`` (a key of the
    backend's `BackendSpec.versions`) when the backend read it, for that
    release's recipe. A backend without presets takes one step, no guidance.

    >>> p = resolve_preset("ltx", "balanced", "Lightricks/LTX-Video", steps=25)
    >>> p.steps, p.guidance
    (25, 3.0)
    >>> resolve_preset("animatic", "high", "").steps
    1
    >>> print(resolve_preset("ltx2", "balanced", "x", kind="dev", version="2.3")
    ...       .describe())  # doctest: +ELLIPSIS
    30 steps, CFG 3 (audio 7), STG 1 on block 28, modality 3, rescale 0.7: ...
    """
    chosen = spec(backend)
    tables = chosen.presets
    if version is not None and version in chosen.versions:
        tables = chosen.versions[version].presets
    if not tables:
        base = Preset(1, 0.0)
    else:
        table = tables.get(kind or checkpoint_kind(model)) or tables["dev"]
        if preset not in table:
            raise BackendError(
                f"quality_preset must be one of {sorted(table)}, got {preset!r}"
            )
        base = table[preset]
    if steps is not None and steps < 1:
        raise BackendError(f"steps must be at least 1, got {steps}")
    return dataclasses.replace(
        base,
        steps=base.steps if steps is None else steps,
        guidance=base.guidance if guidance is None else guidance,
    )


def plan_frames(backend: str, frames: int) -> int:
    """The frame count ``backend`` makes for a wanted one: the nearest
    ``ratio * k + 1`` (at least one latent frame after the first), capped at
    the backend's one-piece limit.

    A backend with ``frame_rule_of`` (the animatic, a preview) follows that
    backend's rule.

    >>> plan_frames("ltx", 48), plan_frames("ltx2", 2000), plan_frames("animatic", 48)
    (49, 2001, 49)
    >>> plan_frames("replicate", 48)
    48
    """
    chosen = spec(backend)
    if chosen.frame_rule_of is not None:
        chosen = spec(chosen.frame_rule_of)
    ratio = chosen.temporal_ratio
    if ratio is None:
        return frames
    k = max(1, round((frames - 1) / ratio))
    planned = k * ratio + 1
    if chosen.max_frames is not None and not chosen.windows:
        planned = min(planned, chosen.max_frames)
    return planned


def _nearest(value: int, base: int) -> int:
    return max(base, round(value / base) * base)


def settings_problems(
    settings: Settings, backend: str | None = None
) -> list[tuple[str, str]]:
    """What a story's ``settings`` break of a backend's rules (its own backend
    by default): ``(field, message)`` pairs, each naming the value and the
    nearest valid one. Settings validation and generation both ask this
    (`check_settings`), so they refuse the same stories with the same words.

    >>> from kg.schema import Settings
    >>> bad = Settings(backend="ltx2", width=500, height=500)
    >>> settings_problems(bad)[0]  # doctest: +NORMALIZE_WHITESPACE
    ('width', 'settings.width and settings.height must be multiples of 32 for
    the ltx2 backend, got 500 x 500; nearest valid: 512 x 512')
    >>> settings_problems(bad, "animatic")
    []
    """
    from kg.windows import window_problems

    name = backend or settings.backend
    chosen = spec(name)
    problems: list[tuple[str, str]] = []
    m, width, height = chosen.size_multiple, settings.width, settings.height
    if width % m or height % m:
        text = (
            f"settings.width and settings.height must be multiples of {m} for "
            f"the {name} backend, got {width} x {height}; nearest valid: "
            f"{_nearest(width, m)} x {_nearest(height, m)}"
        )
        for field_name, value in (("width", width), ("height", height)):
            if value % m:
                problems.append((field_name, text))
    # memory modes place a backend's own weights: only those that load some
    if chosen.holds_models and settings.memory_mode not in chosen.memory_modes:
        problems.append(
            (
                "memory_mode",
                f"settings.memory_mode must be one of "
                f"{', '.join(chosen.memory_modes)} for the {name} backend, got "
                f"{settings.memory_mode!r}",
            )
        )
    fps = settings.fps
    if chosen.trained_fps and fps > 30 and fps not in chosen.trained_fps:
        rates = ", ".join(str(r) for r in chosen.trained_fps)
        problems.append(
            (
                "fps",
                f"settings.fps is {fps}; the {name} backend's model was trained "
                f"around {rates} fps, and a rate above 30 outside those puts its "
                "sense of time outside what it saw: choose one of them",
            )
        )
    if chosen.temporal_ratio is not None:  # windows and the carried overlap
        windows = settings.windows
        for text in window_problems(
            windows.frames,
            windows.overlap_frames,
            prefix="settings.windows.",
            temporal=chosen.temporal_ratio,
        ):
            field_name = text.split(" ", 1)[0].removeprefix("settings.")
            problems.append((field_name, text))
    return problems


def check_settings(settings: Settings, backend: str | None = None) -> None:
    """Raise `BackendError` with every `settings_problems` message."""
    problems = settings_problems(settings, backend)
    if problems:
        messages = dict.fromkeys(text for _, text in problems)  # once each
        raise BackendError("; ".join(messages))
