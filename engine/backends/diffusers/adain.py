"""AdaIN toward a story line's anchor: latent colour held across scenes.

Adaptive instance normalisation (Huang and Belongie, "Arbitrary Style
Transfer in Real-time with Adaptive Instance Normalization", ICCV 2017) on
video latents, as LTX's long-take sampler already pulls later windows
toward the first (diffusers' ``adain_normalize_latents`` in
``pipeline_ltx_i2v_long_multi_prompt``, ComfyUI-LTXVideo's
``LTXVAdainLatent``): per latent channel, the take's mean and standard
deviation over frames, height and width are moved toward the anchor's,
``x + f ((x - mean_x) / std_x * std_a + mean_a - x)`` with factor ``f``.
Here the anchor's statistics come from its stored tail latents
(`engine.color.anchor.ColorAnchor`), so a take is pulled toward its line's
anchor (or its predecessor) before it is decoded, and its own tail, which
the next scene carries, is already held.

Both LTX backends call `pull_toward_anchor` on their video latents
``[B, C, F, H, W]`` (normalised, as the tails are stored) after denoising
and before decoding and keeping the tail, and return its record as
``GenerationResult.color_correction``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from engine.color.anchor import ColorAnchor
    from kg.take import ColorCorrection

__all__ = ["channel_stats", "adain_toward", "pull_toward_anchor"]

_EPS = 1e-6


def channel_stats(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation ``[C]`` of ``[B, C, F, H, W]``
    latents, over everything but the channel."""
    flat = latents.float().transpose(0, 1).reshape(latents.shape[1], -1)
    return flat.mean(dim=1), flat.std(dim=1)


def adain_toward(
    latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, factor: float
) -> torch.Tensor:
    """``latents`` ``[B, C, F, H, W]`` with each channel's statistics moved
    toward ``mean``/``std`` ``[C]`` by ``factor`` (0: unchanged, 1: equal).

    >>> x = torch.randn(1, 2, 3, 4, 4) * 2 + 5
    >>> y = adain_toward(x, torch.zeros(2), torch.ones(2), 1.0)
    >>> [abs(round(float(v), 3)) for v in (*channel_stats(y)[0], *channel_stats(y)[1])]
    [0.0, 0.0, 1.0, 1.0]
    """
    if not 0.0 <= factor <= 1.0:
        raise ValueError(f"factor must be in [0, 1], got {factor}")
    if mean.shape != (latents.shape[1],) or std.shape != (latents.shape[1],):
        raise ValueError(
            f"anchor statistics have {tuple(mean.shape)} channels, the latents "
            f"{latents.shape[1]}; the anchor was made by another model"
        )
    own_mean, own_std = channel_stats(latents)
    shape = (1, -1, 1, 1, 1)
    mean, std = mean.to(latents.device).float(), std.to(latents.device).float()
    normalised = (latents.float() - own_mean.view(shape)) / own_std.clamp_min(
        _EPS
    ).view(shape)
    target = normalised * std.view(shape) + mean.view(shape)
    return torch.lerp(latents.float(), target, factor).to(latents.dtype)


def pull_toward_anchor(
    latents: torch.Tensor, anchor: ColorAnchor | None
) -> tuple[torch.Tensor, ColorCorrection | None]:
    """``latents`` pulled toward ``anchor``'s latent statistics by its
    strength, and the record of it; unchanged (None) when there is no anchor
    or it has no latent statistics of this model's channel count (the
    engine then transfers the decoded frames instead)."""
    if anchor is None or anchor.latent_mean is None or anchor.latent_std is None:
        return latents, None
    if anchor.latent_mean.shape != (latents.shape[1],):
        return latents, None
    from kg.take import ColorCorrection

    pulled = adain_toward(
        latents, anchor.latent_mean, anchor.latent_std, anchor.strength
    )
    record = ColorCorrection(
        method="adain",
        mode=anchor.mode,
        strength=anchor.strength,
        anchor_take=anchor.anchor_take,
    )
    return pulled, record
