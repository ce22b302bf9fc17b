"""Windowed LTX-Video sampling: scene joins and long takes the way LTX extends.

One sampler makes every ``ltx`` take, in one or more overlapping windows of
``WindowPlan.frames`` pixel frames. It follows Lightricks' extension sampler
(``LTXVExtendSampler`` in ComfyUI-LTXVideo ``easy_samplers.py``) and
diffusers' ``LTXI2VLongMultiPromptPipeline`` and uses that pipeline's own
helpers (`inject_prev_tail_latents`, `build_video_coords_for_window`,
`adain_normalize_latents`, `split_into_temporal_windows`,
`linear_overlap_fuse`) and its components, prompt encoding and packing:

- the last ``k`` latent frames of what came before (the predecessor take's
  tail at a scene join, the previous window inside a long take) are appended
  to the window as conditioning tokens whose time positions are the window's
  first ``k`` latent frames; their per-token timestep is ``t * (1 - s)`` and
  they are blended back to the carried values after every step (strength
  ``s``), then stripped from the output;
- the window's first output latent sits in a one-pixel-frame slot while the
  carried latent at that position stood for eight frames (LTX's VAE is causal:
  latent 0 encodes one frame, later ones eight), so it does not continue the
  timeline: a continuation window drops it;
- the next ``k - 1`` output latents repeat the carried ones in time and are
  fused linearly with them (weights falling from the carried side to the new
  one); after them every latent is new;
- AdaIN pulls each later window's per-channel latent statistics toward the
  first window's by ``adain_factor`` (colour drift over long takes);
- reference images (a character's or an environment's) are keyframes placed
  *before* the clip, never as its first frame: each is encoded to one latent
  frame and appended as conditioning tokens at latent index ``-j`` (pixel
  frame ``-8 j``), diffusers' ``negative_index_latents`` of this pipeline and
  the LTX-2 maintainers' advice for identity references (LTX-2 #204, #255);
  their per-token timestep is ``t * (1 - s)``, they are held at their values
  after every step and stripped from the output, in every window.

Where ours differs from the references, and why:

- A scene join has no earlier latents to decode with: each take is its own
  clip and must decode on its own, and a standalone decode needs a true
  one-frame latent first. So at a join the first output latent is dropped
  from the continuation but kept as the clip's first frame, which is the
  slot the model made it for. The take records ``1 + 8 (k - 1)`` repeated
  leading frames (that frame and the fused ones); the film skips them, so
  the reinterpreted latent is never played in sequence. Inside a long take
  it is dropped outright, as in the references.
- ``linear_overlap_fuse`` concatenates without blending when the overlap is
  one latent, and the reference calls it with ``max(k - 1, 1)``: with
  ``k = 2`` the repeated latent is kept twice and the take grows by a latent
  per window. `fuse_overlap` blends that one latent 50/50 instead
  (the weight the same formula gives), so frame counts are exact for any k.
- The reference loops over ``timesteps[:-1]`` with the RF scheduler (whose
  schedule ends in a terminal timestep); ours runs every step of LTX-Video's
  own linear-quadratic schedule with ``FlowMatchEulerDiscreteScheduler``, the
  schedule ``LTXConditionPipeline`` uses, so a single-window take is denoised
  as before.
- Window seeds follow the reference (``seed + first latent of the window``);
  noise is drawn on the CPU so a seed gives the same take on any device.
- The image fallback (the previous take's last frame, when its latents do
  not fit) is the reference's ``cond_image``: encoded once, placed at latent
  0 with mask ``1 - s``.
- Decoding is `decode_in_chunks`: latent chunks with context on both sides,
  written straight into the uint8 frames, so decode memory does not grow
  with the take's length (diffusers' temporal tiling keeps every decoded
  float tile until the end).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.pipelines.ltx.pipeline_ltx_condition import (
    linear_quadratic_schedule,
)
from diffusers.pipelines.ltx.pipeline_ltx_i2v_long_multi_prompt import (
    adain_normalize_latents,
    build_video_coords_for_window,
    get_latent_coords,
    inject_prev_tail_latents,
)
from diffusers.utils.torch_utils import randn_tensor

from engine.backend import GenerationCancelled, GenerationRequest, WindowReport
from engine.backends.diffusers.frames import (
    decode_in_chunks,
    encode_frame,
    pixel_frames,
    repeated_frames,
)
from engine.backends.diffusers.latents import LTX_RATIOS
from engine.backends.diffusers.schedule import exact_scheduler
from engine.backends.ltx.windows import fuse_overlap, window_spans
from engine.preview import offer_latent_preview

__all__ = [
    "Carried",
    "Sampled",
    "window_spans",
    "fuse_overlap",
    "repeated_frames",
    "sample_windows",
    "decode_in_chunks",
    "with_reference_coords",
    "encode_frame",
]

StepFn = Callable[[int, int, int, int], None]  # (step, steps, window, windows)


@dataclass(frozen=True)
class Carried:
    """What conditions the first window: carried tail latents, or an image latent.

    ``latents``: ``[1, C, k, h, w]`` normalised (a predecessor's tail);
    ``image``: ``[1, C, 1, h, w]`` normalised (an encoded last frame).
    """

    latents: torch.Tensor | None = None
    image: torch.Tensor | None = None
    strength: float = 1.0
    # reference keyframes placed before the clip: [1, C, n, h, w] normalised
    references: torch.Tensor | None = None
    reference_strength: float = 0.0


@dataclass
class Sampled:
    """Denoised latents of a take, its repeated frames and its windows."""

    latents: torch.Tensor  # [1, C, F, h, w], normalised
    repeated_frames: int
    windows: list[WindowReport] = field(default_factory=list)
    window_seconds: list[float] = field(default_factory=list)
    prompt_seconds: float = 0.0


@dataclass(frozen=True)
class _Prompt:
    embeds: torch.Tensor
    mask: torch.Tensor


def _encode(
    pipe: Any, text: str, negative: str, guidance: float, max_sequence_length: int
) -> _Prompt:
    cfg = guidance > 1.0
    embeds, mask, neg, neg_mask = pipe.encode_prompt(
        prompt=[text],
        negative_prompt=negative or None,
        do_classifier_free_guidance=cfg,
        num_videos_per_prompt=1,
        max_sequence_length=max_sequence_length,
        device=pipe._execution_device,
    )
    if cfg:
        embeds = torch.cat([neg, embeds], dim=0)
        mask = torch.cat([neg_mask, mask], dim=0)
    return _Prompt(embeds, mask)


@dataclass(frozen=True)
class _Window:
    length: int  # latent frames the window makes
    height: int
    width: int
    seed: int
    steps: int
    guidance: float
    fps: int


def with_reference_coords(
    coords: torch.Tensor,
    n_refs: int,
    size: tuple[int, int],
    scale: tuple[int, int, int],
    fps: int,
) -> torch.Tensor:
    """``coords`` ``[B, 3, S]`` followed by those of ``n_refs`` reference
    frames placed before the clip: reference ``j`` (1-based) at latent index
    ``-j``, pixel frame ``-8 j`` (diffusers' negative-index keyframe, one per
    image; time in seconds like the rest)."""
    if n_refs == 0:
        return coords
    h, w = size
    parts = [coords]
    for j in range(1, n_refs + 1):
        at = get_latent_coords(1, h, w, coords.shape[0], coords.device, scale, -j)
        at = at.to(torch.float32)
        at[:, 0] = at[:, 0] / fps
        parts.append(at)
    return torch.cat(parts, dim=2)


def _denoise_window(
    pipe: Any,
    window: _Window,
    prompt: _Prompt,
    carried: Carried,
    on_step: Callable[[int, Callable[[], torch.Tensor]], None],
) -> torch.Tensor:
    """One window ``[1, C, length, h, w]``, conditioning tokens stripped.

    ``on_step(step, x0)`` after each step; ``x0()`` is the step's clean
    prediction ``[1, C, length, h, w]`` (made only when called: a preview)."""
    device = pipe._execution_device
    channels = pipe.transformer.config.in_channels
    shape = (1, channels, window.length, window.height, window.width)
    base = torch.zeros(shape, device=device, dtype=torch.float32)
    mask = torch.ones((1, 1, *shape[2:]), device=device, dtype=torch.float32)
    if carried.image is not None and carried.strength > 0:
        base[:, :, :1] = carried.image.to(device, torch.float32)
        mask[:, :, 0] = 1.0 - carried.strength
    tail = None
    if carried.latents is not None:
        tail = carried.latents.to(device, torch.float32)
    base, mask, n_carried = inject_prev_tail_latents(
        base, tail, mask, window.length, carried.strength, 0
    )
    scale = (LTX_RATIOS.temporal, LTX_RATIOS.spatial, LTX_RATIOS.spatial)
    coords = build_video_coords_for_window(base, n_carried, 0, 0, scale, window.fps)
    n_refs = 0
    if carried.references is not None and carried.reference_strength > 0:
        refs = carried.references.to(device, torch.float32)
        n_refs = refs.shape[2]
        base = torch.cat([base, refs], dim=2)
        ref_mask = torch.full_like(refs[:, :1], 1.0 - carried.reference_strength)
        mask = torch.cat([mask, ref_mask], dim=2)
    generator = torch.Generator("cpu").manual_seed(window.seed)
    noise = randn_tensor(base.shape, generator=generator, device=device)
    p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    latents = pipe._pack_latents(noise * mask + (1 - mask) * base, p, pt)
    held = pipe._pack_latents(base, p, pt)
    token_mask = pipe._pack_latents(mask, p, pt)
    cfg = window.guidance > 1.0
    coords = with_reference_coords(
        coords, n_refs, (window.height, window.width), scale, window.fps
    )
    if cfg:
        coords = torch.cat([coords, coords], dim=0)
    # LTX-Video's linear-quadratic sigmas, stepped as listed (no config shift)
    scheduler, timesteps = exact_scheduler(
        pipe.scheduler, linear_quadratic_schedule(window.steps).tolist(), device
    )
    both_mask = torch.cat([token_mask, token_mask]) if cfg else token_mask
    for i, t in enumerate(timesteps):
        model_input = torch.cat([latents, latents]) if cfg else latents
        timestep = t.expand(model_input.shape[0])[:, None, None] * both_mask
        with pipe.transformer.cache_context("cond_uncond"):
            noise_pred = pipe.transformer(
                hidden_states=model_input.to(pipe.transformer.dtype),
                encoder_hidden_states=prompt.embeds,
                timestep=timestep,
                encoder_attention_mask=prompt.mask,
                num_frames=1,
                height=1,
                width=1,
                rope_interpolation_scale=scale,
                video_coords=coords,
                return_dict=False,
            )[0].float()
        if cfg:
            uncond, text = noise_pred.chunk(2)
            noise_pred = uncond + window.guidance * (text - uncond)
        x_t = latents
        latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
        latents = latents.float() * token_mask + held * (1.0 - token_mask)

        def x0(
            x: torch.Tensor = x_t, v: torch.Tensor = noise_pred, i: int = i
        ) -> torch.Tensor:
            clean = x.float() - scheduler.sigmas[i].to(x.device) * v  # flow matching
            out = pipe._unpack_latents(
                clean, base.shape[2], window.height, window.width, p, pt
            )
            return out[:, :, : window.length]

        on_step(i + 1, x0)
    out = pipe._unpack_latents(
        latents, base.shape[2], window.height, window.width, p, pt
    )
    return out[:, :, : window.length]  # carried and reference tokens stripped


def sample_windows(
    pipe: Any,
    request: GenerationRequest,
    carried: Carried,
    progress: StepFn,
    cancelled: Callable[[], bool],
    *,
    prompts: tuple[str, ...] = (),
    max_sequence_length: int = 128,
    preview: Any = None,
) -> Sampled:
    """Denoise a take window by window (see the module docstring).

    ``prompts``: one per window, the last repeating (default: the request's
    prompt throughout); the window plan is ``request.windows``. ``preview``:
    the progress object the backend was given; it hears a latent preview
    now and then (`engine.preview.offer_latent_preview`).

    ``progress(step, steps, window, windows)`` after each step; cancel is
    checked before every step and raises `GenerationCancelled`, so nothing
    of a cancelled take is returned.
    """
    plan = request.windows
    prompts = prompts or (request.prompt,)
    spans = window_spans(request.num_frames, plan.frames, plan.overlap_frames)
    k = plan.overlap_frames // LTX_RATIOS.temporal
    h = request.height // LTX_RATIOS.spatial
    w = request.width // LTX_RATIOS.spatial
    encoded: dict[str, _Prompt] = {}
    result: Sampled | None = None
    first: torch.Tensor | None = None
    reports: list[WindowReport] = []
    seconds: list[float] = []
    prompt_seconds = 0.0
    for index, (start, end) in enumerate(spans):
        text = prompts[min(index, len(prompts) - 1)]
        mark = time.perf_counter()
        if text not in encoded:
            encoded[text] = _encode(
                pipe,
                text,
                request.negative_prompt,
                request.guidance,
                max_sequence_length,
            )
        prompt_seconds += time.perf_counter() - mark
        seed = request.seed + start
        window = _Window(
            end - start, h, w, seed, request.steps, request.guidance, request.fps
        )

        def on_step(
            step: int, x0: Callable[[], torch.Tensor], index: int = index
        ) -> None:
            progress(step, request.steps, index + 1, len(spans))
            offer_latent_preview(preview, step, request.steps, x0)
            if cancelled():
                raise GenerationCancelled(
                    f"cancelled in window {index + 1} of {len(spans)}"
                )

        if cancelled():
            raise GenerationCancelled("cancelled before the first step")
        mark = time.perf_counter()
        if result is None:
            head = carried
            if head.latents is not None:
                n = min(k, head.latents.shape[2], window.length - 1)
                head = Carried(
                    head.latents[:, :, head.latents.shape[2] - n :] if n > 0 else None,
                    head.image,
                    head.strength,
                    head.references,
                    head.reference_strength,
                )
            out = _denoise_window(pipe, window, encoded[text], head, on_step)
            repeated = 0
            if head.latents is not None and head.strength > 0:
                n = head.latents.shape[2]
                tail = head.latents.to(out.device, out.dtype)
                fused = fuse_overlap(tail[:, :, 1:], out[:, :, 1:], n - 1)
                out = torch.cat([out[:, :, :1], fused], dim=2)
                repeated = repeated_frames(n)
            elif head.image is not None and head.strength > 0:
                repeated = 1
            result = Sampled(out, repeated)
            first = out
        else:
            tail = result.latents[:, :, -k:]
            carry = Carried(
                tail,
                None,
                plan.strength,
                carried.references,
                carried.reference_strength,
            )
            out = _denoise_window(pipe, window, encoded[text], carry, on_step)
            out = out[:, :, 1:]  # the reinterpreted first latent
            out = adain_normalize_latents(out, first, plan.adain_factor)
            result.latents = fuse_overlap(result.latents, out, k - 1)
        seconds.append(time.perf_counter() - mark)
        reports.append(
            WindowReport(
                start_frame=0 if start == 0 else 1 + LTX_RATIOS.temporal * (start - 1),
                num_frames=pixel_frames(end - start),
                seed=seed,
                prompt=text,
            )
        )
    assert result is not None, "a take has at least one window"
    result.windows = reports
    result.window_seconds = seconds
    result.prompt_seconds = prompt_seconds
    return result
