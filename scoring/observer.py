"""The take observer: scores each clip and stores its embeddings beside it.

`Observer` has the shape of the engine's ``TakeObserver`` (structural typing:
scoring never imports the engine). For every take it

1. computes the pixel metrics on every frame (temporal flicker, seam MAE),
   the colour drift at the join and along the line (`scoring.color`),
   and the optical-flow motion metrics on frames sampled at about 8 fps
   (dynamic degree, motion, the static flag, the seam flow; `scoring.motion`),
2. encodes every frame with CLIP and DINOv2 (as VBench does; an observer
   made with ``samples=N`` sees N uniform frames instead, and the embeddings
   file's ``consistency_frames`` says which), plus the prompt with CLIP's
   text tower,
3. computes CLIPScore, VBench subject/background consistency, the DINO seam
   cosine and character consistency against cached reference features; the
   seam metrics compare the previous take's last frame with the first frame
   the film shows after the join (frame ``overlap_frames``: the frames before
   it repeat the predecessor and are skipped in playback),
4. writes the features to ``scenes/<scene>/take-<n>.embeddings.safetensors``.

Which metrics need CLIP or DINOv2, and which compare with the previous take,
is read from the metric table (`kg.metrics`); the formulas are
`scoring.metrics` and `scoring.motion`. Without weights the semantic metrics
are ``None`` and ``Scores.unavailable`` says why and which command fetches
them. Nothing here raises into the engine:
a failing metric is recorded as unavailable with its error, never a failed take.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kg.fields import utc_now
from kg.metrics import NEEDS, metric_table, needing
from kg.observation import Observation, ObservationRequest
from kg.paths import atomic_path, resolve_asset
from kg.schema import Scores
from scoring import metrics
from scoring.color import score_color
from scoring.encoders import FETCH_COMMAND, WeightsUnavailable
from scoring.recording import (
    NO_NEW_FRAME,
    NO_PREVIOUS,
    ONE_FRAME,
    failure_message,
    join_frame_index,
    put_score,
    record_failure,
    resize_frame,
    score_motion,
)
from scoring.references import ReferenceCache
from scoring.sampling import sample_indices

if TYPE_CHECKING:
    import torch

    from scoring.encoders import ClipEncoder, DinoEncoder, ImageEncoder
    from scoring.held import ModelHolder

__all__ = ["Observer", "resize_frame"]

log = logging.getLogger(__name__)

# What each encoder is called and which metrics need it: the metric table's
# needs (`kg.metrics`).
LABELS = {"clip": NEEDS["clip"], "dino": NEEDS["dino"]}
CLIP_METRICS = tuple(m.name for m in needing("clip"))
# The DINOv2 metrics of the take's own frames; character consistency also
# needs the reference images and is scored after them.
DINO_FRAME_METRICS = tuple(m.name for m in needing("dino"))
DINO_METRICS = (*DINO_FRAME_METRICS, "character_consistency")
# Compared with the previous take's last frame across a continuous join (the
# flow across it needs the previous take's last two: `score_motion`).
JOIN_METRICS = tuple(
    m.name for m in metric_table() if m.at_join and "flow" not in m.needs
)
# The VBench consistency (score field, formula) of each encoder's image features.
CONSISTENCY = {
    "clip": ("background_consistency", metrics.background_consistency),
    "dino": ("subject_consistency", metrics.subject_consistency),
}

EncoderSource = Any  # an encoder, a zero-argument loader returning one, or None


def _write_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata)


class Observer:
    """Scores takes with CLIP and DINOv2; implements the engine's ``TakeObserver``.

    Parameters
    ----------
    clip, dino : an encoder, a zero-argument loader called on first use (a
        loader raising `WeightsUnavailable` makes the metrics unavailable), or
        ``None`` (no such encoder).
    device : moves given encoders there; loaders choose the best device.
    samples : frames the encoders see per take; None (the default): every
        frame, as VBench's consistency dimensions do.
    batch_size : frames per encoder forward pass.
    """

    def __init__(
        self,
        clip: EncoderSource = None,
        dino: EncoderSource = None,
        device: torch.device | str | None = None,
        *,
        samples: int | None = None,
        batch_size: int = 32,
        motion: bool = True,
    ) -> None:
        self._sources = {"clip": clip, "dino": dino}
        self._models: ModelHolder | None = None
        self._encoders: dict[str, ImageEncoder] = {}
        self.device = device
        self.samples = samples
        self.batch_size = batch_size
        self.motion = motion

    @classmethod
    def default(
        cls,
        device: torch.device | str | None = None,
        *,
        clip_source: str | os.PathLike[str] | None = None,
        dino_source: str | os.PathLike[str] | None = None,
        models: ModelHolder | None = None,
    ) -> Observer:
        """An observer with the default models, loaded lazily once per process.

        Weights come from ``clip_source``/``dino_source`` (a folder or a
        Hugging Face repo id in the local cache), else the environment
        variables ``STORYGRAPH_CLIP_MODEL``/``STORYGRAPH_DINO_MODEL``, else the
        catalog defaults. Nothing is downloaded. ``models``: the process's
        model cache that holds them (the front ends pass theirs).
        """
        from scoring.held import get_clip, get_dino

        observer = cls(
            clip=lambda: get_clip(clip_source, device, models),
            dino=lambda: get_dino(dino_source, device, models),
        )
        observer._models = models
        return observer

    def release(self) -> None:
        """Drop the encoders this observer loaded and free their memory.

        They load again on the next take (the engine calls this between
        heavy stages when ``settings.release_models`` is set).
        """
        from scoring.held import release_encoders

        self._encoders.clear()
        release_encoders(self._models)

    # Encoders ---------------------------------------------------------------
    def encoder(self, name: str) -> tuple[ImageEncoder | None, str | None]:
        """``(encoder, None)`` or ``(None, why it is unavailable)``."""
        if name in self._encoders:
            return self._encoders[name], None
        source = self._sources[name]
        label = LABELS[name]
        if source is None:
            return None, f"no {label} encoder configured; run '{FETCH_COMMAND}'"
        if callable(source) and not hasattr(source, "encode_images"):
            try:
                source = source()
            except WeightsUnavailable as exc:
                return None, f"{label} weights unavailable: {exc}"
            except Exception as exc:
                log.warning("could not load %s", label, exc_info=True)
                return None, f"{label} failed to load ({type(exc).__name__}: {exc})"
        if self.device is not None:
            import torch

            source.device = torch.device(self.device)
            source.model.to(source.device)
        self._encoders[name] = source
        return source, None

    @property
    def clip(self) -> ClipEncoder | None:
        return self.encoder("clip")[0]  # type: ignore[return-value]

    @property
    def dino(self) -> DinoEncoder | None:
        return self.encoder("dino")[0]  # type: ignore[return-value]

    # TakeObserver -----------------------------------------------------------
    def observe(self, request: ObservationRequest) -> Observation:
        """Score a take, write its embeddings; never raises (errors are recorded)."""
        try:
            scores, tensors, meta = self.score(request)
        except Exception as exc:
            log.exception(
                "scoring scene %r take %s failed", request.scene_id, request.take_index
            )
            return Observation(
                Scores(
                    unavailable={"observer": failure_message(exc)}, scored_at=utc_now()
                )
            )
        rel = None
        if any(k != "frame_indices" for k in tensors):
            rel = request.embeddings_path
            try:
                _write_safetensors(resolve_asset(request.story_dir, rel), tensors, meta)
            except Exception as exc:
                log.exception("writing embeddings %s failed", rel)
                scores.unavailable["embeddings"] = failure_message(exc)
                rel = None
        return Observation(scores, rel)

    def score(
        self, request: ObservationRequest
    ) -> tuple[Scores, dict[str, torch.Tensor], dict[str, str]]:
        """Scores, embedding tensors and their metadata of one take (no file writes
        except the reference cache)."""
        import torch

        frames = np.asarray(request.frames)
        previous_last_frame = request.previous_last_frame
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(
                f"frames must be [F, H, W, 3] uint8, got {frames.shape} {frames.dtype}"
            )
        s = Scores()
        _, height, width, _ = frames.shape
        previous = None
        if previous_last_frame is not None:
            previous = resize_frame(np.asarray(previous_last_frame), height, width)

        # 1. pixel metrics, on every frame
        put_score(s, "temporal_flicker", metrics.temporal_flicker(frames))
        if s.temporal_flicker is None:
            s.unavailable["temporal_flicker"] = ONE_FRAME
        joined = join_frame_index(len(frames), request.overlap_frames)
        if previous is None:
            for name in JOIN_METRICS:
                s.unavailable[name] = NO_PREVIOUS
            joined = None
        elif joined is None:
            for name in JOIN_METRICS:
                s.unavailable[name] = NO_NEW_FRAME
        else:
            put_score(
                s, "seam_pixel_mae", metrics.seam_pixel_mae(previous, frames[joined])
            )

        if self.motion:
            score_motion(s, request, frames)
        score_color(s, request, frames)  # colour drift at the join, on the line

        # 2. sampled frames through the encoders
        idx = sample_indices(len(frames), self.samples)
        sampled = frames if len(idx) == len(frames) else frames[idx]  # no copy
        tensors: dict[str, torch.Tensor] = {"frame_indices": torch.from_numpy(idx)}
        meta = {
            "scene_id": request.scene_id,
            "take": str(request.take_index),
            # how many frames the consistency metrics saw ("every": VBench's way)
            "consistency_frames": (
                "every" if len(idx) == len(frames) else f"{len(idx)} of {len(frames)}"
            ),
        }
        self._score_clip(s, request.prompt, sampled, tensors, meta)
        seam = None if joined is None else (previous, frames[joined])
        self._score_dino(s, request, sampled, seam, tensors, meta)
        s.scored_at = utc_now()
        return s, tensors, meta

    def _score_clip(
        self,
        s: Scores,
        prompt: str,
        sampled: np.ndarray,
        tensors: dict[str, torch.Tensor],
        meta: dict[str, str],
    ) -> None:
        """CLIP: background consistency, and CLIPScore against the prompt."""
        clip = self._family_encoder(s, "clip", CLIP_METRICS, meta)
        if clip is None:
            return
        try:
            image = self._consistency_features(s, "clip", clip, sampled, tensors)
            _score_prompt(s, clip, prompt, image, tensors, meta)
        except Exception as exc:
            record_failure(
                s, f"{LABELS['clip']} scoring", CLIP_METRICS, exc, missing_only=True
            )

    def _score_dino(
        self,
        s: Scores,
        request: ObservationRequest,
        sampled: np.ndarray,
        seam: tuple[np.ndarray, np.ndarray] | None,
        tensors: dict[str, torch.Tensor],
        meta: dict[str, str],
    ) -> None:
        """DINOv2: subject consistency, the seam cosine (``seam``: the previous
        take's last frame and the first frame the film shows after the join),
        character consistency."""
        dino = self._family_encoder(s, "dino", DINO_METRICS, meta)
        if dino is None:
            return
        try:
            image = self._consistency_features(s, "dino", dino, sampled, tensors)
            if seam is not None:
                _score_seam(s, dino, *seam)
        except Exception as exc:
            record_failure(
                s,
                f"{LABELS['dino']} scoring",
                DINO_FRAME_METRICS,
                exc,
                missing_only=True,
            )
            return
        self._score_characters(s, request, dino, image)

    def _family_encoder(
        self, s: Scores, name: str, metric_names: tuple[str, ...], meta: dict[str, str]
    ) -> ImageEncoder | None:
        """Encoder ``name`` with its label recorded, or None with its metrics
        marked unavailable (reasons already recorded are kept)."""
        encoder, reason = self.encoder(name)
        if encoder is None:
            for metric in metric_names:
                s.unavailable.setdefault(metric, reason)
            return None
        s.encoders[name] = meta[name] = encoder.label
        return encoder

    def _consistency_features(
        self,
        s: Scores,
        name: str,
        encoder: ImageEncoder,
        sampled: np.ndarray,
        tensors: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Features ``[N, D]`` of the sampled frames, kept as ``<name>_image``,
        with the VBench consistency `CONSISTENCY` computes on them recorded."""
        image = encoder.encode_images(sampled, self.batch_size)
        tensors[f"{name}_image"] = image
        metric, consistency = CONSISTENCY[name]
        value = consistency(image.numpy())
        put_score(s, metric, value)
        if value is None:
            s.unavailable[metric] = ONE_FRAME
        return image

    def _score_characters(
        self,
        s: Scores,
        request: ObservationRequest,
        dino: ImageEncoder,
        image: torch.Tensor,
    ) -> None:
        character_ids = request.character_ids
        if not character_ids:
            return
        try:
            refs, problems = ReferenceCache(request.story_dir).features(
                request.references, list(character_ids), dino
            )
        except Exception as exc:
            log.exception("reference features failed")
            s.unavailable["character_consistency"] = failure_message(exc)
            return
        for cid in character_ids:
            if cid in refs:
                value = metrics.character_consistency(image.numpy(), refs[cid])
                if value is not None and math.isfinite(value):
                    s.character_consistency[cid] = float(value)
                elif value is not None:
                    s.unavailable[f"character_consistency.{cid}"] = (
                        f"came out as {value} (blank frames or references?)"
                    )
            else:
                s.unavailable[f"character_consistency.{cid}"] = problems.get(
                    cid, f"no usable reference images for {cid!r}"
                )


def _score_prompt(
    s: Scores,
    clip: ClipEncoder,
    prompt: str,
    image: torch.Tensor,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, str],
) -> None:
    """CLIPScore of the frame features against the prompt (kept as ``clip_text``)."""
    prompt = prompt.strip()
    if not prompt:
        s.unavailable["clip_score"] = "the take has no prompt to compare with"
        return
    text = clip.encode_text([prompt])
    tensors["clip_text"] = text
    meta["prompt"] = prompt
    put_score(s, "clip_score", metrics.clip_score(image.numpy(), text[0].numpy()))


def _score_seam(
    s: Scores, dino: ImageEncoder, previous: np.ndarray, joined: np.ndarray
) -> None:
    """DINO cosine of the previous take's last frame and the first frame the
    film shows after the join (`join_frame_index`)."""
    pair = dino.encode_images(np.stack([previous, joined]))  # [2, D]
    put_score(
        s, "seam_dino_cosine", metrics.seam_cosine(pair[0].numpy(), pair[1].numpy())
    )
