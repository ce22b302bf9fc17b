"""The take observer: scores each clip and stores its embeddings beside it.

`Observer` has the shape of the engine's ``TakeObserver`` (structural typing:
scoring never imports the engine). For every take it

1. computes the pixel metrics on every frame (temporal flicker, seam MAE),
   and the optical-flow motion metrics on frames sampled at about 8 fps
   (dynamic degree, motion, the static flag, the seam flow; `scoring.motion`),
2. samples frames (16, uniform, first and last included) and encodes them with
   CLIP and DINOv2, plus the prompt with CLIP's text tower,
3. computes CLIPScore, VBench subject/background consistency, the DINO seam
   cosine and character consistency against cached reference features,
4. writes the features to ``scenes/<scene>/take-<n>.embeddings.safetensors``.

Without weights the semantic metrics are ``None`` and ``Scores.unavailable``
says why and which command fetches them. Nothing here raises into the engine:
a failing metric is recorded as unavailable with its error, never a failed take.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kg.fields import clip_message, utc_now
from kg.observation import Observation, ObservationRequest
from kg.paths import atomic_path, resolve_asset
from kg.schema import Scores
from scoring import metrics, motion
from scoring.encoders import FETCH_COMMAND, WeightsUnavailable
from scoring.references import ReferenceCache
from scoring.sampling import DEFAULT_SAMPLES, sample_indices

if TYPE_CHECKING:
    import torch

    from scoring.encoders import ClipEncoder, DinoEncoder, ImageEncoder

__all__ = ["Observer", "resize_frame"]

log = logging.getLogger(__name__)

LABELS = {"clip": "CLIP", "dino": "DINOv2"}
CLIP_METRICS = ("clip_score", "background_consistency")
# The DINOv2 metrics of the take's own frames; character consistency also
# needs the reference images and is scored after them.
DINO_FRAME_METRICS = ("subject_consistency", "seam_dino_cosine")
DINO_METRICS = (*DINO_FRAME_METRICS, "character_consistency")
# The VBench consistency (score field, formula) of each encoder's image features.
CONSISTENCY = {
    "clip": ("background_consistency", metrics.background_consistency),
    "dino": ("subject_consistency", metrics.subject_consistency),
}
ONE_FRAME = "the take has one frame; needs two"

EncoderSource = Any  # an encoder, a zero-argument loader returning one, or None


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ``[H, W, 3]`` uint8 frame resized to ``height`` x ``width`` (bilinear)."""
    if frame.shape[:2] == (height, width):
        return frame
    from PIL import Image

    img = Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def _write_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata)


def _put(s: Scores, metric: str, value: float | None) -> None:
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


def _failure(exc: BaseException) -> str:
    return clip_message(f"scoring failed ({type(exc).__name__}: {exc}); see the log")


def _record_failure(
    s: Scores, name: str, metric_names: tuple[str, ...], exc: BaseException
) -> None:
    """Encoder ``name`` failed: each of its metrics not yet computed says why."""
    log.exception("%s scoring failed", LABELS[name], exc_info=exc)
    for metric in metric_names:
        if getattr(s, metric) is None:
            s.unavailable[metric] = _failure(exc)


