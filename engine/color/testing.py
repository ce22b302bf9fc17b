"""A backend that drifts in colour by a fixed amount per scene, for tests and
the drift benchmark (``bench/bench_drift.py``), and a straight story line.

`DriftingBackend` continues from the previous take's last frame, as frame
backends do, and shifts it by a fixed CIELAB step (``lightness``, ``a``,
``b``): the clip repeats what it was given, a little brighter and warmer,
the way the VAE round trip of a pixel tail drifts a chained clip. Without
correction a line's colour drift grows by the same step at every scene;
nothing is random, so a figure is reproducible.
"""

from __future__ import annotations

import numpy as np

from engine.backend import (
    CancelToken,
    GenerationRequest,
    GenerationResult,
    ProgressFn,
    VideoBackend,
)
from engine.color.transfer import from_lab, to_lab
from kg.schema import SceneEdge, SceneNode, Story

__all__ = ["DriftingBackend", "base_frame", "line_story"]


def base_frame(width: int, height: int) -> np.ndarray:
    """``[H, W, 3]`` uint8: hues across, lightness down (a colourful still)."""
    y, x = np.mgrid[0:height, 0:width]
    lab = np.stack(
        [
            40.0 + 20.0 * y / max(1, height - 1),
            18.0 * np.cos(np.pi * x / max(1, width - 1)),
            18.0 * np.sin(np.pi * x / max(1, width - 1)),
        ],
        axis=-1,
    )
    return from_lab(lab)


class DriftingBackend(VideoBackend):
    """Each take: the carried last frame (else `base_frame`) shifted by a
    fixed CIELAB step, held for the take's frames."""

    name = "drifting"
    version = "1"

    def __init__(self, lightness: float = 1.0, a: float = 1.0, b: float = 0.0):
        self.step = np.array([lightness, a, b], np.float32)

    def generate(
        self, request: GenerationRequest, progress: ProgressFn, cancel: CancelToken
    ) -> GenerationResult:
        carried = request.continuity
        start = carried.last_frame if carried is not None else None
        if start is None:
            start = base_frame(request.width, request.height)
        frame = from_lab(to_lab(start) + self.step)
        progress(1, 1)
        return GenerationResult(
            frames=np.repeat(frame[None], request.num_frames, axis=0),
            continuity_used="frame" if start is not None and carried else "none",
        )


def line_story(scenes: int, *, correction: str = "off", size: int = 64) -> Story:
    """A straight line of ``scenes`` continuous scenes (``s1``, ``s2``...),
    ``size`` x ``size`` pixels, 8 frames at 8 fps, frame continuity."""
    story = Story(
        title="A drifting line",
        scenes=[
            SceneNode(id=f"s{i}", title=f"Scene {i}", num_frames=8)
            for i in range(1, scenes + 1)
        ],
        edges=[SceneEdge(source=f"s{i}", target=f"s{i + 1}") for i in range(1, scenes)],
    )
    story.settings.width = story.settings.height = size
    story.settings.fps = 8
    story.settings.continuity_mode = "frame"
    story.settings.color.correction = correction  # type: ignore[assignment]
    return story
