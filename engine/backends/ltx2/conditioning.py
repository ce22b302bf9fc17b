"""What an LTX-2 scene carries over a continuous join: video and audio tails.

The predecessor's video tail latents condition the clip when they fit this
model and size (`engine.backends.diffusers.latents.check_latent_fit`); its
audio tail rides along when it has one of this model's width. Otherwise the
last frame conditions the picture (no sound is carried), or nothing does;
the note says why.

The causal VAE's slot 0 holds a one-frame latent; every later slot eight
frames. A tail of ``k`` stored latents is carried the makers' way (the
trainer's prefix condition, Lightricks/LTX-2 ``ltx-trainer``
``validation_runner.py``, applied with ``VideoConditionByLatentIndex`` at
latent 0): its last ``k - 1`` latents go to slots ``1..k-1``, whose spans
match, and slot 0 gets a genuine one-frame latent encoded from the
predecessor's frame just before them (``ContinuityInput.lead_frame``). The
first stored latent (eight frames' worth) never lands in the one-frame slot,
which is where ComfyUI's ``LTXVExtendSampler`` drops it too. Without that
frame the tail is carried as stored and the note says so. The whole context
is held at the join strength (``windows.join_strength``, 1 by default, times
the transition's strength), as the makers hold in-place context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from engine.backend import GenerationRequest
from engine.backends.diffusers.frames import encode_frame, repeated_frames
from engine.backends.diffusers.latents import check_latent_fit, latent_shape
from engine.backends.ltx2.sample import Carried

__all__ = ["Conditioning", "continuity_conditioning"]


@dataclass(frozen=True)
class Conditioning:
    """The carried inputs, which continuity each stream got, and why."""

    carried: Carried
    used: Literal["latent", "frame", "none"]
    audio_used: Literal["latent", "none"]
    note: str = ""


def continuity_conditioning(
    pipe: Any, request: GenerationRequest, model: str
) -> Conditioning:
    """What a scene carries from its predecessor into LTX-2: both tails as
    latents when they fit, else the last frame (no sound), else nothing; with
    why in the note."""
    carried = request.continuity
    if carried is None:
        return Conditioning(Carried(), "none", "none")
    strength = carried.strength * request.windows.join_strength
    notes: list[str] = []
    if carried.mode == "latent":
        expected = latent_shape(
            request.width,
            request.height,
            request.num_frames,
            pipe.transformer.config.in_channels,
        )
        fit = check_latent_fit(
            carried.tail_latents,
            carried.latent_meta,
            model=model,
            expected=expected,
        )
        if fit.ok:
            assert carried.tail_latents is not None, "a fit tail exists"
            k = min(carried.tail_latents.shape[2], expected.frames - 1)
            video, note = _one_frame_slot(
                pipe, request, carried.tail_latents[:, :, -k:], carried.lead_frame
            )
            notes += [note] if note else []
            audio = carried.tail_audio_latents
            audio_used: Literal["latent", "none"] = "latent"
            if audio is None:
                audio_used = "none"
                notes.append("the previous take has no sound; none carried")
            elif audio.ndim != 3 or audio.shape[2] != _audio_width(pipe):
                audio, audio_used = None, "none"
                notes.append("the previous take's audio tail does not fit this model")
            return Conditioning(
                Carried(
                    video=video,
                    audio=audio,
                    strength=strength,
                    audio_frames=repeated_frames(k),
                ),
                "latent",
                audio_used,
                "; ".join(notes),
            )
        notes.append(f"{fit.reason}; continued from the last frame")
    if carried.last_frame is not None:
        image = encode_frame(pipe, carried.last_frame, request)
        notes.append("no sound carried (only latents carry it)")
        return Conditioning(
            Carried(image=image, strength=carried.strength),
            "frame",
            "none",
            "; ".join(notes),
        )
    notes.append("no last frame to continue from; generated without continuity")
    return Conditioning(Carried(), "none", "none", "; ".join(notes))


def _one_frame_slot(
    pipe: Any, request: GenerationRequest, tail: torch.Tensor, lead: Any
) -> tuple[torch.Tensor, str]:
    """``[1, C, k, h, w]``: the lead frame's one-frame latent, then the tail's
    last ``k - 1`` latents; the tail as stored (and why) without the frame."""
    if tail.shape[2] < 2:
        return tail, ""
    if lead is None:
        return tail, (
            "the previous clip's frame before its tail could not be read; its "
            "first tail latent stands in the one-frame slot"
        )
    first = encode_frame(pipe, lead, request).to(tail.device, tail.dtype)
    return torch.cat([first, tail[:, :, 1:]], dim=2), ""


def _audio_width(pipe: Any) -> int:
    mel = pipe.audio_mel_bins // pipe.audio_vae_mel_compression_ratio
    return pipe.audio_latent_channels * mel
