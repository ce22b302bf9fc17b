"""LTX-2's multimodal guidance: CFG, spatio-temporal and modality guidance.

Guidance is the makers' multimodal guidance (Lightricks/LTX-2 ``ltx_core``
``MultiModalGuider``; diffusers ``LTX2Pipeline.__call__``, whose delta
formulation in x0 space this follows term for term), each term on when the
scene's recipe (`engine.catalog.Preset` of the model's version) asks:

- classifier-free guidance, ``(g - 1) (cond - uncond)``: video at the
  scene's guidance, audio at its own scale (7 in the makers' recipe), the
  negative prompt batched with the positive (one pass of batch 2);
- spatio-temporal guidance, ``stg (cond - perturbed)``: one more pass with
  the self-attention of the recipe's blocks skipped (the value projection
  passed through, diffusers' ``LTX2PerturbedAttnProcessor``);
- modality guidance, ``(m - 1) (cond - isolated)``: one more pass with the
  audio-to-video and video-to-audio cross-attention off;
- the sum rescaled toward the conditional's spread (``rescale_noise_cfg``).

Where ours differs: LTX-2.0 checkpoints converted before diffusers knew STG
have ``perturbed_attn`` off; the recipe's blocks get the perturbed-attention
processor on first use (`enable_stg`), which computes the same attention
when nothing is perturbed. The carried tails keep their per-token timestep
``t (1 - s)`` in every pass. Distilled checkpoints at 8 steps use LTX-2's
distilled sigma schedule without guidance (one pass).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import rescale_noise_cfg

from engine.backend import BackendError

if TYPE_CHECKING:
    from engine.backends.ltx2.sample import Encoded, Scene

__all__ = ["Conditional", "guided", "enable_stg", "pass_context"]


@dataclass(frozen=True)
class Conditional:
    """The positive prompt alone (the extra guidance passes use it)."""

    embeds: Encoded

    @classmethod
    def of(cls, prompt: Encoded, cfg: bool) -> Conditional:
        if not cfg:
            return cls(prompt)
        return cls(type(prompt)(prompt.video[1:], prompt.audio[1:], prompt.mask[1:]))


def pass_context(isolate: bool, blocks: tuple[int, ...]) -> str:
    """The transformer cache context of a pass (diffusers' names)."""
    if isolate:
        return "uncond_modality"
    return "uncond_stg" if blocks else "cond_uncond"


def guided(
    scene: Scene,
    run: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    prompt: Encoded,
    cond: Conditional,
    batch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x0 of both streams with the scene's guidance terms (module docstring):
    ``cond + (g - 1)(cond - uncond) + stg (cond - perturbed) + (m - 1)(cond -
    isolated)``, rescaled; diffusers ``LTX2Pipeline.__call__``, step 7."""
    x0_v, x0_a = run(prompt, batch)
    if batch == 2:  # the negative prompt first, as encode_prompt batches them
        un_v, text_v = x0_v.chunk(2)
        un_a, text_a = x0_a.chunk(2)
        delta_v = (scene.guidance - 1) * (text_v - un_v)
        delta_a = (scene.audio_guidance - 1) * (text_a - un_a)
    else:
        text_v, text_a = x0_v, x0_a
        delta_v = delta_a = torch.zeros(())
    if scene.stg > 0.0:
        stg_v, stg_a = run(cond.embeds, 1, blocks=scene.stg_blocks)
        delta_v = delta_v + scene.stg * (text_v - stg_v)
        delta_a = delta_a + scene.stg * (text_a - stg_a)
    if scene.modality > 1.0:
        iso_v, iso_a = run(cond.embeds, 1, isolate=True)
        delta_v = delta_v + (scene.modality - 1) * (text_v - iso_v)
        delta_a = delta_a + (scene.modality - 1) * (text_a - iso_a)
    guided = batch == 2 or scene.stg > 0.0 or scene.modality > 1.0
    if not guided:
        return text_v, text_a
    out_v, out_a = text_v + delta_v, text_a + delta_a
    if scene.rescale > 0.0:
        out_v = rescale_noise_cfg(out_v, text_v, guidance_rescale=scene.rescale)
        out_a = rescale_noise_cfg(out_a, text_a, guidance_rescale=scene.rescale)
    return out_v, out_a


def enable_stg(transformer: Any, blocks: tuple[int, ...]) -> None:
    """Give ``blocks`` diffusers' perturbed-attention processor (video and
    audio self-attention) when the checkpoint's config left it off; refuse
    a block the transformer does not have."""
    from diffusers.models.transformers.transformer_ltx2 import (
        LTX2PerturbedAttnProcessor,
    )

    count = len(transformer.transformer_blocks)
    for index in blocks:
        if not 0 <= index < count:
            raise BackendError(
                f"the recipe's spatio-temporal guidance block {index} does not "
                f"exist in this transformer of {count} blocks; choose a preset "
                "without STG or a block below "
                f"{count}"
            )
        block = transformer.transformer_blocks[index]
        if not block.perturbed_attn:
            block.perturbed_attn = True
            block.attn1.set_processor(LTX2PerturbedAttnProcessor())
            block.audio_attn1.set_processor(LTX2PerturbedAttnProcessor())
