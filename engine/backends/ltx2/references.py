"""Reference images on LTX-2: keyframe tokens before the clip, or in-context
reference tokens for an IC-LoRA.

A scene's character and environment reference images (`engine.references`
chooses and reads them) are never its first frame. Each is encoded by the
video VAE to one latent and appended to the clip's tokens as conditioning,
the way the makers condition on images that are not frame 0:

- **Keyframes before the clip** (any stack): the makers'
  ``VideoConditionByKeyframeIndex`` (Lightricks/LTX-2 ``ltx-core``; diffusers
  ``LTX2ConditionPipeline._prepare_keyframe_coords``) at pixel frame ``-1``,
  one pixel frame long (time ``[-1/fps, 0)``), with the conditioning mask at
  the reference strength: its tokens get the timestep ``t (1 - s)`` and are
  held at their values after every step. The LTX-2 maintainers advise
  exactly this for identity references ("keyframe reference conditioning
  with negative index", LTX-2 #204). Several images all sit at ``-1``, as
  the makers place one; spreading them over ``-1, -9, -17`` was not kept,
  because whether it helps cannot be measured without the real weights.
- **In-context references** (a stack with an in-context LoRA, such as
  Lightricks' Ingredients reference LoRA): the makers'
  ``VideoConditionByReferenceLatent`` (diffusers ``LTX2InContextPipeline``):
  each image encoded at the size divided by the LoRA's
  ``reference_downscale_factor`` and placed on the clip's own grid from
  time 0 (spatial positions scaled back up by the factor), fully clean
  (strength 1), as the LoRA was trained.

Either way the tokens ride along in every window of a long take and in
stage 1 of the two-stage route (keyframes in stage 2 too, as the makers
condition both stages on images; in-context references only in stage 1,
as the makers' ``ic_lora`` stage 2 is LoRA-free), and are stripped from the
output (`engine.backends.ltx2.sample`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from engine.backend import BackendError, GenerationRequest
from engine.backends.diffusers.frames import encode_frame
from engine.backends.ltx2.sample import Appended

__all__ = ["KEYFRAME_PIXEL_FRAME", "reference_tokens", "half_size", "stage_two"]

KEYFRAME_PIXEL_FRAME = -1  # where the makers place a reference keyframe


def reference_tokens(
    pipe: Any, request: GenerationRequest, downscale: int | None
) -> Appended | None:
    """The request's reference images as appended tokens: keyframes at
    pixel frame -1 (``downscale`` None), else in-context references at the
    size divided by ``downscale``. None: no references."""
    refs = request.references
    if not refs:
        return None
    if downscale is None:
        latents = tuple(encode_frame(pipe, r.frame, request) for r in refs)
        return Appended(
            latents=latents,
            strengths=tuple(float(r.strength) for r in refs),
            frame=KEYFRAME_PIXEL_FRAME,
        )
    width, height = request.width // downscale, request.height // downscale
    if (
        request.width % downscale
        or request.height % downscale
        or width % 32
        or height % 32
    ):
        raise BackendError(
            f"the in-context LoRA's references are {downscale}x smaller than the "
            f"clip ({request.width}x{request.height} -> {width}x{height}); the "
            "video VAE needs multiples of 32: choose a width and height that "
            f"are multiples of {32 * downscale}"
        )
    small = dataclasses.replace(request, width=width, height=height)
    latents = tuple(encode_frame(pipe, r.frame, small) for r in refs)
    return Appended(
        latents=latents,
        strengths=tuple(1.0 for _ in refs),  # the makers' in-context strength
        frame=None,
        downscale=downscale,
    )


def half_size(appended: Appended | None) -> Appended | None:
    """``appended`` for stage 1 at half size: each latent averaged 2x2, as
    the carried tail is (the makers encode the images again at that size)."""
    if appended is None:
        return None
    pooled = tuple(
        torch.nn.functional.avg_pool3d(x, (1, 2, 2)) if min(x.shape[-2:]) > 1 else x
        for x in appended.latents
    )
    return dataclasses.replace(appended, latents=pooled)


def stage_two(appended: Appended | None) -> Appended | None:
    """What stage 2 keeps: keyframes, not in-context references (the makers'
    ``ic_lora`` stage 2 runs without the IC-LoRA and its references)."""
    if appended is None or appended.in_context:
        return None
    return appended
