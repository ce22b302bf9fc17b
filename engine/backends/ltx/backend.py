"""The ``ltx`` backend: LTX-Video on diffusers with scene continuity in latent space.

`LTXBackend.generate` runs in a fixed order:

1. check the request (sizes multiples of 32, frames ``8k + 1``, the window
   plan, memory mode);
2. load the pipeline once per (model, device, memory mode) and keep it (the
   ``load`` phase, `engine.backend.report_phase`);
3. choose the conditioning: the carried tail latents when they fit this model
   and size (no VAE decode/encode), else the previous take's last frame, and
   record why (`GenerationResult.continuity_note`);
4. denoise window by window (`engine.backends.ltx.extend`: conditioning tokens, the
   reinterpreted first latent, overlap fusion, AdaIN), reporting each step
   and stopping between steps on cancel; then pull the take toward its
   colour anchor's latent statistics (`engine.backends.diffusers.adain`);
5. decode the latents in chunks straight to uint8 frames, reporting each
   chunk and stopping between chunks on cancel;
6. keep the last latent frames (normalised) as the take's tail latents.

CUDA out-of-memory becomes `engine.backend.OutOfMemoryError` with advice.
Weights are bf16 on CUDA and fp32 on CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from engine.backend import (
    BackendError,
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    OutOfMemoryError,
    ProgressFn,
    VideoBackend,
    register_backend,
    report_phase,
)
from engine.backends.diffusers import runtime
from engine.backends.diffusers.adain import pull_toward_anchor
from engine.backends.diffusers.latents import (
    LTX_RATIOS,
    LatentShape,
    VaeRatios,
    check_latent_fit,
    check_size,
    check_window_plan,
    latent_frame_count,
    latent_shape,
    tail_latents,
    tail_meta,
)
from engine.backends.diffusers.memory import out_of_memory_advice
from engine.backends.diffusers.runtime import LoadedModel, free_device_memory
from engine.backends.ltx import loading
from engine.backends.ltx.extend import (
    Carried,
    decode_in_chunks,
    encode_frame,
    sample_windows,
)
from engine.backends.ltx.loading import (
    load_tokenizer,
)
from engine.backends.ltx.recipe import sampling_recipe
from engine.catalog import plan_frames, resolve_preset, spec
from engine.model_cache import ModelCache

__all__ = [
    "LTXBackend",
    "LoadedModel",
    "loaded_model",
    "use_pipeline",
    "release_models",
]

log = logging.getLogger(__name__)

SPEC = spec("ltx")


FAMILY = runtime.Family(SPEC.model_family, loading)
loaded_model = FAMILY.loaded  # the family's pipeline, loaded once per cache
use_pipeline = FAMILY.use  # serve a built pipeline (tests, benchmarks)
release_models = FAMILY.release  # free it; other families' stay


@dataclass(frozen=True)
class _Conditioning:
    carried: Carried
    used: Literal["latent", "frame", "none"]
    note: str = ""


class LTXBackend(VideoBackend):
    """LTX-Video through the windowed sampler of `engine.backends.ltx.extend`.

    Parameters
    ----------
    model:
        Used when the request names none: ``tiny-random``, a folder, or a
        Hugging Face id in the local cache.
    device:
        ``cuda``/``cpu``; the best available when ``None``.
    max_sequence_length:
        Text tokens (LTX-Video was trained with 128).
    decode_chunk_latents:
        Latent frames decoded at once; by default one window's, at least 16
        (so decoding a long take needs the memory of decoding one window plus
        context, whatever its length).

    The window size, overlap (and so the tail kept for the next scene),
    conditioning strength and AdaIN factor come with each request
    (`engine.backend.WindowPlan`, from the story's settings).
    """

    name = "ltx"
    version = "2"  # windowed sampling: the same request gives other frames
    supports_latent_continuity = True
    supports_references = True  # keyframes before the clip (engine.backends.ltx.extend)

    def __init__(
        self,
        model: str = "",
        device: str | None = None,
        max_sequence_length: int | None = None,
        decode_chunk_latents: int | None = None,
        models: ModelCache | None = None,
    ) -> None:
        if decode_chunk_latents is not None and decode_chunk_latents < 1:
            raise BackendError(
                f"decode_chunk_latents must be >= 1, got {decode_chunk_latents}"
            )
        self.model = model
        self.device = device
        self.max_sequence_length = max_sequence_length or SPEC.prompt_token_budget
        self.decode_chunk_latents = decode_chunk_latents
        self.models = models

    def generate(
        self, request: GenerationRequest, progress: ProgressFn, cancel: CancelToken
    ) -> GenerationResult:
        """Generate one take; see the module docstring for the steps."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        # 1. Check inputs before anything heavy happens.
        model = request.model or self.model
        self.check_request(request)
        if cancel.is_set():
            raise GenerationCancelled("cancelled before the model was loaded")
        # 2. Load (once per model cache).
        report_phase(progress, "load")
        loaded = loaded_model(
            model,
            self.device,
            request.memory_mode,
            transformer_file=request.transformer_file,
            cache=self.models,
        )
        ratios = _ratios(loaded.pipe)
        timings["load"] = time.perf_counter() - start
        try:
            # 3. Conditioning: carried latents, else last frame, else none.
            mark = time.perf_counter()
            expected = latent_shape(
                request.width,
                request.height,
                request.num_frames,
                loaded.pipe.transformer.config.in_channels,
                ratios,
            )
            conditioning = self._conditioning(loaded.pipe, request, model, expected)
            carried = _with_references(loaded.pipe, request, conditioning.carried)
            timings["prepare"] = time.perf_counter() - mark
            # 4. Denoise window by window.
            mark = time.perf_counter()
            sampled = sample_windows(
                loaded.pipe,
                request,
                carried,
                _report(progress),
                cancel.is_set,
                prompts=request.window_prompts(),
                max_sequence_length=self.max_sequence_length,
                preview=progress,
            )
            timings["prompt"] = sampled.prompt_seconds
            timings["denoise"] = time.perf_counter() - mark - sampled.prompt_seconds
            for i, seconds in enumerate(sampled.window_seconds, start=1):
                timings[f"window_{i}"] = seconds
            # 4b. Colour held toward the line's anchor (its latent statistics).
            sampled.latents, correction = pull_toward_anchor(
                sampled.latents, request.color_anchor
            )
            # 5. Decode in chunks.
            mark = time.perf_counter()
            frames = decode_in_chunks(
                loaded.pipe,
                sampled.latents,
                generator=torch.Generator("cpu").manual_seed(request.seed),
                chunk_latents=self.decode_chunk_latents
                or max(16, latent_frame_count(request.windows.frames)),
                cancel=cancel,
                progress=progress,
            )
            timings["decode"] = time.perf_counter() - mark
        except torch.OutOfMemoryError as exc:
            free_device_memory()
            raise OutOfMemoryError(out_of_memory_advice(request)) from exc
        # 6. Tail latents for the next scene: the overlap the next one carries.
        keep = max(1, request.windows.overlap_frames // ratios.temporal)
        tail = tail_latents(sampled.latents, keep)
        meta = tail_meta(
            model=model,
            tail=tail,
            width=request.width,
            height=request.height,
            num_frames=request.num_frames,
            ratios=ratios,
        )
        timings["total"] = time.perf_counter() - start
        return GenerationResult(
            frames=frames,
            tail_latents=tail,
            latent_meta=meta,
            timings=timings,
            continuity_used=conditioning.used,
            continuity_note=conditioning.note,
            random_weights=loaded.source.random_weights,
            repeated_frames=sampled.repeated_frames,
            windows=tuple(sampled.windows) if len(sampled.windows) > 1 else (),
            recipe=sampling_recipe(
                request,
                model,
                conditioning.carried.strength if conditioning.used != "none" else None,
            ),
            color_correction=correction,
        )

    def prompt_tokens(self, model: str) -> tuple[Callable[[str], int], int]:
        """The text encoder's own token counter and its budget.

        With it the prompt generator drops the least salient parts to fit,
        instead of the pipeline cutting off the end of the prompt.
        """
        tokenizer = load_tokenizer(model or self.model)

        def count(text: str) -> int:
            # verbose=False: counting a prompt longer than the budget is the
            # point here, not the tokenizer's "longer than the maximum" warning
            return len(tokenizer(text, verbose=False)["input_ids"])

        return count, self.max_sequence_length

    def release(self) -> None:
        """Free this family's loaded pipeline (the engine calls it between
        stages); another family's stays loaded."""
        release_models(cache=self.models)

    @staticmethod
    def plan_frames(frames: int) -> int:
        """The nearest frame count LTX-Video makes (8k+1, at least 9).

        >>> LTXBackend.plan_frames(48), LTXBackend.plan_frames(2)
        (49, 9)
        """
        return plan_frames(SPEC.name, frames)

    def preset(self, quality_preset: str, model: str) -> tuple[int, float]:
        """Steps and guidance of a preset for this model (distilled ones differ)."""
        chosen = resolve_preset(SPEC.name, quality_preset, model or self.model)
        return chosen.steps, chosen.guidance

    @staticmethod
    def check_request(request: GenerationRequest) -> None:
        """Refuse requests LTX-Video cannot run, with what to change."""
        check_size(request.width, request.height, request.num_frames)
        plan = request.windows
        check_window_plan(plan.frames, plan.overlap_frames)
        if request.steps < 1:
            raise BackendError(f"steps must be at least 1, got {request.steps}")
        if request.guidance < 0:
            raise BackendError(f"guidance must be >= 0, got {request.guidance}")
        if not 0.0 < plan.strength <= 1.0 or not 0.0 <= plan.adain_factor <= 1.0:
            raise BackendError(
                "windows.strength must be in (0, 1] and windows.adain_factor in "
                f"[0, 1], got {plan.strength} and {plan.adain_factor}"
            )
        if request.memory_mode not in SPEC.memory_modes:
            raise BackendError(
                f"memory_mode must be one of {', '.join(SPEC.memory_modes)}, got "
                f"{request.memory_mode!r}"
            )

    def _conditioning(
        self,
        pipe: Any,
        request: GenerationRequest,
        model: str,
        expected: LatentShape,
    ) -> _Conditioning:
        carried = request.continuity
        if carried is None:
            return _Conditioning(Carried(), "none")
        strength = carried.strength * request.windows.join_strength
        notes = []
        if carried.mode == "latent":
            fit = check_latent_fit(
                carried.tail_latents,
                carried.latent_meta,
                model=model,
                expected=expected,
            )
            if fit.ok:
                return _Conditioning(
                    Carried(latents=carried.tail_latents, strength=strength), "latent"
                )
            notes.append(f"{fit.reason}; continued from the last frame")
        if carried.last_frame is not None:
            image = encode_frame(pipe, carried.last_frame, request)
            return _Conditioning(
                Carried(image=image, strength=carried.strength),
                "frame",
                "; ".join(notes),
            )
        notes.append("no last frame to continue from; generated without continuity")
        return _Conditioning(Carried(), "none", "; ".join(notes))


def _report(progress: ProgressFn) -> Callable[[int, int, int, int], None]:
    """Window and step to ``progress``; a one-window take reports steps alone."""

    def report(step: int, steps: int, window: int, windows: int) -> None:
        if windows == 1:
            progress(step, steps)
        else:
            progress(step, steps, window, windows)

    return report


def _with_references(
    pipe: Any, request: GenerationRequest, carried: Carried
) -> Carried:
    """``carried`` plus the request's reference images, each encoded to one
    normalised latent frame (``[1, C, n, h, w]`` together)."""
    if not request.references:
        return carried
    latents = torch.cat(
        [encode_frame(pipe, r.frame, request) for r in request.references], dim=2
    )
    return dataclasses.replace(
        carried,
        references=latents,
        reference_strength=max(r.strength for r in request.references),
    )


def _ratios(pipe: Any) -> VaeRatios:
    ratios = VaeRatios(
        pipe.vae_temporal_compression_ratio, pipe.vae_spatial_compression_ratio
    )
    if ratios != LTX_RATIOS:
        raise BackendError(
            f"the model's VAE compresses {ratios.temporal}x in time and "
            f"{ratios.spatial}x in space; the ltx backend needs LTX-Video's "
            f"{LTX_RATIOS.temporal}x and {LTX_RATIOS.spatial}x"
        )
    return ratios


register_backend("ltx", LTXBackend)
