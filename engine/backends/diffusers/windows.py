"""The windows of a long LTX take, in latent frames, and their fusion.

diffusers' ``LTXI2VLongMultiPromptPipeline`` helpers (``split_into_temporal_windows``,
``linear_overlap_fuse``) in the samplers' terms, shared by both LTX backends
(`engine.backends.ltx.extend`, `engine.backends.ltx2.windows`).
"""

from __future__ import annotations

import torch
from diffusers.pipelines.ltx.pipeline_ltx_i2v_long_multi_prompt import (
    linear_overlap_fuse,
    split_into_temporal_windows,
)

from engine.backends.diffusers.latents import LTX_RATIOS, latent_frame_count

__all__ = ["window_spans", "fuse_overlap", "fuse_sequence"]


def window_spans(
    num_frames: int, window_frames: int, overlap_frames: int
) -> list[tuple[int, int]]:
    """Latent ``[start, end)`` of each window (diffusers' split, in latents).

    >>> window_spans(49, 121, 24)
    [(0, 7)]
    >>> window_spans(281, 121, 24)
    [(0, 16), (13, 29), (26, 36)]
    """
    t = LTX_RATIOS.temporal
    return split_into_temporal_windows(
        latent_frame_count(num_frames),
        latent_frame_count(window_frames),
        overlap_frames // t,
        t,
    )


def fuse_overlap(prev: torch.Tensor, new: torch.Tensor, overlap: int) -> torch.Tensor:
    """``prev`` then ``new`` with their ``overlap`` shared latents blended linearly.

    diffusers' `linear_overlap_fuse` for two or more; one latent is blended
    with its formula's weight (0.5) where diffusers would keep both copies.
    """
    if overlap >= 2:
        return linear_overlap_fuse(prev, new, overlap)
    if overlap == 1:
        blended = 0.5 * prev[:, :, -1:] + 0.5 * new[:, :, :1]
        return torch.cat([prev[:, :, :-1], blended, new[:, :, 1:]], dim=2)
    return torch.cat([prev, new], dim=2)


def fuse_sequence(prev: torch.Tensor, new: torch.Tensor, overlap: int) -> torch.Tensor:
    """`fuse_overlap` along dimension 1 (packed ``[B, L, D]`` audio latents):
    ``prev`` then ``new`` with ``overlap`` shared frames blended linearly."""
    fused = fuse_overlap(
        prev.transpose(1, 2)[..., None], new.transpose(1, 2)[..., None], overlap
    )
    return fused[..., 0].transpose(1, 2)
