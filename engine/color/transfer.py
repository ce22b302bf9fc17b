"""Colour transfer in CIELAB: the methods users apply by hand to chained clips.

- `reinhard`: per-channel mean and standard deviation matched to the
  target's (Reinhard, Ashikhmin, Gooch and Shirley, "Color Transfer between
  Images", IEEE CG&A 21(5), 2001), here in CIELAB as most colour-match
  tools do instead of the paper's lαβ;
- `mkl`: the Monge-Kantorovich linear map, the affine map of least
  displacement that gives the source the target's mean and covariance
  (Pitié and Kokaram, "The linear Monge-Kantorovitch linear colour mapping
  for example-based colour transfer", IET CVMP 2007):
  ``T = S^-1/2 (S^1/2 T_cov S^1/2)^1/2 S^-1/2`` with ``S`` the source's
  covariance.

A take is transferred as a whole: one map, from the statistics of its
sampled frames to the anchor's, applied to every frame, so the take keeps
its own changes over time. ``strength`` blends the mapped colour with the
original in CIELAB (0: unchanged, 1: the full map). Conversions are
OpenCV's float sRGB/CIELAB (D65).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "Method",
    "STATS_SIDE",
    "STATS_FRAMES",
    "LabStats",
    "to_lab",
    "from_lab",
    "lab_stats",
    "color_map",
    "transfer",
]

Method = Literal["reinhard", "mkl"]
STATS_SIDE = 128  # statistics at a 128-pixel short side: colour, not detail
STATS_FRAMES = 16  # frames sampled (uniformly) for a take's statistics
_EPS = 1e-6


@dataclass(frozen=True)
class LabStats:
    """Mean ``[3]`` and covariance ``[3, 3]`` of CIELAB pixels."""

    mean: np.ndarray
    cov: np.ndarray

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.cov), 0.0))


def to_lab(frames: np.ndarray) -> np.ndarray:
    """uint8 sRGB ``[..., H, W, 3]`` as float32 CIELAB (L* 0..100)."""
    import cv2

    rgb = np.asarray(frames, dtype=np.float32) / 255.0
    flat = rgb.reshape(-1, rgb.shape[-2], 3)  # cv2 wants 2-D images
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(rgb.shape)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """float CIELAB ``[..., H, W, 3]`` as uint8 sRGB (clipped, rounded)."""
    import cv2

    lab = np.asarray(lab, dtype=np.float32)
    flat = lab.reshape(-1, lab.shape[-2], 3)
    rgb = cv2.cvtColor(flat, cv2.COLOR_Lab2RGB).reshape(lab.shape)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _small(frame: np.ndarray) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    scale = STATS_SIDE / min(h, w)
    if scale >= 1.0:
        return frame
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(np.ascontiguousarray(frame), size, interpolation=cv2.INTER_AREA)


def lab_stats(frames: np.ndarray) -> LabStats:
    """CIELAB statistics of ``[N, H, W, 3]`` (or one ``[H, W, 3]``) uint8
    frames: up to `STATS_FRAMES` of them, uniformly, at `STATS_SIDE`."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be [N, H, W, 3] uint8, got {frames.shape}")
    idx = np.unique(np.linspace(0, len(frames) - 1, STATS_FRAMES).round().astype(int))
    pixels = np.concatenate(
        [to_lab(_small(frames[i])).reshape(-1, 3) for i in idx]
    ).astype(np.float64)
    return LabStats(pixels.mean(axis=0), np.cov(pixels, rowvar=False))


def _sqrtm(m: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((m + m.T) / 2)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


def color_map(
    source: LabStats, target: LabStats, method: Method
) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` of the affine map ``lab @ A + b`` from ``source`` to ``target``.

    >>> s = LabStats(np.array([50.0, 0, 0]), np.diag([4.0, 1.0, 1.0]))
    >>> t = LabStats(np.array([60.0, 5, 0]), np.diag([16.0, 1.0, 1.0]))
    >>> a, b = color_map(s, t, "reinhard")
    >>> (np.array([52.0, 0, 0]) @ a + b).round(3).tolist()
    [64.0, 5.0, 0.0]
    """
    if method == "reinhard":
        scale = target.std / np.maximum(source.std, _EPS)
        a = np.diag(scale)
    elif method == "mkl":
        cs = source.cov + np.eye(3) * _EPS
        root = _sqrtm(cs)
        inv_root = np.linalg.inv(root)
        a = inv_root @ _sqrtm(root @ target.cov @ root) @ inv_root
        a = a.T  # row vectors: lab @ A
    else:
        raise ValueError(f"method must be reinhard or mkl, got {method!r}")
    return a, target.mean - source.mean @ a


def transfer(
    frames: np.ndarray,
    target: LabStats,
    *,
    method: Method = "reinhard",
    strength: float = 1.0,
    source: LabStats | None = None,
) -> np.ndarray:
    """``frames`` ``[N, H, W, 3]`` uint8 with their colours moved toward
    ``target`` by ``strength`` (module docstring); ``source``: their own
    statistics when already known."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    frames = np.asarray(frames)
    if strength == 0.0:  # no pull: the frames as they are (no colour round trip)
        return frames.copy()
    source = source or lab_stats(frames)
    a, b = color_map(source, target, method)
    # blend in CIELAB: x + s (x A + b - x) = x ((1 - s) I + s A) + s b
    a = (1.0 - strength) * np.eye(3) + strength * a
    b = strength * b
    import cv2

    # cv2.transform applies ``M @ [L, a, b, 1]`` per pixel: M = [A^T | b]
    affine = np.hstack([a.T, b[:, None]]).astype(np.float32)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):  # one frame at a time: bounded memory
        out[i] = from_lab(cv2.transform(to_lab(frame), affine))
    return out
