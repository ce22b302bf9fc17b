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


@dataclass(frozen=True)
class Preset:
    """Steps and guidance of one quality preset.

    ``guidance``: the video's classifier-free guidance (1 = none). The rest is
    LTX-2's multimodal guidance (Lightricks/LTX-2 ``ltx_core`` guiders,
    ``MultiModalGuiderParams``; diffusers ``LTX2Pipeline.__call__``), each
    term one more transformer pass per step when on: ``stg`` the
    spatio-temporal guidance scale (0 = off) perturbing the self-attention
    of ``stg_blocks``; ``modality`` the modality-isolation scale (1 = off:
    audio-video cross-attention switched off in the extra pass);
    ``audio_guidance`` the audio stream's CFG (None: the video's);
    ``rescale`` the variance-preserving guidance rescale (0 = none).
    """

    steps: int
    guidance: float
    stg: float = 0.0
    stg_blocks: tuple[int, ...] = ()
    modality: float = 1.0
    audio_guidance: float | None = None
    rescale: float = 0.0

    @property
    def passes(self) -> int:
        """Transformer passes per step: 1, 2 with CFG, one more for STG and
        one more for modality guidance (diffusers' ``LTX2Pipeline`` loop)."""
        cfg = self.guidance > 1.0 or (self.audio_guidance or 0.0) > 1.0
        return 1 + int(cfg) + int(self.stg > 0.0) + int(self.modality > 1.0)

    def describe(self) -> str:
        """What the preset runs and costs, for the Settings help and CLI.

        >>> print(Preset(30, 3.0, 1.0, (28,), 3.0, 7.0, 0.7).describe())
        ... # doctest: +NORMALIZE_WHITESPACE
        30 steps, CFG 3 (audio 7), STG 1 on block 28, modality 3, rescale 0.7:
        4 transformer passes a step (2x plain CFG)
        """
        parts = [f"{self.steps} steps"]
        if self.guidance > 1.0:
            audio = (
                f" (audio {self.audio_guidance:g})"
                if self.audio_guidance is not None
                and self.audio_guidance != self.guidance
                else ""
            )
            parts.append(f"CFG {self.guidance:g}{audio}")
        else:
            parts.append("no CFG")
        if self.stg > 0.0:
            blocks = ", ".join(str(b) for b in self.stg_blocks)
            parts.append(f"STG {self.stg:g} on block {blocks}")
        if self.modality > 1.0:
            parts.append(f"modality {self.modality:g}")
        if self.rescale > 0.0:
            parts.append(f"rescale {self.rescale:g}")
        cost = f"{self.passes} transformer pass{'es' if self.passes > 1 else ''} a step"
        if self.passes > 2:
            cost += f" ({self.passes / 2:g}x plain CFG)"
        return ", ".join(parts) + ": " + cost


@dataclass(frozen=True)
class ModelVersion:
    """One release of a model family: how to recognise it, what it needs,
    and the makers' recipe per checkpoint kind (``presets``, like
    `BackendSpec.presets`). ``detected_by`` says which config entries tell it
    apart (read by the backend's loader, never the name); ``unverified``
    lists what could not be checked without the real weights; ``tiny_id``
    builds a random-weight model of this version in code."""

    name: str
    title: str
    hub_ids: tuple[str, ...]
    text_encoder: str
    presets: Mapping[str, Mapping[str, Preset]]
    detected_by: str
    tiny_id: str
    cross_timestep: bool = True
    unverified: tuple[str, ...] = ()


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

_TINY_PRESETS = {
    # Random tiny weights: only the plumbing is exercised, so keep it cheap.
    "fast": Preset(2, 1.0),
    "balanced": Preset(2, 3.0),
    "high": Preset(4, 3.0),
}
# Distilled checkpoints: 8 steps is their training target; guidance 1 = no CFG.
_LTX_VIDEO_PRESETS = {
    "dev": {
        "fast": Preset(20, 3.0),
        "balanced": Preset(40, 3.0),
        "high": Preset(50, 3.5),
    },
    # the makers' 8: 4 or 12 steps make schedules the model never saw
    "distilled": {
        "fast": Preset(8, 1.0),
        "balanced": Preset(8, 1.0),
        "high": Preset(8, 1.0),
    },
    "tiny": _TINY_PRESETS,
}


