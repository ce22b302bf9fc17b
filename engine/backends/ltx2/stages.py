"""LTX-2's two stages the makers' way, and what each stage records.

Follows Lightricks/LTX-2 ``ltx-pipelines`` ``ti2vid_two_stages.py``
(``TI2VidTwoStagesPipeline.__call__``) and diffusers' LTX-2 docs:

1. stage 1 at half the size, with the request's steps and guidance (the dev
   recipe, or the distilled schedule on a distilled checkpoint); a carried
   video tail enters averaged 2x2;
2. the latent upsampler, on raw (denormalised) latents
   (`engine.backends.ltx2.sample.upsample_latents`, as ``ltx-core``'s
   ``upsample_video``);
3. stage 2 at full size from the upsampled latents noised to 0.909375, the
   three ``STAGE_2_DISTILLED_SIGMA_VALUES`` stepped exactly as listed, with
   no guidance (the makers' ``SimpleDenoiser``). A distilled checkpoint
   refines with itself; a dev checkpoint with the distilled LoRA
   (``ltx-2-19b-distilled-lora-384``) applied through diffusers' adapter API
   at weight 1 for this stage only. The sound of stage 1 is kept, as the
   makers' current pipeline decodes stage 1's audio.

Where we differ: a dev checkpoint without the distilled LoRA stays in one
stage at full size (the makers require the LoRA; refining with the dev
weights and CFG for three coarse steps is not their stage 2), and the take's
note says why. Random tiny weights take the distilled route.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers.pipelines.ltx2.utils import STAGE_2_DISTILLED_SIGMA_VALUES

from engine.backends.ltx2.references import half_size, stage_two
from engine.backends.ltx2.sample import (
    Carried,
    Encoded,
    Refine,
    Sampled,
    Scene,
    sample_scene,
    upsample_latents,
)
from kg.take import StageRecipe

__all__ = [
    "ADAPTER",
    "StagePlan",
    "plan_stages",
    "set_distilled_lora",
    "two_stages",
    "stage_recipe",
]

ADAPTER = "distilled"  # the adapter name of the distilled LoRA


@dataclass(frozen=True)
class StagePlan:
    """Whether a scene takes two stages, with which LoRA for stage 2, and why
    not when it could have."""

    two_stage: bool
    lora: Path | None = None
    note: str = ""


def plan_stages(pipe: Any, scene: Scene, kind: str, lora: Path | None) -> StagePlan:
    """Two stages when the model has a latent upsampler, the size halves to
    multiples of 32, and stage 2 can be the makers' (see the module doc)."""
    if getattr(pipe, "latent_upsampler", None) is None:
        return StagePlan(False)
    if scene.width % 64 or scene.height % 64:
        return StagePlan(False)
    if kind != "dev":
        return StagePlan(True)
    if lora is None:
        return StagePlan(
            False,
            note="one stage at full size: a dev model's second stage refines "
            "with the distilled LoRA, which is not here (`storygraph "
            "fetch-models ltx-2-distilled-lora`)",
        )
    return StagePlan(True, lora)


def set_distilled_lora(
    pipe: Any, lora: Path | None, weight: float = 1.0, in_context: bool = True
) -> None:
    """Turn the distilled LoRA on at ``weight`` (loading it once per pipeline,
    read with safetensors, through diffusers' ``load_lora_weights``), or off
    when ``lora`` is None; the take's own stack (``pipe.take_adapters``,
    `engine.backends.ltx2.loras`) stays on beside it, as the makers add the
    distilled LoRA to the user's LoRAs for stage 2 (without in-context
    LoRAs when ``in_context`` is False). A fused stack is left alone."""
    from engine.backends.ltx2.loras import activate

    if lora is None and getattr(pipe, "take_fused", False):
        return  # merged into the weights for this take
    stack = [
        (a.name, a.weight)
        for a in getattr(pipe, "take_adapters", ())
        if in_context or not a.lora.in_context
    ]
    if lora is None:
        activate(pipe, stack)
        return
    if ADAPTER not in _adapters(pipe):
        from safetensors.torch import load_file

        pipe.load_lora_weights(load_file(str(lora)), adapter_name=ADAPTER)
    activate(pipe, [*stack, (ADAPTER, weight)])


