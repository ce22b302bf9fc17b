"""The LTX-2 denoising loop over video and audio, with carried tails as conditioning.

It is diffusers' ``LTX2ConditionPipeline.__call__`` (pinned 0.42.1) reduced to
what a scene needs, using that pipeline's components and helpers (prompt
encoding, the text connectors, packing, normalisation, the transformer's own
RoPE coordinates, ``calculate_shift``, ``retrieve_timesteps``,
``rescale_noise_cfg``, velocity/x0 conversion), with one addition: the
pipeline only conditions video on *images* it encodes with the VAE, and never
conditions audio. Here the previous take's tails enter as they were stored,
already in the model's latent space (no decode/encode round trip):

- **Video.** The carried tail's ``k`` latent frames replace the first ``k``
  latent frames of the scene, with conditioning mask ``s`` (the pipeline's
  first-frame condition, ``VideoConditionByLatentIndex`` in LTX-2's own code,
  widened to ``k`` frames). Their tokens get the timestep ``t (1 - s)`` and
  the model's x0 estimate is blended with them, ``x0 (1 - s) + tail s``,
  before every scheduler step.
- **Audio.** The same for the audio stream: the carried audio tail replaces
  the scene's first audio latent frames, as many as last as long as the
  repeated video frames (25 audio latents a second), so the sound runs on
  across the join instead of cutting dead.
- **Frame fallback.** When the video tail does not fit (another model or
  size), the previous take's last frame, encoded once, conditions latent 0
  (the pipeline's image condition).

LTX-2's VAE is causal like LTX-Video's: latent 0 encodes one pixel frame and
every later latent eight. A carried tail's first latent stood for eight frames
but lands in the one-frame slot, so the first ``1 + 8 (k - 1)`` pixel frames of
the clip repeat the predecessor's tail
(`engine.backends.diffusers.frames.repeated_frames`) and the film skips them,
as for ``ltx`` takes.

Guidance: classifier-free guidance for both streams (video at the request's
guidance, audio at the pipeline's default 7 when guidance is on) with the
pipeline's guidance rescale 0.7; LTX-2's spatio-temporal and modality
guidance are left off (each costs another transformer pass per step).
Distilled checkpoints at 8 steps use LTX-2's distilled sigma schedule.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import (
    calculate_shift,
    rescale_noise_cfg,
    retrieve_timesteps,
)
from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES
from diffusers.utils.torch_utils import randn_tensor

from engine.backend import GenerationCancelled
from engine.backends.diffusers.schedule import exact_scheduler
from engine.backends.ltx2.audio import (
    audio_latent_count,
    audio_tail_count,
    latents_per_second,
)

__all__ = [
    "Carried",
    "Encoded",
    "Refine",
    "Sampled",
    "Scene",
    "encode_prompt",
    "sample_scene",
    "upsample_latents",
]

AUDIO_GUIDANCE = 7.0  # the pipeline's default audio_guidance_scale
GUIDANCE_RESCALE = 0.7  # the pipeline's default (video and audio)


@dataclass(frozen=True)
class Carried:
    """What conditions the scene's start.

    ``video``: ``[1, C, k, h, w]`` normalised tail latents; ``image``:
    ``[1, C, 1, h, w]`` an encoded last frame (fallback); ``audio``:
    ``[1, n, D]`` packed normalised audio tail latents; ``audio_frames``: the
    pixel frames the carried audio must last (the repeated video frames).
    """

    video: torch.Tensor | None = None
    image: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    strength: float = 1.0
    audio_frames: int = 0


@dataclass(frozen=True)
class Encoded:
    """A prompt through Gemma and the connectors (negative first with CFG)."""

    video: torch.Tensor
    audio: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class Scene:
    """What to make: latent size, seed, steps, guidance."""

    num_frames: int
    height: int  # pixels
    width: int
    fps: int
    seed: int
    steps: int
    guidance: float
    distilled: bool = False


@dataclass(frozen=True)
class Refine:
    """Stage 2 of the two-stage route: start from ``video`` (stage 1's latents,
    upsampled, normalised ``[1, C, F, h, w]``) noised to ``sigmas[0]`` and
    denoise along ``sigmas``; ``audio`` (stage 1's, packed) is held as made."""

    video: torch.Tensor
    audio: torch.Tensor
    sigmas: tuple[float, ...]


@dataclass
class Sampled:
    video: torch.Tensor  # [1, C, F, h, w] normalised
    audio: torch.Tensor  # [1, L, D] packed normalised
    conditioned_video: int = 0  # latent frames held by the carried tail
    conditioned_audio: int = 0  # audio latent frames held by the carried tail
    seconds: float = 0.0
    sigmas: tuple[float, ...] = ()  # the sigmas stepped (the final 0 left out)


def encode_prompt(
    pipe: Any, text: str, negative: str, guidance: float, max_sequence_length: int
) -> Encoded:
    """Gemma hidden states through LTX-2's text connectors, as the pipeline does."""
    cfg = guidance > 1.0
    device = pipe._execution_device
    embeds, mask, neg, neg_mask = pipe.encode_prompt(
        prompt=[text],
        negative_prompt=negative or None,
        do_classifier_free_guidance=cfg,
        num_videos_per_prompt=1,
        max_sequence_length=max_sequence_length,
        device=device,
    )
    if cfg:
        embeds = torch.cat([neg, embeds], dim=0)
        mask = torch.cat([neg_mask, mask], dim=0)
    video, audio, connector_mask = pipe.connectors(
        embeds, mask, padding_side=pipe.tokenizer_padding_side
    )
    return Encoded(video, audio, connector_mask)


def _schedule(
    pipe: Any, scene: Scene, refine: Refine | None, tokens: int, device: Any
) -> tuple[Any, torch.Tensor]:
    """A private scheduler set for this stage, and its timesteps.

    The makers' lists (distilled stage 1, stage 2) are stepped exactly
    (`engine.backends.diffusers.schedule`); the dev schedule is the
    pipeline's: ``linspace(1, 1/steps)`` shifted by ``mu`` of the token count
    (``LTX2ConditionPipeline.__call__``), on a copy of its scheduler.
    """
    if refine is not None:
        return exact_scheduler(pipe.scheduler, refine.sigmas, device)
    if scene.distilled and scene.steps == len(DISTILLED_SIGMA_VALUES):
        return exact_scheduler(pipe.scheduler, DISTILLED_SIGMA_VALUES, device)
    config = pipe.scheduler.config
    mu = calculate_shift(
        tokens,
        config.get("base_image_seq_len", 1024),
        config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.95),
        config.get("max_shift", 2.05),
    )
    scheduler = copy.deepcopy(pipe.scheduler)
    sigmas = np.linspace(1.0, 1.0 / scene.steps, scene.steps)
    timesteps, _ = retrieve_timesteps(
        scheduler, len(sigmas), device, sigmas=sigmas, mu=mu
    )
    return scheduler, timesteps


