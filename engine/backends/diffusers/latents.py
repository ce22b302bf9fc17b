"""Causal-VAE latent/pixel frame arithmetic and the tail latents carried between scenes.

LTX-Video's VAE is causal in time: latent frame 0 encodes pixel frame 0 alone,
and every later latent frame ``k`` encodes the 8 pixel frames
``8k-7 .. 8k`` (temporal compression 8, spatial compression 32). A clip of
``8k + 1`` pixel frames therefore has ``k + 1`` latent frames.

The tail of a take (its last ``n`` latent frames, in the pipeline's normalised
latent space: ``(z - mean) * scaling_factor / std`` per channel) is stored
beside the clip; the next scene takes it in as conditioning tokens
(`engine.backends.ltx.extend`), so its first ``8(n-1) + 1`` pixel frames repeat the
previous clip's last ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from engine.backend import BackendError

if TYPE_CHECKING:
    import torch

__all__ = [
    "LatentShape",
    "VaeRatios",
    "LTX_RATIOS",
    "NORMALISATION",
    "latent_frame_count",
    "pixel_span",
    "tail_pixel_frames",
    "check_size",
    "check_window_plan",
    "latent_shape",
    "tail_latents",
    "tail_meta",
    "LatentFit",
    "check_latent_fit",
]

# What `tail_latents` holds: the pipeline's own normalised latent space.
NORMALISATION = "ltx-channel-mean-std"


class LatentShape(NamedTuple):
    """Shape of a latent video ``[B, C, F, H, W]``."""

    batch: int
    channels: int
    frames: int
    height: int
    width: int


@dataclass(frozen=True)
class VaeRatios:
    """Compression of a causal video VAE (LTX-Video: 8 in time, 32 in space)."""

    temporal: int = 8
    spatial: int = 32


LTX_RATIOS = VaeRatios()


def latent_frame_count(num_frames: int, ratios: VaeRatios = LTX_RATIOS) -> int:
    """Latent frames of a clip of ``num_frames`` pixel frames (``8k + 1``).

    Examples
    --------
    >>> latent_frame_count(9), latent_frame_count(97), latent_frame_count(1)
    (2, 13, 1)
    """
    return (num_frames - 1) // ratios.temporal + 1


def pixel_span(latent_index: int, ratios: VaeRatios = LTX_RATIOS) -> range:
    """Pixel frames that latent frame ``latent_index`` stands for.

    Examples
    --------
    >>> pixel_span(0), pixel_span(1), pixel_span(2)
    (range(0, 1), range(1, 9), range(9, 17))
    """
    if latent_index == 0:
        return range(0, 1)
    start = (latent_index - 1) * ratios.temporal + 1
    return range(start, start + ratios.temporal)


def tail_pixel_frames(
    num_tail: int, num_latent_frames: int, ratios: VaeRatios = LTX_RATIOS
) -> int:
    """Pixel frames covered by the last ``num_tail`` of ``num_latent_frames``.

    Examples
    --------
    >>> tail_pixel_frames(1, 13), tail_pixel_frames(2, 2)
    (8, 9)
    """
    first = num_latent_frames - num_tail
    return sum(len(pixel_span(i, ratios)) for i in range(first, num_latent_frames))


def check_size(
    width: int, height: int, num_frames: int, ratios: VaeRatios = LTX_RATIOS
) -> None:
    """Refuse sizes the VAE cannot represent, naming the field and the fix.

    Raises
    ------
    BackendError
        When width/height are not multiples of the spatial compression or the
        frame count is not ``temporal * k + 1``. Nothing is corrected silently.
    """
    s, t = ratios.spatial, ratios.temporal
    problems = []
    if width <= 0 or height <= 0 or width % s or height % s:
        problems.append(
            f"width and height must be positive multiples of {s}, got {width} and "
            f"{height} (nearest valid: {_nearest_multiple(width, s)} x "
            f"{_nearest_multiple(height, s)})"
        )
    if num_frames < 1 or (num_frames - 1) % t:
        lower = max(1, (num_frames - 1) // t * t + 1)
        problems.append(
            f"num_frames must be {t}k + 1 (1, {t + 1}, {2 * t + 1}, ...), got "
            f"{num_frames} (nearest valid: {lower} or {lower + t})"
        )
    if problems:
        raise BackendError("; ".join(problems))


def check_window_plan(window_frames: int, overlap_frames: int) -> None:
    """Refuse a window size or overlap the sampler cannot use (`kg.windows`)."""
    from kg.windows import window_problems

    problems = window_problems(
        window_frames, overlap_frames, temporal=LTX_RATIOS.temporal
    )
    if problems:
        raise BackendError("; ".join(problems))


def _nearest_multiple(value: int, base: int) -> int:
    return max(base, round(value / base) * base)


def latent_shape(
    width: int,
    height: int,
    num_frames: int,
    channels: int,
    ratios: VaeRatios = LTX_RATIOS,
    batch: int = 1,
) -> LatentShape:
    """Latent shape of a clip (after `check_size`)."""
    return LatentShape(
        batch,
        channels,
        latent_frame_count(num_frames, ratios),
        height // ratios.spatial,
        width // ratios.spatial,
    )


def tail_latents(latents: torch.Tensor, num_tail: int) -> torch.Tensor:
    """Last ``num_tail`` latent frames, detached on the CPU in float32.

    ``latents``: ``[B, C, F, H, W]`` normalised; returns ``[B, C, n, H, W]``
    with ``n = min(num_tail, F)``.
    """
    assert latents.ndim == 5, f"latents must be [B, C, F, H, W], got {latents.shape}"
    n = max(1, min(num_tail, latents.shape[2]))
    return latents[:, :, -n:].detach().float().cpu().contiguous()


def tail_meta(
    *,
    model: str,
    tail: torch.Tensor,
    width: int,
    height: int,
    num_frames: int,
    ratios: VaeRatios = LTX_RATIOS,
) -> dict[str, str]:
    """Metadata stored with tail latents (all strings: safetensors metadata)."""
    num_latent = latent_frame_count(num_frames, ratios)
    return {
        "model": model,
        "latent_shape": "x".join(str(d) for d in tail.shape),
        "latent_channels": str(tail.shape[1]),
        "normalisation": NORMALISATION,
        "width": str(width),
        "height": str(height),
        "num_frames": str(num_frames),
        "temporal_compression": str(ratios.temporal),
        "spatial_compression": str(ratios.spatial),
        "tail_pixel_frames": str(tail_pixel_frames(tail.shape[2], num_latent, ratios)),
    }


@dataclass(frozen=True)
class LatentFit:
    """Whether carried latents can condition a clip, and why not."""

    ok: bool
    reason: str = ""


def check_latent_fit(
    tail: torch.Tensor | None,
    meta: dict[str, str],
    *,
    model: str,
    expected: LatentShape,
) -> LatentFit:
    """Decide whether carried tail latents fit the clip about to be generated.

    They fit when they come from the same model, in the same normalisation,
    with the same channel count and latent height/width. A tail longer than
    the overlap (or the clip) is cut to its last latent frames by the sampler.
    """
    if tail is None:
        return LatentFit(False, "the previous take has no tail latents")
    if tail.ndim != 5:
        return LatentFit(
            False, f"tail latents must be 5-D, got shape {tuple(tail.shape)}"
        )
    source_model = meta.get("model", "")
    if source_model != model:
        return LatentFit(
            False,
            f"tail latents come from model {source_model or '(unknown)'!r}, this "
            f"scene uses {model!r}",
        )
    normalisation = meta.get("normalisation", NORMALISATION)
    if normalisation != NORMALISATION:
        return LatentFit(False, f"tail latents use normalisation {normalisation!r}")
    _, channels, frames, height, width = tail.shape
    if channels != expected.channels:
        return LatentFit(
            False,
            f"tail latents have {channels} channels, the model expects "
            f"{expected.channels}",
        )
    if (height, width) != (expected.height, expected.width):
        src = f"{meta.get('width', '?')}x{meta.get('height', '?')}"
        return LatentFit(
            False,
            f"tail latents are {width}x{height} latent pixels (a {src} take), this "
            f"scene needs {expected.width}x{expected.height}",
        )
    if frames < 1:
        return LatentFit(False, "the tail latents hold no frames")
    return LatentFit(True)
