"""Continuity between scenes: what a scene carries over from the one before.

A scene on a ``continuous`` edge starts from its predecessor's selected take.
The story's ``continuity_mode`` asks for one of three ways, tried in order:

1. ``latent``: the tail latents the backend saved with that take
   (``take-<n>.latents.safetensors``), injected without a VAE round trip;
2. ``frame``: the take's last frame (``take-<n>.last.png``);
3. ``none``: nothing carried.

When the backend or the carried data cannot honour a mode, the next one is
used and `ContinuityPlan.note` says why; the take records both. Tail latents are
stored with safetensors only (never pickle), with a metadata dict of strings
(model, width, height...) that says what produced them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from engine.backend import ContinuityInput
from engine.catalog import CATALOG
from engine.errors import ContinuityError
from engine.video import last_frames, read_png
from kg.errors import StoryError
from kg.files import MAX_TENSOR_BYTES, check_story_file
from kg.graph import DynamicSceneGraph, continuity_predecessor
from kg.paths import atomic_path, resolve_asset
from kg.schema import Story, Take, TakeRef

if TYPE_CHECKING:
    import torch

__all__ = [
    "TAIL_LATENTS_KEY",
    "TAIL_AUDIO_KEY",
    "ContinuityError",
    "ContinuityPlan",
    "save_tail_latents",
    "load_tail_latents",
    "load_tail_audio",
    "plan_continuity",
    "wants_lead_frame",
]

log = logging.getLogger(__name__)

TAIL_LATENTS_KEY = "tail_latents"
# the audio stream's tail (backends with sound), beside the video tail
TAIL_AUDIO_KEY = "tail_audio_latents"
Mode = Literal["latent", "frame", "none"]


def save_tail_latents(
    path: str | os.PathLike[str],
    tensor: torch.Tensor,
    meta: dict[str, str],
    audio: torch.Tensor | None = None,
) -> Path:
    """Write tail latents ``[B, C, F, h, w]`` and string metadata, atomically;
    with ``audio``, the audio tail ``[B, n, D]`` beside them.

    Raises ``TypeError`` when a metadata value is not a string (safetensors
    stores strings only; convert numbers with ``str``).
    """
    from safetensors.torch import save_file

    bad = {k: type(v).__name__ for k, v in meta.items() if not isinstance(v, str)}
    if bad:
        raise TypeError(f"latent metadata values must be strings, got {bad}")
    final = Path(path)
    tensors = {TAIL_LATENTS_KEY: tensor.detach().to("cpu").contiguous()}
    if audio is not None:
        tensors[TAIL_AUDIO_KEY] = audio.detach().to("cpu").float().contiguous()
    with atomic_path(final) as tmp:
        save_file(tensors, str(tmp), metadata=dict(meta))
    return final


def load_tail_latents(
    path: str | os.PathLike[str],
) -> tuple[torch.Tensor, dict[str, str]]:
    """Read tail latents and their metadata written by `save_tail_latents`."""
    from safetensors import safe_open

    # a FIFO would block the memory map for good; safetensors checks the rest
    check_story_file(path, max_bytes=MAX_TENSOR_BYTES, what="tail latents")
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        if TAIL_LATENTS_KEY not in fh.keys():  # noqa: SIM118 - safe_open API
            raise ValueError(
                f"{path} holds no {TAIL_LATENTS_KEY!r} tensor; generate the "
                "previous scene again"
            )
        meta = dict(fh.metadata() or {})
        return fh.get_tensor(TAIL_LATENTS_KEY), meta


def load_tail_audio(path: str | os.PathLike[str]) -> torch.Tensor | None:
    """The audio tail saved beside the video tail, or None when there is none."""
    from safetensors import safe_open

    check_story_file(path, max_bytes=MAX_TENSOR_BYTES, what="tail latents")
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        if TAIL_AUDIO_KEY not in fh.keys():  # noqa: SIM118 - safe_open API
            return None
        return fh.get_tensor(TAIL_AUDIO_KEY)


@dataclass(frozen=True)
class ContinuityPlan:
    """What a scene starts from and why.

    ``requested`` is the story's mode; ``used`` the mode the engine can offer
    the backend (the backend may fall back further and say so in its result).
    ``previous_last_frame`` is kept for the observer's seam score even when
    nothing is carried.
    """

    requested: Mode
    used: Mode
    note: str = ""
    source: TakeRef | None = None
    input: ContinuityInput | None = None
    previous_last_frame: np.ndarray | None = None


def _latent_mismatch(meta: dict[str, str], width: int, height: int, model: str) -> str:
    """Why latents with this metadata cannot condition this request ("" if they can)."""
    for key, want in (("width", width), ("height", height)):
        if key in meta and meta[key] != str(want):
            return (
                f"tail latents were made at {key} {meta[key]}, this scene uses "
                f"{want}; continued from the last frame"
            )
    if model and meta.get("model") and meta["model"] != model:
        return (
            f"tail latents come from model {meta['model']!r}, this scene uses "
            f"{model!r}; continued from the last frame"
        )
    return ""


def _asset_file(story_dir: Path, rel: str | None) -> Path | None:
    """A take's file when it is a regular file inside the story, else None.

    A link (refused by `kg.paths`) counts as missing: its target is not read.
    """
    if not rel:
        return None
    try:
        path = resolve_asset(story_dir, rel)
        check_story_file(path, max_bytes=MAX_TENSOR_BYTES)
    except FileNotFoundError:
        return None
    except (StoryError, OSError) as exc:  # a link, a FIFO, a device, too large
        log.warning("not reading %s: %s", rel, exc)
        return None
    return path


def wants_lead_frame(backend: str) -> bool:
    """Whether the backend's spec fills the one-frame slot from a frame (only
    then is the predecessor's clip decoded for it)."""
    spec = CATALOG.get(backend)
    return spec is not None and spec.one_frame_slot