def _video_start(
    pipe: Any, scene: Scene, carried: Carried, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Packed clean values and conditioning mask of the video tokens."""
    channels = pipe.transformer.config.in_channels
    t = pipe.vae_temporal_compression_ratio
    s = pipe.vae_spatial_compression_ratio
    frames = (scene.num_frames - 1) // t + 1
    shape = (1, channels, frames, scene.height // s, scene.width // s)
    base = torch.zeros(shape, device=device, dtype=torch.float32)
    mask = torch.zeros((1, 1, *shape[2:]), device=device, dtype=torch.float32)
    held = 0
    if carried.video is not None and carried.strength > 0:
        held = min(carried.video.shape[2], frames - 1) if frames > 1 else 0
        if held:
            tail = carried.video[:, :, carried.video.shape[2] - held :]
            base[:, :, :held] = tail.to(device, torch.float32)
            mask[:, :, :held] = carried.strength
    elif carried.image is not None and carried.strength > 0:
        base[:, :, :1] = carried.image.to(device, torch.float32)
        mask[:, :, :1] = carried.strength
    p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    return pipe._pack_latents(base, p, pt), pipe._pack_latents(mask, p, pt), held


def _audio_start(
    pipe: Any, scene: Scene, carried: Carried, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Packed clean values ``[1, L, D]`` and mask ``[1, L, 1]`` of the audio."""
    per_second = latents_per_second(pipe)
    length = audio_latent_count(scene.num_frames, scene.fps, per_second)
    mel = pipe.audio_mel_bins // pipe.audio_vae_mel_compression_ratio
    width = pipe.audio_latent_channels * mel
    base = torch.zeros((1, length, width), device=device, dtype=torch.float32)
    mask = torch.zeros((1, length, 1), device=device, dtype=torch.float32)
    held = 0
    if carried.audio is not None and carried.strength > 0 and carried.audio_frames:
        want = audio_tail_count(carried.audio_frames, scene.fps, per_second)
        held = min(want, carried.audio.shape[1], length - 1)
        if held > 0:
            tail = carried.audio[:, carried.audio.shape[1] - held :]
            base[:, :held] = tail.to(device, torch.float32)
            mask[:, :held] = carried.strength
    return base, mask, held


def _x0(
    sample: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    return sample - velocity * sigma


@torch.no_grad()
def sample_scene(
    pipe: Any,
    scene: Scene,
    prompt: Encoded,
    carried: Carried,
    on_step: Callable[[int, int], None],
    cancelled: Callable[[], bool],
    refine: Refine | None = None,
) -> Sampled:
    """Denoise one scene's video and audio together (see the module docstring).

    ``on_step(step, steps)`` after each step; cancel is checked before every
    step and raises `GenerationCancelled`. With ``refine``, stage 2 of the
    two-stage route (`Refine`).
    """
    start = time.perf_counter()
    device = pipe._execution_device
    cfg = scene.guidance > 1.0
    clean_v, mask_v, held_v = _video_start(pipe, scene, carried, device)
    clean_a, mask_a, held_a = _audio_start(pipe, scene, carried, device)
    generator = torch.Generator("cpu").manual_seed(scene.seed)
    noise_v = randn_tensor(clean_v.shape, generator=generator, device=device)
    noise_a = randn_tensor(clean_a.shape, generator=generator, device=device)
    if refine is not None:
        p, pt = (
            pipe.transformer_spatial_patch_size,
            pipe.transformer_temporal_patch_size,
        )
        first = float(refine.sigmas[0])
        init = pipe._pack_latents(refine.video.to(device, torch.float32), p, pt)
        noise_v = noise_v * first + init * (1 - first)
        clean_a = refine.audio.to(device, torch.float32)
        mask_a = torch.ones_like(mask_a[:, : clean_a.shape[1]])
        held_a = 0
    video = noise_v * (1 - mask_v) + clean_v * mask_v
    audio = noise_a[:, : clean_a.shape[1]] * (1 - mask_a) + clean_a * mask_a

    t_ratio = pipe.vae_temporal_compression_ratio
    s_ratio = pipe.vae_spatial_compression_ratio
    frames = (scene.num_frames - 1) // t_ratio + 1
    h, w = scene.height // s_ratio, scene.width // s_ratio
    scheduler, timesteps = _schedule(pipe, scene, refine, video.shape[1], device)
    audio_scheduler = copy.deepcopy(scheduler)
    transformer = pipe.transformer
    video_coords = transformer.rope.prepare_video_coords(
        1, frames, h, w, device, fps=scene.fps
    )
    audio_coords = transformer.audio_rope.prepare_audio_coords(
        1, audio.shape[1], device
    )
    batch = 2 if cfg else 1
    video_coords = video_coords.repeat(batch, 1, 1, 1)
    audio_coords = audio_coords.repeat(batch, 1, 1, 1)
    dtype = prompt.video.dtype
    steps = len(timesteps)
    for i, t in enumerate(timesteps):
        if cancelled():
            raise GenerationCancelled(f"cancelled at step {i + 1} of {steps}")
        sigma_v = scheduler.sigmas[i]
        sigma_a = audio_scheduler.sigmas[i]
        video_in = torch.cat([video] * batch).to(dtype)
        audio_in = torch.cat([audio] * batch).to(dtype)
        timestep = t.expand(batch)
        video_t = timestep[:, None] * (1 - mask_v.squeeze(-1))
        audio_t = timestep[:, None] * (1 - mask_a.squeeze(-1))
        with transformer.cache_context("cond_uncond"):
            pred_v, pred_a = transformer(
                hidden_states=video_in,
                audio_hidden_states=audio_in,
                encoder_hidden_states=prompt.video,
                audio_encoder_hidden_states=prompt.audio,
                timestep=video_t,
                audio_timestep=audio_t,
                sigma=timestep,
                audio_sigma=timestep,
                encoder_attention_mask=prompt.mask,
                audio_encoder_attention_mask=prompt.mask,
                num_frames=frames,
                height=h,
                width=w,
                fps=scene.fps,
                audio_num_frames=audio.shape[1],
                video_coords=video_coords,
                audio_coords=audio_coords,
                return_dict=False,
            )
        x0_v = _x0(video, pred_v.float(), sigma_v) if not cfg else None
        x0_a = _x0(audio, pred_a.float(), sigma_a) if not cfg else None
        if cfg:
            un_v, text_v = (_x0(video, p.float(), sigma_v) for p in pred_v.chunk(2))
            un_a, text_a = (_x0(audio, p.float(), sigma_a) for p in pred_a.chunk(2))
            x0_v = rescale_noise_cfg(
                text_v + (scene.guidance - 1) * (text_v - un_v),
                text_v,
                guidance_rescale=GUIDANCE_RESCALE,
            )
            x0_a = rescale_noise_cfg(
                text_a + (AUDIO_GUIDANCE - 1) * (text_a - un_a),
                text_a,
                guidance_rescale=GUIDANCE_RESCALE,
            )
        # hold the carried tails (x0 space, as the pipeline's conditioning)
        x0_v = x0_v * (1 - mask_v) + clean_v * mask_v
        x0_a = x0_a * (1 - mask_a) + clean_a * mask_a
        velocity_v = (video - x0_v) / sigma_v
        velocity_a = (audio - x0_a) / sigma_a
        video = scheduler.step(velocity_v, t, video, return_dict=False)[0].float()
        audio = audio_scheduler.step(velocity_a, t, audio, return_dict=False)[0].float()
        on_step(i + 1, steps)
    p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    out = pipe._unpack_latents(video, frames, h, w, p, pt)
    stepped = tuple(round(float(s), 6) for s in scheduler.sigmas[:-1])
    return Sampled(out, audio, held_v, held_a, time.perf_counter() - start, stepped)


def upsample_latents(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """Stage 1's normalised latents through LTX-2's latent upsampler (2x in
    space), which works on raw latents, as ``LTX2LatentUpsamplePipeline``
    (and ``ltx-core``'s ``upsample_video``). An upsampler kept on the CPU by
    an offloading memory mode visits the latents' device for the call."""
    vae = pipe.vae
    upsampler = pipe.latent_upsampler
    raw = pipe._denormalize_latents(
        latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor
    )
    home = next(upsampler.parameters()).device  # the CPU when offloaded
    upsampler.to(raw.device)
    try:
        with torch.no_grad():
            up = upsampler(raw.to(upsampler.dtype)).float()
    finally:
        upsampler.to(home)
    return pipe._normalize_latents(
        up, vae.latents_mean, vae.latents_std, vae.config.scaling_factor
    )
