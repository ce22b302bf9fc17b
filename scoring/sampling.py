"""Which frames of a take the semantic metrics see.

The encoders look at a fixed number of frames spread uniformly over the take,
first and last included, so the cost per take does not grow with its length
(VBench samples frames the same way for its slower dimensions). Pixel metrics
use every frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_SAMPLES", "sample_indices", "sample_frames"]

DEFAULT_SAMPLES = 16


def sample_indices(num_frames: int, count: int = DEFAULT_SAMPLES) -> np.ndarray:
    """``count`` distinct frame indices, uniform, first and last included.

    Every frame when the take has no more than ``count``.

    >>> sample_indices(49, 5).tolist()
    [0, 12, 24, 36, 48]
    >>> sample_indices(3, 16).tolist()
    [0, 1, 2]
    """
    if num_frames < 1:
        raise ValueError(f"a take has at least one frame, got num_frames={num_frames}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if num_frames <= count:
        return np.arange(num_frames)
    if count == 1:
        return np.array([0])
    # spacing (num_frames - 1) / (count - 1) > 1, so rounding keeps them distinct
    return np.linspace(0, num_frames - 1, count).round().astype(np.int64)


def sample_frames(
    frames: np.ndarray, count: int = DEFAULT_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, frames[indices])`` for ``[F, H, W, 3]`` frames."""
    idx = sample_indices(len(frames), count)
    return idx, frames[idx]