def _lead_frame(
    story_dir: str | os.PathLike[str], take: Take, latents: torch.Tensor | None
) -> np.ndarray | None:
    """The clip's frame before the span of the tail's latents 1..k-1 (the
    causal VAE's 8 frames each), read from the take's video; None when the
    clip cannot give it (the backend then says what it used instead)."""
    video = _asset_file(story_dir, take.files.video)
    if latents is None or video is None or latents.shape[2] < 2:
        return None
    count = 1 + 8 * (latents.shape[2] - 1)
    try:
        frames = last_frames(video, count, seconds=count / take.params.fps + 1.0)
    except (OSError, ValueError, StoryError):
        return None
    return frames[0] if len(frames) == count else None


def plan_continuity(
    story_dir: str | os.PathLike[str],
    story: Story,
    scene_id: str,
    *,
    supports_latent: bool,
    backend_name: str,
    width: int,
    height: int,
    model: str = "",
) -> ContinuityPlan:
    """Resolve the continuity source of a scene and the mode it can use.

    Raises `ContinuityError` when the scene continues from a scene that has no
    selected take yet (generate that one first, or make the edge a cut).
    """
    requested: Mode = story.settings.continuity_mode
    graph = DynamicSceneGraph(story)
    pred_id = continuity_predecessor(graph, scene_id)
    if pred_id is None:
        return ContinuityPlan(requested, "none", "no continuous predecessor")
    pred = story.scene(pred_id)
    take = pred.selected
    if take is None or take.status != "done":
        raise ContinuityError(
            f"scene {scene_id!r} continues from {pred_id!r}, which has no finished "
            f"take selected; generate {pred_id!r} first or make the edge a 'cut'"
        )
    strength = graph.g.edges[pred_id, scene_id]["strength"]
    source = TakeRef(scene_id=pred_id, take=take.index)
    last_frame = None
    notes: list[str] = []
    path = _asset_file(story_dir, take.files.last_frame)
    if path is not None:
        try:
            last_frame = read_png(path, f"last frame of take {take.index}")
        except StoryError as exc:  # a bomb, not an image: nothing to carry
            notes.append(f"{exc}; not carried")

    mode: Mode = requested
    latents = None
    audio_tail = None
    meta: dict[str, str] = {}
    if mode == "latent":
        why = ""
        if not supports_latent:
            why = f"backend {backend_name!r} has no latent space"
        elif (tail := _asset_file(story_dir, take.files.tail_latents)) is None:
            why = f"take {take.index} of {pred_id!r} has no tail latents"
        else:
            try:
                latents, meta = load_tail_latents(tail)
                audio_tail = load_tail_audio(tail)
                why = _latent_mismatch(meta, width, height, model)
            except (StoryError, OSError, ValueError) as exc:
                why = f"the tail latents of take {take.index} cannot be read ({exc})"
            if why:
                latents, meta, audio_tail = None, {}, None
        if why:
            notes.append(why if "continued from" in why else f"{why}; used frame")
            mode = "frame"
    if mode == "frame" and last_frame is None:
        notes.append(f"take {take.index} of {pred_id!r} has no last frame; used none")
        mode = "none"
    if mode == "none" or strength == 0.0:
        if strength == 0.0 and mode != "none":
            notes.append("the transition strength is 0; nothing carried")
            mode = "none"
        return ContinuityPlan(
            requested, "none", "; ".join(notes), source, None, last_frame
        )
    cont = ContinuityInput(
        mode=mode,
        tail_latents=latents,
        last_frame=last_frame,
        latent_meta=meta,
        strength=strength,
        tail_audio_latents=audio_tail,
        lead_frame=(
            _lead_frame(story_dir, take, latents)
            if mode == "latent" and wants_lead_frame(backend_name)
            else None
        ),
    )
    return ContinuityPlan(requested, mode, "; ".join(notes), source, cont, last_frame)
