"""Pixel frames in and out of the LTX causal VAEs, shared by LTX-Video and LTX-2.

Encoding a frame to a normalised latent, decoding a take's latents in chunks
with temporal context, and the count of leading pixel frames that repeat a
carried tail. Both VAEs compress time by 8 after a one-frame first latent
(`engine.backends.diffusers.latents`), so the arithmetic is the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from engine.backend import GenerationRequest, report_phase
from engine.backends.diffusers.latents import LTX_RATIOS
from engine.errors import GenerationCancelled
from engine.progress import report_preview

__all__ = ["pixel_frames", "repeated_frames", "decode_in_chunks", "encode_frame"]


def repeated_frames(carried_latents: int) -> int:
    """Leading pixel frames of a take that repeat ``carried_latents`` carried ones.

    >>> repeated_frames(0), repeated_frames(1), repeated_frames(3)
    (0, 1, 17)
    """
    if carried_latents <= 0:
        return 0
    return 1 + LTX_RATIOS.temporal * (carried_latents - 1)


def pixel_frames(latents: int) -> int:
    """Pixel frames that ``latents`` causal-VAE latent frames decode to.

    >>> pixel_frames(1), pixel_frames(16)
    (1, 121)
    """
    return 1 + LTX_RATIOS.temporal * (latents - 1)


def decode_in_chunks(
    pipe: Any,
    latents: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    chunk_latents: int = 16,
    context_latents: int = 6,
    decode_timestep: float = 0.05,
    decode_noise_scale: float = 0.025,
    cancel: Any = None,
    progress: Any = None,
) -> np.ndarray:
    """Decode normalised latents ``[1, C, F, h, w]`` to uint8 ``[N, H, W, 3]``.

    Chunks of ``chunk_latents`` latents are decoded with ``context_latents``
    more on each side (the decoder looks at neighbours in time) and only
    their own frames are kept, converted to uint8 at once. A take of at most
    ``chunk_latents`` (the backend passes one window's) is decoded in one
    piece. With
    enough context a chunked decode equals the one-piece decode (the tiny
    test VAE: within 1 level at 8 latents, 10 levels at 6); the default of 6
    costs 1.75x the decoder work of one piece on long takes of 121-frame
    windows. A chunk's first
    context latent is read as a one-frame latent by the decoder; it is only
    context and its frame is discarded. Decode-time noise (timestep-
    conditioned VAEs, as LTX-Video's reference inference) is drawn once for
    the whole take, so chunking does not change it.

    ``cancel`` (a `engine.backend.CancelToken`, or anything with ``is_set``)
    is checked before every chunk: set, the decode stops with
    `GenerationCancelled`. ``progress`` (the callable the backend was given)
    hears ``decode`` chunk ``c`` of ``C`` after each chunk (`report_phase`),
    and the chunk's last frame as a preview (`report_preview`).
    Both default to None: a caller that passes neither decodes as before.
    """
    if context_latents < 1:
        raise ValueError(f"context_latents must be at least 1, got {context_latents}")
    vae = pipe.vae
    z_all = pipe._denormalize_latents(
        latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor
    )
    total = latents.shape[2]
    t = LTX_RATIOS.temporal
    timestep = None
    if vae.config.timestep_conditioning:
        noise = randn_tensor(
            z_all.shape, generator=generator, device=z_all.device, dtype=z_all.dtype
        )
        z_all = (1 - decode_noise_scale) * z_all + decode_noise_scale * noise
        timestep = torch.full(
            (1,), decode_timestep, device=z_all.device, dtype=vae.dtype
        )
    frames: np.ndarray | None = None
    chunks = -(-total // chunk_latents)
    report_phase(progress, "decode", 0, chunks)
    for c, start in enumerate(range(0, total, chunk_latents), start=1):
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled(
                f"cancelled while decoding, chunk {c} of {chunks}"
            )
        end = min(start + chunk_latents, total)
        lo, hi = max(0, start - context_latents), min(total, end + context_latents)
        with torch.no_grad():
            video = vae.decode(
                z_all[:, :, lo:hi].to(vae.dtype), timestep, return_dict=False
            )[0]
        # slice pixel p >= 1 is global pixel p + t * lo; slice pixel 0 is
        # global pixel 0 only when the slice starts the take
        first = 0 if start == 0 else 1 + t * (start - 1)
        last = t * (end - 1)  # inclusive
        a, b = first - t * lo, last - t * lo + 1
        chunk = pipe.video_processor.postprocess_video(
            video[:, :, a:b], output_type="np"
        )[0]
        if frames is None:
            height, width = chunk.shape[1:3]
            frames = np.empty((pixel_frames(total), height, width, 3), np.uint8)
        frames[first : last + 1] = (np.clip(chunk, 0.0, 1.0) * 255.0).round()
        del video, chunk
        report_preview(progress, frames[last], f"decoded chunk {c}/{chunks}")
        report_phase(progress, "decode", c, chunks)
    assert frames is not None, "a take has at least one latent frame"
    return frames


def encode_frame(pipe: Any, frame: Any, request: GenerationRequest) -> torch.Tensor:
    """A frame ``[H, W, 3]`` uint8 as a normalised latent ``[1, C, 1, h, w]`` at the
    request's size (LTX-Video's and LTX-2's VAEs alike)."""
    import PIL.Image

    image = pipe.video_processor.preprocess(
        PIL.Image.fromarray(frame), height=request.height, width=request.width
    )
    vae = pipe.vae
    image = image.to(device=pipe._execution_device, dtype=vae.dtype)
    with torch.no_grad():
        encoded = vae.encode(image.unsqueeze(2)).latent_dist.mode()
    return pipe._normalize_latents(
        encoded.float(), vae.latents_mean, vae.latents_std, vae.config.scaling_factor
    )
