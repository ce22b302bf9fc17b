"""The window rules of long takes: window size and overlap, with the nearest fix.

A model with a fixed window (LTX-Video) makes a longer take as overlapping
windows. With a causal VAE of temporal ratio ``t`` (the backend's, from
`engine.catalog`; 8 for the LTX families) a window is ``t*k + 1`` pixel
frames (one frame, then ``t`` per latent frame); the overlap is whole latent
frames (a multiple of ``t``, at least ``t``) and leaves every window at least
one new latent frame. The ratio belongs to the backend, not to the story: the
story's settings are checked against the chosen backend's ratio when they are
saved and before generation, and the backend checks its request against the
same function.
"""

from __future__ import annotations

__all__ = [
    "MIN_WINDOW_FRAMES",
    "MAX_WINDOW_FRAMES",
    "window_problems",
    "window_count",
]

MIN_WINDOW_FRAMES = 17
MAX_WINDOW_FRAMES = 1025


def _nearest_window(frames: int, temporal: int) -> str:
    low = max(MIN_WINDOW_FRAMES, (frames - 1) // temporal * temporal + 1)
    low = min(low, MAX_WINDOW_FRAMES)
    high = min(MAX_WINDOW_FRAMES, low + temporal)
    return f"{low}" if low == high else f"{low} or {high}"


def window_problems(
    window_frames: int,
    overlap_frames: int,
    prefix: str = "windows.",
    *,
    temporal: int,
) -> list[str]:
    """What is wrong with a window size and overlap, each naming the field and a fix.

    >>> window_problems(121, 24, temporal=8)
    []
    >>> window_problems(120, 24, temporal=8)[0]
    'windows.frames must be 8k + 1 (17 to 1025), got 120; nearest valid: 113 or 121'
    >>> problems = window_problems(121, 121, temporal=8)
    >>> print(problems[0])  # doctest: +NORMALIZE_WHITESPACE
    windows.overlap_frames must be a multiple of 8 from 8 to 112 (smaller than
    the window of 121 frames), got 121; nearest valid: 112
    """
    problems = []
    if (
        not MIN_WINDOW_FRAMES <= window_frames <= MAX_WINDOW_FRAMES
        or (window_frames - 1) % temporal
    ):
        problems.append(
            f"{prefix}frames must be {temporal}k + 1 ({MIN_WINDOW_FRAMES} to "
            f"{MAX_WINDOW_FRAMES}), got {window_frames}; nearest valid: "
            f"{_nearest_window(window_frames, temporal)}"
        )
        return problems
    largest = window_frames - 1 - temporal  # one new latent frame per window
    if not temporal <= overlap_frames <= largest or overlap_frames % temporal:
        multiple = round(overlap_frames / temporal) * temporal
        nearest = min(largest, max(temporal, multiple))
        problems.append(
            f"{prefix}overlap_frames must be a multiple of {temporal} from "
            f"{temporal} to {largest} (smaller than the window of {window_frames} "
            f"frames), got {overlap_frames}; nearest valid: {nearest}"
        )
    return problems


def window_count(
    num_frames: int, window_frames: int, overlap_frames: int, *, temporal: int
) -> int:
    """Windows a take of ``num_frames`` needs (1 when it fits in one).

    The same split as the sampler's (diffusers' ``split_into_temporal_windows``
    in latent frames).

    >>> window_count(49, 121, 24, temporal=8), window_count(281, 121, 24, temporal=8)
    (1, 3)
    """
    latents = (max(1, num_frames) - 1) // temporal + 1
    size = (window_frames - 1) // temporal + 1
    stride = max(size - overlap_frames // temporal, 1)
    count, start = 1, 0
    while start + size < latents:
        start += stride
        count += 1
    return count
