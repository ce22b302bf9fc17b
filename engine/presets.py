"""Quality presets: steps and guidance per backend, checkpoint kind and model
release, each the model makers' reference inference where they publish one.

Torch-free, read by `engine.catalog` (each `BackendSpec` names its table) and
through it by every front end. LTX-Video's reference runs 40 steps at
guidance 3 on dev checkpoints (Lightricks/LTX-Video ``configs/*.yaml``);
LTX-2's releases are `LTX2_VERSIONS`; distilled checkpoints were trained for
8 steps without guidance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["Preset", "ModelVersion", "LTX2_VERSIONS", "LTX_VIDEO_PRESETS"]


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
_TINY_PRESETS = {
    # Random tiny weights: only the plumbing is exercised, so keep it cheap.
    "fast": Preset(2, 1.0),
    "balanced": Preset(2, 3.0),
    "high": Preset(4, 3.0),
}
# Distilled checkpoints: 8 steps is their training target; guidance 1 = no CFG.
LTX_VIDEO_PRESETS = {
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
