"""Which frames of a take the semantic metrics see.

By default the encoders see every frame, as VBench's subject and background
consistency do (``vbench/subject_consistency.py`` and
``vbench/background_consistency.py`` encode every frame ``load_video``
returns). An observer may be given a fixed count instead (``count``): that
many frames spread uniformly over the take, first and last included, so the
cost per take does not grow with its length; the take's embeddings file then
records the sampled indices (``frame_indices``) and ``consistency_frames``
("every", or "16 of 121"). Pixel metrics use every frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_SAMPLES", "sample_indices", "sample_frames"]

DEFAULT_SAMPLES = 16


def sample_indices(num_frames: int, count: int | None = DEFAULT_SAMPLES) -> np.ndarray:
    """``count`` distinct frame indices, uniform, first and last included.

    Every frame when the take has no more than ``count``, or ``count`` is None.

    >>> sample_indices(49, 5).tolist()
    [0, 12, 24, 36, 48]
    >>> sample_indices(3, 16).tolist(), sample_indices(4, None).tolist()
    ([0, 1, 2], [0, 1, 2, 3])
    """
    if num_frames < 1:
        raise ValueError(f"a take has at least one frame, got num_frames={num_frames}")
    if count is not None and count < 1:
        raise ValueError(
            f"count must be at least 1 (or None: every frame), got {count}"
        )
    if count is None or num_frames <= count:
        return np.arange(num_frames)
    if count == 1:
        return np.array([0])
    # spacing (num_frames - 1) / (count - 1) > 1, so rounding keeps them distinct
    return np.linspace(0, num_frames - 1, count).round().astype(np.int64)


def sample_frames(
    frames: np.ndarray, count: int | None = DEFAULT_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, frames[indices])`` for ``[F, H, W, 3]`` frames."""
    idx = sample_indices(len(frames), count)
    return idx, frames[idx]