class Observer:
    """Scores takes with CLIP and DINOv2; implements the engine's ``TakeObserver``.

    Parameters
    ----------
    clip, dino : an encoder, a zero-argument loader called on first use (a
        loader raising `WeightsUnavailable` makes the metrics unavailable), or
        ``None`` (no such encoder).
    device : moves given encoders there; loaders choose the best device.
    samples : frames the encoders see per take.
    batch_size : frames per encoder forward pass.
    """

    def __init__(
        self,
        clip: EncoderSource = None,
        dino: EncoderSource = None,
        device: torch.device | str | None = None,
        *,
        samples: int = DEFAULT_SAMPLES,
        batch_size: int = 32,
        motion: bool = True,
    ) -> None:
        self._sources = {"clip": clip, "dino": dino}
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
    ) -> Observer:
        """An observer with the default models, loaded lazily once per process.

        Weights come from ``clip_source``/``dino_source`` (a folder or a
        Hugging Face repo id in the local cache), else the environment
        variables ``STORYGRAPH_CLIP_MODEL``/``STORYGRAPH_DINO_MODEL``, else the
        catalog defaults. Nothing is downloaded.
        """
        from scoring.encoders import get_clip, get_dino

        return cls(
            clip=lambda: get_clip(clip_source, device),
            dino=lambda: get_dino(dino_source, device),
        )

    def release(self) -> None:
        """Drop the encoders this observer loaded and free their memory.

        They load again on the next take (the engine calls this between
        heavy stages when ``settings.release_models`` is set).
        """
        from scoring.encoders import release_encoders

        self._encoders.clear()
        release_encoders()

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
                Scores(unavailable={"observer": _failure(exc)}, scored_at=utc_now())
            )
        rel = None
        if any(k != "frame_indices" for k in tensors):
            rel = request.embeddings_path
            try:
                _write_safetensors(resolve_asset(request.story_dir, rel), tensors, meta)
            except Exception as exc:
                log.exception("writing embeddings %s failed", rel)
                scores.unavailable["embeddings"] = _failure(exc)
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
        _put(s, "temporal_flicker", metrics.temporal_flicker(frames))
        if s.temporal_flicker is None:
            s.unavailable["temporal_flicker"] = ONE_FRAME
        if previous is not None:
            _put(s, "seam_pixel_mae", metrics.seam_pixel_mae(previous, frames[0]))
        else:
            for name in ("seam_pixel_mae", "seam_dino_cosine"):
                s.unavailable[name] = "no previous take (first scene, or a cut)"

        if self.motion:
            _score_motion(s, request, frames)

        # 2. sampled frames through the encoders
        idx = sample_indices(len(frames), self.samples)
        sampled = frames[idx]
        tensors: dict[str, torch.Tensor] = {"frame_indices": torch.from_numpy(idx)}
        meta = {"scene_id": request.scene_id, "take": str(request.take_index)}
        self._score_clip(s, request.prompt, sampled, tensors, meta)
        self._score_dino(s, request, sampled, previous, tensors, meta)
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
            _record_failure(s, "clip", CLIP_METRICS, exc)

    def _score_dino(
        self,
        s: Scores,
        request: ObservationRequest,
        sampled: np.ndarray,
        previous: np.ndarray | None,
        tensors: dict[str, torch.Tensor],
        meta: dict[str, str],
    ) -> None:
        """DINOv2: subject consistency, the seam cosine, character consistency."""
        dino = self._family_encoder(s, "dino", DINO_METRICS, meta)
        if dino is None:
            return
        try:
            image = self._consistency_features(s, "dino", dino, sampled, tensors)
            if previous is not None:
                _score_seam(s, dino, previous, image)
        except Exception as exc:
            _record_failure(s, "dino", DINO_FRAME_METRICS, exc)
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
        _put(s, metric, value)
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
            s.unavailable["character_consistency"] = _failure(exc)
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
    _put(s, "clip_score", metrics.clip_score(image.numpy(), text[0].numpy()))


def _score_seam(
    s: Scores, dino: ImageEncoder, previous: np.ndarray, image: torch.Tensor
) -> None:
    """DINO cosine of the previous take's last frame and this take's first."""
    prev = dino.encode_images(previous[None])
    _put(s, "seam_dino_cosine", metrics.seam_cosine(prev[0].numpy(), image[0].numpy()))


MOTION_METRICS = ("dynamic_degree", "motion", "static")


def _score_motion(s: Scores, request: ObservationRequest, frames: np.ndarray) -> None:
    """Optical-flow motion of the clip and across its join (`scoring.motion`)."""
    try:
        pairs = motion.pair_motion(frames, request.fps)
        n_sampled = len(frames[:: motion.sample_step(request.fps)])
        _put(s, "dynamic_degree", motion.dynamic_degree(pairs, n_sampled, request.fps))
        _put(s, "motion", motion.motion(pairs))
        s.static = motion.is_static(pairs)
        if not pairs:
            for name in MOTION_METRICS:
                s.unavailable[name] = ONE_FRAME
    except Exception as exc:
        _record_failure_named(s, "optical flow", MOTION_METRICS, exc)
    tail = request.previous_tail
    head = frames[request.overlap_frames : request.overlap_frames + 2]
    if tail is None or len(tail) < 2:
        s.unavailable["seam_flow"] = "no previous take (first scene, or a cut)"
        return
    if len(head) < 2:
        s.unavailable["seam_flow"] = "fewer than two new frames after the join"
        return
    _, height, width, _ = frames.shape
    tail = np.stack([resize_frame(np.asarray(f), height, width) for f in tail[-2:]])
    try:
        _put(s, "seam_flow", motion.seam_flow(tail, head))
    except Exception as exc:
        _record_failure_named(s, "optical flow", ("seam_flow",), exc)


def _record_failure_named(
    s: Scores, what: str, metric_names: tuple[str, ...], exc: BaseException
) -> None:
    log.exception("%s failed", what, exc_info=exc)
    for metric in metric_names:
        s.unavailable[metric] = _failure(exc)
