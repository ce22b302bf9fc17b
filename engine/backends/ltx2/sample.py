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
- **Reference images.** Tokens appended after the clip's (`Appended`,
  built by `engine.backends.ltx2.references`): a keyframe before the clip
  (the makers' ``VideoConditionByKeyframeIndex``, diffusers'
  ``_prepare_keyframe_coords``) or an in-context reference on the clip's
  grid (``VideoConditionByReferenceLatent``), with their own positions and
  mask, held like the tails and stripped from the output. The schedule's
  shift counts the clip's tokens only.
- **A supplied sound.** A dialogue track in the audio space
  (`engine.backends.ltx2.supplied_audio`) takes the whole audio stream with
  mask 1: every audio token keeps timestep 0 and its value at every step,
  and the audio noise level the video's cross-attention reads is 0 (the
  makers' frozen modality in ``A2VidPipelineTwoStage``).

LTX-2's VAE is causal like LTX-Video's: latent 0 encodes one pixel frame and
every later latent eight. A carried tail's first latent stood for eight frames
but lands in the one-frame slot, so the first ``1 + 8 (k - 1)`` pixel frames of
the clip repeat the predecessor's tail
(`engine.backends.diffusers.frames.repeated_frames`) and the film skips them,
as for ``ltx`` takes.

Guidance: the makers' multimodal guidance, `engine.backends.ltx2.guidance`.
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
from engine.backends.ltx2.guidance import (
    Conditional,
    enable_stg,
    guided,
    pass_context,
)
from engine.preview import offer_latent_preview

__all__ = [
    "Appended",
    "Carried",
    "Encoded",
    "Refine",
    "Sampled",
    "Scene",
    "encode_prompt",
    "enable_stg",
    "sample_scene",
    "upsample_latents",
]

AUDIO_GUIDANCE = 7.0  # the pipeline's default audio_guidance_scale
GUIDANCE_RESCALE = 0.7  # the pipeline's default (video and audio)


@dataclass(frozen=True)
class Appended:
    """Conditioning tokens appended after the clip's (reference images,
    `engine.backends.ltx2.references`), stripped from the output.

    ``latents``: each ``[1, C, 1, h, w]`` normalised, held with mask
    ``strengths``; ``frame``: the pixel frame a keyframe sits at (the
    makers' ``VideoConditionByKeyframeIndex``: ``[frame, frame + 1) / fps``),
    or None for in-context references on the clip's own grid from time 0
    with spatial positions times ``downscale`` (``VideoConditionByReferenceLatent``).
    """

    latents: tuple[torch.Tensor, ...]
    strengths: tuple[float, ...]
    frame: int | None = -1
    downscale: int = 1

    @property
    def in_context(self) -> bool:
        return self.frame is None


