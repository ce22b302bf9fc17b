"""The window rules of long takes: window size and overlap, with the nearest fix.

A model with a fixed window (LTX-Video) makes a longer take as overlapping
windows. A window is ``8k + 1`` pixel frames (the causal VAE's rule: one
frame, then 8 per latent frame); the overlap is whole latent frames (a
multiple of 8, at least 8) and leaves every window at least one new latent
frame. The story's settings are checked against these rules on load and on
edit, and the backend checks its request against the same function.
"""

from __future__ import annotations

__all__ = [
    "TEMPORAL",
    "MIN_WINDOW_FRAMES",
    "MAX_WINDOW_FRAMES",
    "window_problems",
    "window_count",
]

TEMPORAL = 8  # pixel frames per latent frame after the first
MIN_WINDOW_FRAMES = 17
MAX_WINDOW_FRAMES = 1025


def _nearest_window(frames: int) -> str:
    low = max(MIN_WINDOW_FRAMES, (frames - 1) // TEMPORAL * TEMPORAL + 1)
    low = min(low, MAX_WINDOW_FRAMES)
    high = min(MAX_WINDOW_FRAMES, low + TEMPORAL)
    return f"{low}" if low == high else f"{low} or {high}"


def window_problems(
    window_frames: int, overlap_frames: int, prefix: str = "windows."
) -> list[str]:
    """What is wrong with a window size and overlap, each naming the field and a fix.

    >>> window_problems(121, 24)
    []
    >>> window_problems(120, 24)[0]
    'windows.frames must be 8k + 1 (17 to 1025), got 120; nearest valid: 113 or 121'
    >>> print(window_problems(121, 121)[0])  # doctest: +NORMALIZE_WHITESPACE
    windows.overlap_frames must be a multiple of 8 from 8 to 112 (smaller than
    the window of 121 frames), got 121; nearest valid: 112
    """
    problems = []
    if (
        not MIN_WINDOW_FRAMES <= window_frames <= MAX_WINDOW_FRAMES
        or (window_frames - 1) % TEMPORAL
    ):
        problems.append(
            f"{prefix}frames must be {TEMPORAL}k + 1 ({MIN_WINDOW_FRAMES} to "
            f"{MAX_WINDOW_FRAMES}), got {window_frames}; nearest valid: "
            f"{_nearest_window(window_frames)}"
        )
        return problems
    largest = window_frames - 1 - TEMPORAL  # one new latent frame per window
    if not TEMPORAL <= overlap_frames <= largest or overlap_frames % TEMPORAL:
        nearest = min(largest, max(TEMPORAL, round(overlap_frames / TEMPORAL) * 8))
        problems.append(
            f"{prefix}overlap_frames must be a multiple of {TEMPORAL} from "
            f"{TEMPORAL} to {largest} (smaller than the window of {window_frames} "
            f"frames), got {overlap_frames}; nearest valid: {nearest}"
        )
    return problems


def window_count(num_frames: int, window_frames: int, overlap_frames: int) -> int:
    """Windows a take of ``num_frames`` needs (1 when it fits in one).

    The same split as the sampler's (diffusers' ``split_into_temporal_windows``
    in latent frames).

    >>> window_count(49, 121, 24), window_count(281, 121, 24)
    (1, 3)
    """
    latents = (max(1, num_frames) - 1) // TEMPORAL + 1
    size = (window_frames - 1) // TEMPORAL + 1
    stride = max(size - overlap_frames // TEMPORAL, 1)
    count, start = 1, 0
    while start + size < latents:
        start += stride
        count += 1
    return count
