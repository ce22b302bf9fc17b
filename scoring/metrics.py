"""Per-take metrics, as defined in DESIGN.md (Scoring), on features and frames.

Pure numpy functions; the observer feeds them encoder features and uint8 frames.

- `clip_score`: CLIPScore (Hessel et al., 2021), ``w * max(cos, 0)`` with
  ``w = 2.5``, clamped per frame, averaged over the frames.
- `vbench_consistency`: VBench's subject/background consistency (Huang et al.,
  2024): the mean over frames ``t > 1`` of
  ``(max(0, cos(f[t-1], f[t])) + max(0, cos(f[1], f[t]))) / 2``. On DINO
  features it is ``subject_consistency``, on CLIP image features
  ``background_consistency``.
- `temporal_flicker`: VBench's pixel formula,
  ``(255 - mean_t mean |f[t] - f[t+1]|) / 255`` on uint8 frames.
- `seam_cosine` / `seam_pixel_mae`: the previous take's last frame against this
  take's first frame.
- `character_consistency`: how close the frames come to a character's reference
  images: for each frame the best cosine over the references (clamped at 0),
  averaged over the frames, in the spirit of DreamBooth's DINO score.

A metric that is not defined for its input (one frame, no references) returns
``None``; VBench itself divides by zero there.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CLIP_SCORE_WEIGHT",
    "cosine_matrix",
    "clip_score",
    "vbench_consistency",
    "subject_consistency",
    "background_consistency",
    "temporal_flicker",
    "seam_cosine",
    "seam_pixel_mae",
    "character_consistency",
]

CLIP_SCORE_WEIGHT = 2.5  # CLIPScore's w: rescales cosines to roughly [0, 1]


def _unit(x: ArrayLike) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    norm = np.linalg.norm(a, axis=-1, keepdims=True)
    return a / np.maximum(norm, 1e-12)


def cosine_matrix(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Cosine of every row of ``a`` ``[N, D]`` with every row of ``b`` ``[M, D]``.

    >>> cosine_matrix([[1, 0]], [[1, 0], [0, 2], [-3, 0]]).round(3).tolist()
    [[1.0, 0.0, -1.0]]
    """
    return _unit(a) @ _unit(b).T


def clip_score(
    image_features: ArrayLike, text_feature: ArrayLike, w: float = CLIP_SCORE_WEIGHT
) -> float:
    """CLIPScore of frames ``[N, D]`` against one text feature ``[D]``.

    >>> clip_score([[1, 0], [0, 1], [-1, 0]], [1, 0])  # cosines 1, 0, -1
    0.8333333333333334
    """
    cos = cosine_matrix(image_features, text_feature)[:, 0]
    if cos.size == 0:
        raise ValueError("clip_score needs at least one frame feature")
    return float(np.mean(w * np.maximum(cos, 0.0)))


def vbench_consistency(features: ArrayLike) -> float | None:
    """VBench consistency of per-frame features ``[N, D]``; ``None`` for one frame.

    >>> vbench_consistency([[1, 0], [1, 0], [0, 1]])  # (1+1)/2, (0+0)/2
    0.5
    """
    f = _unit(features)
    if len(f) < 2:
        return None
    to_previous = np.maximum(np.sum(f[1:] * f[:-1], axis=-1), 0.0)
    to_first = np.maximum(f[1:] @ f[0], 0.0)
    return float(np.mean((to_previous + to_first) / 2.0))


def subject_consistency(dino_features: ArrayLike) -> float | None:
    """VBench subject consistency: `vbench_consistency` on DINO features."""
    return vbench_consistency(dino_features)


def background_consistency(clip_image_features: ArrayLike) -> float | None:
    """VBench background consistency: `vbench_consistency` on CLIP image features."""
    return vbench_consistency(clip_image_features)


def _check_frames(frames: np.ndarray, what: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4:
        raise ValueError(
            f"{what} must be [F, H, W, C] uint8, got {frames.shape} {frames.dtype}"
        )
    return frames


def temporal_flicker(frames: np.ndarray) -> float | None:
    """VBench temporal flicker of uint8 frames ``[F, H, W, C]``; 1 is no change.

    ``None`` for a single frame.

    >>> f = np.zeros((3, 2, 2, 3), np.uint8); f[1] = 51
    >>> temporal_flicker(f)  # differences 51 and 51
    0.8
    """
    frames = _check_frames(frames, "frames")
    if len(frames) < 2:
        return None
    # |a - b| as max - min stays in uint8 (no wraparound, no int16 copy), one
    # pair at a time; every pair has the same size, so the mean of the pair
    # means is the mean over all pairs
    total = 0
    for t in range(len(frames) - 1):
        a, b = frames[t], frames[t + 1]
        diff = np.maximum(a, b)
        diff -= np.minimum(a, b)
        total += int(diff.sum(dtype=np.uint64))
    mean_abs_diff = total / ((len(frames) - 1) * frames[0].size)
    return float((255.0 - mean_abs_diff) / 255.0)


def seam_cosine(previous_last: ArrayLike, first: ArrayLike) -> float:
    """Cosine of the previous take's last-frame feature and this take's first."""
    return float(cosine_matrix(previous_last, first)[0, 0])


def seam_pixel_mae(previous_last: np.ndarray, first: np.ndarray) -> float:
    """Mean absolute difference of two uint8 frames ``[H, W, C]``, in 0..255.

    >>> seam_pixel_mae(np.full((2, 2, 3), 10, np.uint8), np.zeros((2, 2, 3), np.uint8))
    10.0
    """
    a, b = np.asarray(previous_last), np.asarray(first)
    if a.shape != b.shape:
        raise ValueError(
            f"seam frames must have one shape, got {a.shape} and {b.shape}; "
            "resize the previous frame first"
        )
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def character_consistency(
    frame_features: ArrayLike, reference_features: ArrayLike
) -> float | None:
    """Best clamped cosine of each frame to the references, averaged over frames.

    ``None`` when there are no references.

    >>> character_consistency([[1, 0], [0, 1]], [[1, 0], [-1, 0]])  # best 1, 0
    0.5
    """
    refs = np.asarray(reference_features, dtype=np.float64)
    if refs.size == 0:
        return None
    cos = cosine_matrix(frame_features, refs)  # [N frames, M references]
    return float(np.mean(np.maximum(cos.max(axis=1), 0.0)))
