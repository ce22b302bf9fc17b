"""``LTXConditionPipeline`` that also takes pre-encoded latents as its conditioning.

diffusers' ``LTXConditionPipeline`` conditions on images/videos: it
preprocesses them to pixels and encodes them with the VAE inside
``prepare_latents``. Scene continuity carries the tail latents of the previous
take instead, so they must reach the denoising loop without a VAE
decode/encode round trip. There is no hook for that, so this subclass keeps
the override small:

- ``__call__`` takes ``carried_latents`` (``[B, C, n, h, w]``, normalised, as
  returned by ``output_type="latent"``) and passes a one-pixel placeholder
  image so the parent enters its conditioning code path (timestep masking and
  keeping the conditioned tokens in the loop).
- ``prepare_latents`` ignores that placeholder (it is never encoded), draws
  the noise latents exactly as the parent does, and puts the carried latents
  in latent frames ``0 .. n-1`` with the conditioning mask set to ``strength``
  there: the same thing the parent does for an encoded video at
  ``frame_index=0``.

Everything else (prompt encoding, schedule, denoising, callbacks, offload
hooks) is the parent's.
"""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXConditionPipeline

__all__ = ["LatentConditionPipeline"]


class LatentConditionPipeline(LTXConditionPipeline):
    """`LTXConditionPipeline` with ``carried_latents`` conditioning at frame 0."""

    _carried: tuple[torch.Tensor, float] | None = None

    def __call__(  # noqa: D102 - documented in the module and the parent
        self,
        *args: Any,
        carried_latents: torch.Tensor | None = None,
        carried_strength: float = 1.0,
        **kwargs: Any,
    ) -> Any:
        if carried_latents is None:
            return super().__call__(*args, **kwargs)
        for name in ("conditions", "image", "video"):
            if kwargs.get(name) is not None:
                raise ValueError(f"carried_latents cannot be combined with {name}")
        self._carried = (carried_latents, float(carried_strength))
        try:
            # The placeholder only switches on the parent's conditioning path.
            placeholder = PIL.Image.new("RGB", (1, 1))
            return super().__call__(
                *args, image=placeholder, strength=carried_strength, **kwargs
            )
        finally:
            self._carried = None

    def prepare_latents(
        self,
        conditions: list[torch.Tensor] | None = None,
        condition_strength: list[float] | None = None,
        condition_frame_index: list[int] | None = None,
        batch_size: int = 1,
        num_channels_latents: int = 128,
        height: int = 512,
        width: int = 704,
        num_frames: int = 161,
        num_prefix_latent_frames: int = 2,
        sigma: torch.Tensor | None = None,
        latents: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Parent's ``prepare_latents``, or carried-latent injection when set."""
        common = dict(
            batch_size=batch_size,
            num_channels_latents=num_channels_latents,
            height=height,
            width=width,
            num_frames=num_frames,
            num_prefix_latent_frames=num_prefix_latent_frames,
            sigma=sigma,
            latents=latents,
            generator=generator,
            device=device,
            dtype=dtype,
        )
        if self._carried is None:
            return super().prepare_latents(
                conditions, condition_strength, condition_frame_index, **common
            )
        carried, strength = self._carried
        # Noise (or noised input latents) exactly as the parent draws them.
        packed, _, video_ids, _ = super().prepare_latents([], [], [], **common)
        n_frames = (num_frames - 1) // self.vae_temporal_compression_ratio + 1
        h = height // self.vae_spatial_compression_ratio
        w = width // self.vae_spatial_compression_ratio
        p, pt = (
            self.transformer_spatial_patch_size,
            self.transformer_temporal_patch_size,
        )
        full = self._unpack_latents(packed, n_frames, h, w, p, pt)  # [B, C, F, h, w]
        carried = carried.to(device=full.device, dtype=full.dtype)
        n = carried.shape[2]
        full[:, :, :n] = torch.lerp(
            full[:, :, :n], carried.expand(batch_size, -1, -1, -1, -1), strength
        )
        frame_mask = torch.zeros((batch_size, n_frames), device=full.device)
        frame_mask[:, :n] = strength
        # Token -> latent frame index, as the parent does before scaling ids.
        token_frames = self._prepare_video_ids(
            batch_size,
            n_frames,
            h,
            w,
            patch_size=p,
            patch_size_t=pt,
            device=full.device,
        )[:, 0]
        conditioning_mask = frame_mask.gather(1, token_frames)
        return self._pack_latents(full, p, pt), conditioning_mask, video_ids, 0