@dataclass(frozen=True)
class Carried:
    """What conditions the scene's start, and what holds throughout.

    ``video``: ``[1, C, k, h, w]`` normalised tail latents; ``image``:
    ``[1, C, 1, h, w]`` an encoded last frame (fallback); ``audio``:
    ``[1, n, D]`` packed normalised audio tail latents; ``audio_frames``: the
    pixel frames the carried audio must last (the repeated video frames);
    ``audio_held``: or exactly how many audio latents to hold.
    ``references``: tokens appended in every window (`Appended`);
    ``audio_track``: ``[1, L, D]`` a supplied sound in the packed normalised
    audio space, held whole (mask 1 at every step, the makers' frozen audio
    stream) from latent ``audio_offset`` on, in place of any carried audio.
    """

    video: torch.Tensor | None = None
    image: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    strength: float = 1.0
    audio_frames: int = 0
    audio_held: int = 0  # hold exactly this many audio latents (a long take)
    references: Appended | None = None
    audio_track: torch.Tensor | None = None
    audio_offset: int = 0


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
    guidance: float  # video CFG (1 = none)
    distilled: bool = False
    audio_guidance: float = AUDIO_GUIDANCE  # audio CFG, when CFG is on
    rescale: float = GUIDANCE_RESCALE  # guidance rescale, when guidance is on
    stg: float = 0.0  # spatio-temporal guidance scale (0 = off)
    stg_blocks: tuple[int, ...] = ()
    modality: float = 1.0  # modality-isolation guidance scale (1 = off)
    cross_timestep: bool = False  # LTX-2.3+: cross-attention reads the other
    # stream's sigma (diffusers' ``use_cross_timestep``)

    @property
    def cfg(self) -> bool:
        return self.guidance > 1.0

    @property
    def passes(self) -> int:
        """Transformer passes a step (CFG's batch of two counts as two)."""
        return 1 + int(self.cfg) + int(self.stg > 0.0) + int(self.modality > 1.0)


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
    if carried.audio_track is not None:  # the supplied sound, held whole
        track = carried.audio_track[
            :, carried.audio_offset : carried.audio_offset + length
        ]
        if track.shape[1] < length:  # past its end: its last latent again
            extra = track[:, -1:].expand(-1, length - track.shape[1], -1)
            track = torch.cat([track, extra], dim=1)
        base[:] = track.to(device, torch.float32)
        mask[:] = 1.0
        return base, mask, 0
    if (
        carried.audio is not None
        and carried.strength > 0
        and (carried.audio_frames or carried.audio_held)
    ):
        want = carried.audio_held or audio_tail_count(
            carried.audio_frames, scene.fps, per_second
        )
        held = min(want, carried.audio.shape[1], length - 1)
        if held > 0:
            tail = carried.audio[:, carried.audio.shape[1] - held :]
            base[:, :held] = tail.to(device, torch.float32)
            mask[:, :held] = carried.strength
    return base, mask, held