def _ltx2_presets(
    steps: int, block: int, tiny_block: int | None
) -> dict[str, dict[str, Preset]]:
    """The makers' recipe of an LTX-2 version as presets.

    ``balanced`` is Lightricks/LTX-2 ``ltx_pipelines/utils/constants.py``
    (``MultiModalGuiderParams`` defaults for LTX-2.0, ``LTX_2_3_PARAMS`` for
    2.3 and later; ``docs/multimodal-guidance.md``): video CFG 3, STG 1 on
    one block, rescale 0.7, modality 3, audio CFG 7. ``fast`` turns STG and
    modality guidance off (2 passes a step instead of 4) at two thirds of
    the steps; ``high`` keeps the recipe with a third more steps. Distilled
    checkpoints run the makers' 8 sigmas without guidance (one pass). The
    tiny random builds step the recipe's guidance in 2 steps (plumbing only)
    with STG on their own last block (``tiny_block``; the one-block tiny
    LTX-2.0 runs CFG alone, as before versions were known).
    """
    full = Preset(steps, 3.0, 1.0, (block,), 3.0, 7.0, 0.7)
    plain = Preset(steps * 2 // 3, 3.0, 0.0, (), 1.0, 7.0, 0.7)
    tiny = plain
    if tiny_block is not None:
        tiny = dataclasses.replace(full, stg_blocks=(tiny_block,))
    return {
        "dev": {
            "fast": plain,
            "balanced": full,
            "high": dataclasses.replace(full, steps=steps * 4 // 3),
        },
        "distilled": {name: Preset(8, 1.0) for name in ("fast", "balanced", "high")},
        "tiny": {
            "fast": Preset(2, 1.0),
            "balanced": dataclasses.replace(tiny, steps=2),
            "high": dataclasses.replace(tiny, steps=4),
        },
    }


LTX2_VERSIONS: Mapping[str, ModelVersion] = MappingProxyType(
    {
        "2.0": ModelVersion(
            name="2.0",
            title="LTX-2.0 (19B)",
            hub_ids=("Lightricks/LTX-2",),
            text_encoder="Gemma 3 12B",
            presets=_ltx2_presets(40, 29, None),
            detected_by="no LTX-2.3 or 2.5 marker in its configs",
            tiny_id="tiny-random",
            cross_timestep=False,
        ),
        "2.3": ModelVersion(
            name="2.3",
            title="LTX-2.3 (22B)",
            hub_ids=(
                "diffusers/LTX-2.3-Diffusers",
                "diffusers/LTX-2.3-Distilled-Diffusers",
            ),
            text_encoder="Gemma 3 12B",
            presets=_ltx2_presets(30, 28, 1),
            detected_by="transformer/config.json cross_attn_mod or gated_attn; "
            "connectors/config.json per_modality_projections",
            tiny_id="tiny-random-2.3",
            unverified=(
                "the hub folders' exact config values (read from diffusers' "
                "LTX2VideoTransformer3DModel and LTX2TextConnectors arguments)",
            ),
        ),
        "2.5": ModelVersion(
            name="2.5",
            title="LTX-2.5 (22B)",
            hub_ids=("Lightricks/LTX-2.5-Diffusers",),
            text_encoder="Gemma 4 (gemma4_unified)",
            presets=_ltx2_presets(30, 28, 1),
            detected_by="text_encoder/config.json model_type gemma4*; "
            "transformer/config.json use_prompt_adaln_single false or ff_bias "
            "false; a duration_head/ folder",
            tiny_id="tiny-random-2.5",
            unverified=(
                "the makers publish no 2.5 recipe of their own: 2.3's is used",
                "the DFR detail pipeline (diffusion decoder) and the duration "
                "head are not used: clips decode through the VAE and last the "
                "scene's duration",
                "the hub folder's exact config values",
            ),
        ),
    }
)
_LTX2_PRESETS = LTX2_VERSIONS["2.0"].presets


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
            presets=_LTX_VIDEO_PRESETS,
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
            presets=_LTX2_PRESETS,
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
            presets={"dev": _LTX_VIDEO_PRESETS["dev"]},
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
