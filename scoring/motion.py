"""Motion metrics from dense optical flow (OpenCV's DIS): how much a clip
moves, whether it is frozen, and whether a continuous join flows.

- `dynamic_degree` follows VBench (Huang et al., 2024, ``dynamic_degree.py``):
  frames sampled at about 8 fps (every ``round(fps / 8)``-th), per consecutive
  pair the mean of the largest 5 % of flow magnitudes, and the clip counts as
  dynamic (1.0, else 0.0) when at least ``round(4 * n_frames / 16)`` pairs
  exceed ``6 * short_side / 256`` pixels (``DynamicDegree.set_params`` and
  ``check_move``), at every frame rate.
- `motion`: the mean of those per-pair values, in pixels of a 256-pixel
  short side (comparable across sizes).
- `static`: no sampled pair moves more than `STATIC_PX` (in the same units):
  a frozen clip, such as chained image conditioning tends to make.
- `seam_flow`: the flow across a continuous join (the previous take's last
  frame to this take's first new frame) against the mean of the flow just
  before it (the previous take's last two frames) and just after it (this
  take's first two new frames), each plus `SEAM_EPS_PX`:
  ``(across + eps) / (mean(before, after) + eps)``. About 1 when the cut
  flows (a still stays still, a pan keeps its pace), large when it jumps.

Where this departs from VBench: the flow is OpenCV's DIS
(``cv2.DISOpticalFlow``, Kroeger et al., 2016; medium preset) instead of
RAFT, so no weights are needed and it runs on the CPU; frames are scaled so
the short side is 256 pixels before the flow (VBench runs RAFT at full size
and scales its threshold by the size instead, which is the same threshold
here). DIS underestimates very large displacements and textureless motion
that RAFT catches, so borderline clips may count as static here.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FLOW_SIDE",
    "STATIC_PX",
    "SEAM_EPS_PX",
    "flow_magnitude",
    "sample_step",
    "pair_motion",
    "dynamic_degree",
    "motion",
    "is_static",
    "seam_flow",
]

FLOW_SIDE = 256  # short side the flow runs at (VBench's reference scale)
TOP_FRACTION = 0.05  # VBench: the mean of the largest 5 % of magnitudes
STATIC_PX = 0.5  # no pair moves more than half a pixel: frozen
SEAM_EPS_PX = 1.0  # keeps the seam ratio near 1 between two still shots


def _gray(frame: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB as grey, scaled so the short side is `FLOW_SIDE`."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    scale = FLOW_SIDE / min(h, w)
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        grey = cv2.resize(grey, size, interpolation=interp)
    return grey


def flow_magnitude(a: np.ndarray, b: np.ndarray) -> float:
    """VBench's per-pair motion: the mean of the largest 5 % of the flow
    magnitudes from frame ``a`` to frame ``b``, in pixels at `FLOW_SIDE`."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(_gray(a), _gray(b), None)  # [H, W, 2]
    rad = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2).ravel()
    top = max(1, int(rad.size * TOP_FRACTION))
    return float(np.partition(rad, rad.size - top)[-top:].mean())


def sample_step(fps: float) -> int:
    """VBench samples every ``round(fps / 8)``-th frame (about 8 fps)."""
    return max(1, round(fps / 8))


def pair_motion(frames: np.ndarray, fps: float) -> list[float]:
    """`flow_magnitude` of each consecutive pair of the sampled frames."""
    sampled = frames[:: sample_step(fps)]
    return [
        flow_magnitude(a, b) for a, b in zip(sampled[:-1], sampled[1:], strict=True)
    ]


def dynamic_degree(pairs: list[float], n_sampled: int, fps: float) -> float | None:
    """1.0 when the clip moves by VBench's rule (module docstring), else 0.0;
    None for fewer than two sampled frames.

    ``fps`` is kept for callers; VBench's threshold does not depend on it.

    >>> # 8 sampled frames at 8 fps: two pairs over 6 px make a clip dynamic
    >>> dynamic_degree([7.0, 7.0, 0.0], 8, 8.0), dynamic_degree([7.0, 0, 0], 8, 8.0)
    (1.0, 0.0)
    """
    if not pairs:
        return None
    # VBench: thres = 6.0 * (scale / 256.0); the flow runs at a 256-pixel
    # short side (`FLOW_SIDE`), so scale / 256 is 1 here
    threshold = 6.0
    need = round(4 * n_sampled / 16)
    moving = sum(score > threshold for score in pairs)
    return 1.0 if moving >= need else 0.0


def motion(pairs: list[float]) -> float | None:
    """The mean per-pair motion; None without a pair."""
    return float(np.mean(pairs)) if pairs else None


def is_static(pairs: list[float]) -> bool | None:
    """True when no sampled pair moves more than `STATIC_PX`."""
    return bool(max(pairs) <= STATIC_PX) if pairs else None


def seam_flow(previous_tail: np.ndarray, head: np.ndarray) -> float | None:
    """Flow across a join against the flow on either side of it.

    ``previous_tail`` holds the previous take's last two frames, ``head`` this
    take's first two new frames (after the ones it repeats), all
    ``[H, W, 3]`` uint8 of one size. None when either has fewer than two.

    >>> still = np.full((2, 64, 64, 3), 90, np.uint8)
    >>> round(seam_flow(still, still), 3)
    1.0
    """
    if len(previous_tail) < 2 or len(head) < 2:
        return None
    before = flow_magnitude(previous_tail[-2], previous_tail[-1])
    across = flow_magnitude(previous_tail[-1], head[0])
    after = flow_magnitude(head[0], head[1])
    return (across + SEAM_EPS_PX) / ((before + after) / 2 + SEAM_EPS_PX)