def _appended_tokens(
    pipe: Any, appended: Appended, fps: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Packed values ``[1, n, C]``, mask ``[1, n, 1]`` and positions
    ``[1, 3, n, 2]`` of the appended tokens (see `Appended`)."""
    p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    values, masks, coords = [], [], []
    for latent, strength in zip(appended.latents, appended.strengths, strict=True):
        _, _, f, h, w = latent.shape
        packed = pipe._pack_latents(latent.to(device, torch.float32), p, pt)
        if appended.frame is None:  # in-context: the clip's grid from time 0
            at = pipe.transformer.rope.prepare_video_coords(1, f, h, w, device, fps=fps)
            at = at.float()
            at[:, 1:3] = at[:, 1:3] * appended.downscale
        else:  # a keyframe one pixel frame long at ``frame``
            at = pipe._prepare_keyframe_coords(f, h, w, appended.frame, 1, fps, device)
        values.append(packed)
        masks.append(
            torch.full((1, packed.shape[1], 1), float(strength), device=device)
        )
        coords.append(at.float())
    return torch.cat(values, 1), torch.cat(masks, 1), torch.cat(coords, 2)


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
    *,
    preview: Any = None,
) -> Sampled:
    """Denoise one scene's video and audio together (see the module docstring).

    ``on_step(step, steps)`` after each step; cancel is checked before every
    step and raises `GenerationCancelled`. With ``refine``, stage 2 of the
    two-stage route (`Refine`). ``preview``: the progress object the backend
    was given; it hears a latent preview of the step's clean video now and
    then (`engine.preview.offer_latent_preview`).
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
    clip_tokens = clean_v.shape[1]
    appended = carried.references
    if appended is not None:  # reference tokens after the clip's
        extra_v, extra_mask, extra_coords = _appended_tokens(
            pipe, appended, scene.fps, device
        )
        noise_x = randn_tensor(extra_v.shape, generator=generator, device=device)
        clean_v = torch.cat([clean_v, extra_v], dim=1)
        mask_v = torch.cat([mask_v, extra_mask], dim=1)
        noise_v = torch.cat([noise_v, noise_x], dim=1)
    frozen_audio = carried.audio_track is not None
    video = noise_v * (1 - mask_v) + clean_v * mask_v
    audio = noise_a[:, : clean_a.shape[1]] * (1 - mask_a) + clean_a * mask_a

    t_ratio = pipe.vae_temporal_compression_ratio
    s_ratio = pipe.vae_spatial_compression_ratio
    frames = (scene.num_frames - 1) // t_ratio + 1
    h, w = scene.height // s_ratio, scene.width // s_ratio
    scheduler, timesteps = _schedule(pipe, scene, refine, clip_tokens, device)
    audio_scheduler = copy.deepcopy(scheduler)
    transformer = pipe.transformer
    video_coords = transformer.rope.prepare_video_coords(
        1, frames, h, w, device, fps=scene.fps
    )
    if appended is not None:
        video_coords = torch.cat([video_coords.float(), extra_coords], dim=2)
    audio_coords = transformer.audio_rope.prepare_audio_coords(
        1, audio.shape[1], device
    )
    batch = 2 if cfg else 1
    if scene.stg > 0.0:
        enable_stg(transformer, scene.stg_blocks)
    dtype = prompt.video.dtype
    cond = Conditional.of(prompt, cfg)
    steps = len(timesteps)
    for i, t in enumerate(timesteps):
        if cancelled():
            raise GenerationCancelled(f"cancelled at step {i + 1} of {steps}")
        sigma_v = scheduler.sigmas[i]
        sigma_a = audio_scheduler.sigmas[i]
        video_t = t * (1 - mask_v.squeeze(-1))  # [1, tokens]
        audio_t = t * (1 - mask_a.squeeze(-1))

        def run(
            embeds: Encoded,
            n: int,
            *,
            isolate: bool = False,
            blocks: tuple[int, ...] = (),
            t: torch.Tensor = t,
            video_t: torch.Tensor = video_t,
            audio_t: torch.Tensor = audio_t,
            video: torch.Tensor = video,
            audio: torch.Tensor = audio,
            sigma_v: torch.Tensor = sigma_v,
            sigma_a: torch.Tensor = sigma_a,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """One transformer pass over ``n`` copies (batched prompts)."""
            timestep = t.expand(n)
            # a held (supplied) sound is clean: its noise level is 0 where the
            # other stream reads it (the makers' frozen modality)
            audio_sigma = timestep * 0 if frozen_audio else timestep
            with transformer.cache_context(pass_context(isolate, blocks)):
                pred_v, pred_a = transformer(
                    hidden_states=torch.cat([video] * n).to(dtype),
                    audio_hidden_states=torch.cat([audio] * n).to(dtype),
                    encoder_hidden_states=embeds.video,
                    audio_encoder_hidden_states=embeds.audio,
                    timestep=video_t.expand(n, -1),
                    audio_timestep=audio_t.expand(n, -1),
                    sigma=timestep,
                    audio_sigma=audio_sigma,
                    encoder_attention_mask=embeds.mask,
                    audio_encoder_attention_mask=embeds.mask,
                    num_frames=frames,
                    height=h,
                    width=w,
                    fps=scene.fps,
                    audio_num_frames=audio.shape[1],
                    video_coords=video_coords.repeat(n, 1, 1, 1),
                    audio_coords=audio_coords.repeat(n, 1, 1, 1),
                    isolate_modalities=isolate,
                    spatio_temporal_guidance_blocks=list(blocks) or None,
                    use_cross_timestep=scene.cross_timestep,
                    return_dict=False,
                )
            return (
                _x0(video, pred_v.float(), sigma_v),
                _x0(audio, pred_a.float(), sigma_a),
            )

        x0_v, x0_a = guided(scene, run, prompt, cond, batch)
        # hold the carried tails (x0 space, as the pipeline's conditioning)
        x0_v = x0_v * (1 - mask_v) + clean_v * mask_v
        x0_a = x0_a * (1 - mask_a) + clean_a * mask_a
        velocity_v = (video - x0_v) / sigma_v
        velocity_a = (audio - x0_a) / sigma_a
        video = scheduler.step(velocity_v, t, video, return_dict=False)[0].float()
        audio = audio_scheduler.step(velocity_a, t, audio, return_dict=False)[0].float()
        on_step(i + 1, steps)

        def clean_video(x0: torch.Tensor = x0_v) -> torch.Tensor:
            p = pipe.transformer_spatial_patch_size
            pt = pipe.transformer_temporal_patch_size
            return pipe._unpack_latents(x0[:, :clip_tokens], frames, h, w, p, pt)

        offer_latent_preview(preview, i + 1, steps, clean_video)
    p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    out = pipe._unpack_latents(video[:, :clip_tokens], frames, h, w, p, pt)
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
