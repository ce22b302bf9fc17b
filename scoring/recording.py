"""Writing a take's scores: one metric at a time, and why any is missing.

A score that comes out NaN or infinite is recorded as unavailable with the
reason; a metric whose code fails says so in ``Scores.unavailable`` instead of
failing the take. The optical-flow motion of a take and across its join
(`scoring.motion`) is scored here too, for the observer (`scoring.observer`).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from kg.fields import clip_message
from kg.metrics import needing
from kg.observation import ObservationRequest
from kg.schema import Scores
from scoring import motion

__all__ = [
    "ONE_FRAME",
    "NO_PREVIOUS",
    "NO_NEW_FRAME",
    "join_frame_index",
    "MOTION_METRICS",
    "resize_frame",
    "put_score",
    "failure_message",
    "record_failure",
    "score_motion",
]

log = logging.getLogger(__name__)


ONE_FRAME = "the take has one frame; needs two"


NO_PREVIOUS = "no previous take (first scene, or a cut)"


NO_NEW_FRAME = "no new frame after the join (every frame repeats the previous take)"


def join_frame_index(num_frames: int, overlap_frames: int) -> int | None:
    """The first frame a film shows of a take after a continuous join.

    A take's first ``overlap_frames`` repeat its predecessor and are skipped
    in playback (`engine.film`), so the seam metrics compare the previous
    take's last frame with frame ``overlap_frames``; None when the take has
    no frame after them.

    >>> join_frame_index(49, 0), join_frame_index(49, 17), join_frame_index(5, 5)
    (0, 17, None)
    """
    if overlap_frames < 0:
        raise ValueError(f"overlap_frames must be 0 or more, got {overlap_frames}")
    return overlap_frames if overlap_frames < num_frames else None


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ``[H, W, 3]`` uint8 frame resized to ``height`` x ``width`` (bilinear)."""
    if frame.shape[:2] == (height, width):
        return frame
    from PIL import Image

    img = Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def put_score(s: Scores, metric: str, value: float | None) -> None:
    """Set a score; a NaN or infinite one (e.g. a blank clip) is recorded as why."""
    if value is None:
        setattr(s, metric, None)
        return
    value = float(value)
    if math.isfinite(value):
        setattr(s, metric, value)
    else:
        s.unavailable[metric] = (
            f"the metric came out as {value} for this take (a blank or constant "
            "clip?); nothing to compare"
        )


def failure_message(exc: BaseException) -> str:
    return clip_message(f"scoring failed ({type(exc).__name__}: {exc}); see the log")


# The optical-flow metrics of the take's own frames, and the frozen-clip flag.
MOTION_METRICS = (
    *(m.name for m in needing("flow") if not m.at_join),
    "static",
)


def score_motion(s: Scores, request: ObservationRequest, frames: np.ndarray) -> None:
    """Optical-flow motion of the clip and across its join (`scoring.motion`)."""
    try:
        pairs = motion.pair_motion(frames, request.fps)
        n_sampled = len(frames[:: motion.sample_step(request.fps)])
        put_score(
            s, "dynamic_degree", motion.dynamic_degree(pairs, n_sampled, request.fps)
        )
        put_score(s, "motion", motion.motion(pairs))
        s.static = motion.is_static(pairs)
        if not pairs:
            for name in MOTION_METRICS:
                s.unavailable[name] = ONE_FRAME
    except Exception as exc:
        record_failure(s, "optical flow", MOTION_METRICS, exc)
    tail = request.previous_tail
    head = frames[request.overlap_frames : request.overlap_frames + 2]
    if tail is None or len(tail) < 2:
        s.unavailable["seam_flow"] = NO_PREVIOUS
        return
    if len(head) < 2:
        s.unavailable["seam_flow"] = "fewer than two new frames after the join"
        return
    _, height, width, _ = frames.shape
    tail = np.stack([resize_frame(np.asarray(f), height, width) for f in tail[-2:]])
    try:
        put_score(s, "seam_flow", motion.seam_flow(tail, head))
    except Exception as exc:
        record_failure(s, "optical flow", ("seam_flow",), exc)


def record_failure(
    s: Scores,
    what: str,
    metric_names: tuple[str, ...],
    exc: BaseException,
    *,
    missing_only: bool = False,
) -> None:
    """``what`` failed: each of its metrics (only those not yet computed, with
    ``missing_only``) says why in ``Scores.unavailable``."""
    log.exception("%s failed", what, exc_info=exc)
    for metric in metric_names:
        if not missing_only or getattr(s, metric) is None:
            s.unavailable[metric] = failure_message(exc)