def _adapters(pipe: Any) -> set[str]:
    transformer = pipe.transformer
    if not getattr(transformer, "_hf_peft_config_loaded", False):
        return set()
    return set(transformer.peft_config)


def two_stages(
    pipe: Any,
    scene: Scene,
    prompt: Encoded,
    carried: Carried,
    plan: StagePlan,
    on_steps: tuple[Callable[[int, int], None], Callable[[int, int], None]],
    cancelled: Callable[[], bool],
    *,
    preview: Any = None,
) -> tuple[Sampled, str, list[StageRecipe]]:
    """Stage 1, the upsampler, stage 2 (see the module doc); the sampled
    result at full size, the take's note, and each stage's recipe.
    ``preview``: hears latent previews (`sample_scene`)."""
    half = dataclasses.replace(scene, width=scene.width // 2, height=scene.height // 2)
    small = dataclasses.replace(carried, references=half_size(carried.references))
    if carried.video is not None:  # the tail at half size (2x2 average)
        pooled = torch.nn.functional.avg_pool3d(carried.video, (1, 2, 2))
        small = dataclasses.replace(small, video=pooled)
    elif carried.image is not None:
        pooled = torch.nn.functional.avg_pool3d(carried.image, (1, 2, 2))
        small = dataclasses.replace(small, image=pooled)
    set_distilled_lora(pipe, None)
    first = sample_scene(
        pipe, half, prompt, small, on_steps[0], cancelled, preview=preview
    )
    up = upsample_latents(pipe, first.video)
    refine = Refine(up, first.audio, tuple(STAGE_2_DISTILLED_SIGMA_VALUES))
    refined = dataclasses.replace(
        scene, guidance=1.0, distilled=False, stg=0.0, stg_blocks=(), modality=1.0
    )
    set_distilled_lora(pipe, plan.lora, in_context=False)
    try:
        second = sample_scene(
            pipe,
            refined,
            _conditional(prompt, scene),
            dataclasses.replace(carried, references=stage_two(carried.references)),
            on_steps[1],
            cancelled,
            refine,
            preview=preview,
        )
    finally:
        set_distilled_lora(pipe, None)
    second.audio = first.audio
    second.conditioned_audio = first.conditioned_audio
    second.seconds += first.seconds
    note = (
        f"two-stage: {half.width}x{half.height}, latent upsampler, "
        f"{len(refine.sigmas)} refining steps at {scene.width}x{scene.height}"
    )
    if plan.lora is not None:
        note += f" with the distilled LoRA ({plan.lora.name}), no guidance"
    loras = [ADAPTER] if plan.lora is not None else []
    recipes = [
        stage_recipe("stage 1", half, first),
        stage_recipe("stage 2", refined, second, loras),
    ]
    return second, note, recipes


def _conditional(prompt: Encoded, scene: Scene) -> Encoded:
    """The prompt's conditional half when stage 1 encoded it for CFG."""
    if scene.guidance <= 1.0:
        return prompt
    return Encoded(prompt.video[1:], prompt.audio[1:], prompt.mask[1:])


def stage_recipe(
    name: str, scene: Scene, sampled: Sampled, loras: list[str] | None = None
) -> StageRecipe:
    """What a stage stepped: its size, sigmas and every guidance term it ran
    (`engine.backends.ltx2.guidance.guided`)."""
    guided = scene.cfg or scene.stg > 0.0 or scene.modality > 1.0
    return StageRecipe(
        name=name,
        width=scene.width,
        height=scene.height,
        sigmas=list(sampled.sigmas),
        guidance=scene.guidance if scene.cfg else 1.0,
        guidance_rescale=scene.rescale if guided else 0.0,
        audio_guidance=scene.audio_guidance if scene.cfg else 1.0,
        stg_scale=scene.stg,
        stg_blocks=list(scene.stg_blocks) if scene.stg > 0.0 else [],
        modality_scale=scene.modality,
        transformer_passes=scene.passes,
        loras=loras or [],
    )
