"""What a take's colour is held to: its line's anchor, or its predecessor.

A story line's anchor (for ``line_color_drift`` and for correction ``line``)
is the scene's environment's first reference image where one is set (the
look the user chose for that place), else the first scene of the scene's
story-so-far path (`kg.graph.ancestor_path`), as its selected take's first
frame; the first scene is its own anchor. With correction ``scene`` a take
is held to the take it continues from (its last frame), and nothing after a
cut.

`ColorAnchor` carries what a correction needs, computed before generation:
the anchor's CIELAB statistics (pixel transfer, `engine.color.transfer`)
and, for latent backends, the per-channel mean and spread of its tail
latents (the AdaIN pull, `engine.backends.diffusers.adain`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from engine.color.transfer import LabStats, Method, lab_stats
from engine.continuity import ContinuityPlan, load_tail_latents
from engine.video import read_png
from kg.errors import StoryError
from kg.graph import DynamicSceneGraph, ancestor_path
from kg.paths import resolve_asset
from kg.schema import Story, Take, TakeRef

if TYPE_CHECKING:
    import torch

__all__ = [
    "ANCHOR_FRAMES",
    "ColorAnchor",
    "line_anchor",
    "line_anchor_frames",
    "plan_color_anchor",
]

log = logging.getLogger(__name__)

ANCHOR_FRAMES = 4  # a take that anchors itself: its first frames


@dataclass(frozen=True)
class ColorAnchor:
    """The anchor a new take is corrected toward, and how strongly.

    ``pixel``: the anchor's CIELAB statistics (None: none readable);
    ``latent_mean``/``latent_std``: ``[C]`` per-channel statistics of the
    anchor's normalised tail latents (None: not a latent backend, or the
    anchor has none); ``anchor_take``/``anchor_image``: what it is.
    """

    mode: Literal["line", "scene"]
    method: Method
    strength: float
    pixel: LabStats | None = None
    latent_mean: torch.Tensor | None = None
    latent_std: torch.Tensor | None = None
    anchor_take: TakeRef | None = None
    anchor_image: str | None = None

    def key(self) -> dict[str, object]:
        """What decides the correction, for the take cache key."""
        return {
            "mode": self.mode,
            "method": self.method,
            "strength": self.strength,
            "take": self.anchor_take.model_dump() if self.anchor_take else None,
            "image": self.anchor_image,
        }


def line_anchor(story: Story, scene_id: str) -> tuple[str | None, str]:
    """``(reference image, first scene)`` of ``scene_id``'s line: the image
    (relative path) of its environment where one is set, else None; and the
    first scene of its story-so-far path."""
    scene = story.scene(scene_id)
    if scene.environment_id:
        env = story.environment(scene.environment_id)
        if env.reference_images:
            return env.reference_images[0], scene_id
    return None, ancestor_path(DynamicSceneGraph(story), scene_id)[0]


def _done_take(story: Story, scene_id: str) -> Take | None:
    take = story.scene(scene_id).selected
    return take if take is not None and take.status == "done" else None


def _read_frame(story_dir: Path, rel: str | None, what: str) -> np.ndarray | None:
    if not rel:
        return None
    try:
        return read_png(resolve_asset(story_dir, rel), what)
    except (OSError, ValueError, StoryError) as exc:
        log.warning("colour anchor: cannot read %s (%s)", rel, exc)
        return None


def line_anchor_frames(
    story_dir: str | os.PathLike[str],
    story: Story,
    scene_id: str,
    frames: np.ndarray,
) -> np.ndarray | None:
    """The anchor ``[N, H, W, 3]`` uint8 of ``scene_id``'s line, for its
    colour drift (``frames``: this take's, used when it anchors itself);
    None when the anchor has no take or image to read."""
    story_dir = Path(story_dir)
    image, first = line_anchor(story, scene_id)
    if image is not None:
        frame = _read_frame(story_dir, image, "environment reference image")
        return None if frame is None else frame[None]
    if first == scene_id:
        return np.asarray(frames[:ANCHOR_FRAMES])
    take = _done_take(story, first)
    if take is None:
        return None
    frame = _read_frame(story_dir, take.files.first_frame, f"first frame of {first!r}")
    return None if frame is None else frame[None]


def _latent_stats(
    story_dir: Path, take: Take | None
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Per-channel mean and spread ``[C]`` of a take's tail latents."""
    if take is None or not take.files.tail_latents:
        return None, None
    try:
        path = resolve_asset(story_dir, take.files.tail_latents)
        latents, _ = load_tail_latents(path)
    except (OSError, ValueError, StoryError) as exc:
        log.warning("colour anchor: no tail latents (%s)", exc)
        return None, None
    flat = latents.float().transpose(0, 1).reshape(latents.shape[1], -1)  # [C, N]
    return flat.mean(dim=1), flat.std(dim=1)


def plan_color_anchor(
    story_dir: str | os.PathLike[str],
    story: Story,
    scene_id: str,
    plan: ContinuityPlan,
    *,
    latent: bool,
) -> ColorAnchor | None:
    """The anchor a new take of ``scene_id`` is corrected toward under
    ``settings.color``; None when correction is off, the strength is 0, or
    there is nothing to hold it to (a line's first scene, a cut in
    ``scene`` mode, an anchor without a readable take). ``latent``: the
    backend pulls latents (then the anchor's latent statistics are read)."""
    color = story.settings.color
    if color.correction == "off" or color.strength == 0.0:
        return None
    story_dir = Path(story_dir)
    image, ref, pixel_frame = None, None, None
    take: Take | None = None
    if color.correction == "line":
        image, first = line_anchor(story, scene_id)
        if image is not None:
            pixel_frame = _read_frame(story_dir, image, "environment reference image")
        elif first != scene_id and (take := _done_take(story, first)) is not None:
            ref = TakeRef(scene_id=first, take=take.index)
            pixel_frame = _read_frame(
                story_dir, take.files.first_frame, f"first frame of {first!r}"
            )
    elif plan.source is not None:
        ref = plan.source
        take = story.scene(ref.scene_id).take(ref.take)
        pixel_frame = plan.previous_last_frame
    mean, std = None, None
    if latent and image is None:
        mean, std = _latent_stats(story_dir, take)
    if pixel_frame is None and mean is None:
        return None
    return ColorAnchor(
        mode=color.correction,
        method=color.method,
        strength=color.strength,
        pixel=None if pixel_frame is None else lab_stats(pixel_frame),
        latent_mean=mean,
        latent_std=std,
        anchor_take=ref,
        anchor_image=image,
    )
