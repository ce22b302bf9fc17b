"""The ``ltx`` backend: LTX-Video on diffusers with scene continuity in latent space.

`LTXBackend.generate` runs in a fixed order:

1. check the request (sizes multiples of 32, frames ``8k + 1``, memory mode);
2. load the pipeline once per (model, device, memory mode) and keep it;
3. choose the conditioning: the carried tail latents when they fit this model
   and size (no VAE decode/encode), else the previous take's last frame, and
   record why (`GenerationResult.continuity_note`);
4. denoise to latents (``output_type="latent"``), reporting each step through
   ``callback_on_step_end`` and stopping between steps on cancel;
5. decode the latents with the VAE, separately, so the raw latents stay
   available;
6. keep the last latent frames (normalised) as the take's tail latents.

CUDA out-of-memory becomes `engine.backend.OutOfMemoryError` with advice.
Weights are bf16 on CUDA and fp32 on CPU.
"""

from __future__ import annotations

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
)
from engine.ltx.latents import (
    LTX_RATIOS,
    LatentShape,
    VaeRatios,
    check_latent_fit,
    check_size,
    latent_shape,
    tail_latents,
    tail_meta,
)
from engine.ltx.loading import (
    load_tokenizer,
)
from engine.ltx.presets import resolve_preset
from engine.ltx.runtime import (
    LoadedModel,
    decode_latents,
    free_device_memory,
    loaded_model,
    release_models,
    use_pipeline,
)
from kg.schema import MEMORY_MODES

__all__ = [
    "LTXBackend",
    "LoadedModel",
    "loaded_model",
    "use_pipeline",
    "release_models",
    "decode_latents",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Conditioning:
    kwargs: dict[str, Any]
    used: Literal["latent", "frame", "none"]
    note: str = ""


class LTXBackend(VideoBackend):
    """LTX-Video through `LatentConditionPipeline`.

    Parameters
    ----------
    model:
        Used when the request names none: ``tiny-random``, a folder, or a
        Hugging Face id in the local cache.
    device:
        ``cuda``/``cpu``; the best available when ``None``.
    tail_latent_frames:
        Latent frames kept as the tail (2 = the last 16 pixel frames), and so
        the frames the next scene starts from.
    latent_cond_noise_scale:
        Noise the pipeline adds to hard-conditioned latents during denoising.
        0 for carried latents: they are this model's own clean latents, and
        keeping them exact is what makes the seam continuous.
    frame_cond_noise_scale:
        The pipeline's default for image conditioning (helps motion start).
    max_sequence_length:
        Text tokens (LTX-Video was trained with 128).
    """

    name = "ltx"
    supports_latent_continuity = True

    def __init__(
        self,
        model: str = "",
        device: str | None = None,
        tail_latent_frames: int = 2,
        latent_cond_noise_scale: float = 0.0,
        frame_cond_noise_scale: float = 0.15,
        max_sequence_length: int = 128,
    ) -> None:
        if tail_latent_frames < 1:
            raise BackendError(
                f"tail_latent_frames must be >= 1, got {tail_latent_frames}"
            )
        self.model = model
        self.device = device
        self.tail_latent_frames = tail_latent_frames
        self.latent_cond_noise_scale = latent_cond_noise_scale
        self.frame_cond_noise_scale = frame_cond_noise_scale
        self.max_sequence_length = max_sequence_length

    def generate(
        self, request: GenerationRequest, progress: ProgressFn, cancel: CancelToken
    ) -> GenerationResult:
        """Generate one clip; see the module docstring for the steps."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        # 1. Check inputs before anything heavy happens.
        model = request.model or self.model
        self.check_request(request)
        if cancel.is_set():
            raise GenerationCancelled("cancelled before the model was loaded")
        # 2. Load (once per process).
        loaded = loaded_model(model, self.device, request.memory_mode)
        ratios = _ratios(loaded.pipe)
        timings["load"] = time.perf_counter() - start
        # 3. Conditioning: carried latents, else last frame, else none.
        expected = latent_shape(
            request.width,
            request.height,
            request.num_frames,
            loaded.pipe.transformer.config.in_channels,
            ratios,
        )
        conditioning = self._conditioning(request, model, expected)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        try:
            # 4. Denoise to latents.
            latents = self._denoise(
                loaded.pipe, request, conditioning, generator, progress, cancel, timings
            )
            # 5. Decode separately.
            mark = time.perf_counter()
            frames = decode_latents(loaded.pipe, latents, generator=generator)
            timings["decode"] = time.perf_counter() - mark
        except torch.OutOfMemoryError as exc:
            free_device_memory()
            raise OutOfMemoryError(_oom_advice(request)) from exc
        # 6. Tail latents for the next scene.
        tail = tail_latents(latents, self.tail_latent_frames)
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
        )

    def prompt_tokens(self, model: str) -> tuple[Callable[[str], int], int]:
        """The text encoder's own token counter and its budget.

        With it the prompt generator drops the least salient parts to fit,
        instead of the pipeline cutting off the end of the prompt.
        """
        tokenizer = load_tokenizer(model or self.model)

        def count(text: str) -> int:
            return len(tokenizer(text)["input_ids"])

        return count, self.max_sequence_length

    def release(self) -> None:
        """Free the loaded pipelines (the engine calls it between stages)."""
        release_models()

    @staticmethod
    def plan_frames(frames: int) -> int:
        """The nearest frame count LTX-Video makes (8k+1, at least 9).

        >>> LTXBackend.plan_frames(48), LTXBackend.plan_frames(2)
        (49, 9)
        """
        k = max(1, round((frames - 1) / LTX_RATIOS.temporal))
        return k * LTX_RATIOS.temporal + 1

    def preset(self, quality_preset: str, model: str) -> tuple[int, float]:
        """Steps and guidance of a preset for this model (distilled ones differ)."""
        chosen = resolve_preset(quality_preset, model or self.model)
        return chosen.steps, chosen.guidance

    @staticmethod
    def check_request(request: GenerationRequest) -> None:
        """Refuse requests LTX-Video cannot run, with what to change."""
        check_size(request.width, request.height, request.num_frames)
        if request.steps < 1:
            raise BackendError(f"steps must be at least 1, got {request.steps}")
        if request.guidance < 0:
            raise BackendError(f"guidance must be >= 0, got {request.guidance}")
        if request.memory_mode not in MEMORY_MODES:
            raise BackendError(
                f"memory_mode must be one of {', '.join(MEMORY_MODES)}, got "
                f"{request.memory_mode!r}"
            )

    def _conditioning(
        self, request: GenerationRequest, model: str, expected: LatentShape
    ) -> _Conditioning:
        carried = request.continuity
        if carried is None:
            return _Conditioning({}, "none")
        notes = []
        if carried.mode == "latent":
            fit = check_latent_fit(
                carried.tail_latents,
                carried.latent_meta,
                model=model,
                expected=expected,
            )
            if fit.ok:
                kwargs = dict(
                    carried_latents=carried.tail_latents,
                    carried_strength=carried.strength,
                    image_cond_noise_scale=self.latent_cond_noise_scale,
                )
                return _Conditioning(kwargs, "latent")
            notes.append(f"{fit.reason}; continued from the last frame")
        if carried.last_frame is not None:
            import PIL.Image
            from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

            condition = LTXVideoCondition(
                image=PIL.Image.fromarray(carried.last_frame),
                frame_index=0,
                strength=carried.strength,
            )
            kwargs = dict(
                conditions=[condition],
                image_cond_noise_scale=self.frame_cond_noise_scale,
            )
            return _Conditioning(kwargs, "frame", "; ".join(notes))
        notes.append("no last frame to continue from; generated without continuity")
        return _Conditioning({}, "none", "; ".join(notes))

    def _denoise(
        self,
        pipe: Any,
        request: GenerationRequest,
        conditioning: _Conditioning,
        generator: torch.Generator,
        progress: ProgressFn,
        cancel: CancelToken,
        timings: dict[str, float],
    ) -> torch.Tensor:
        marks: dict[str, float] = {}

        def loop_started(module: Any, args: Any) -> None:
            marks.setdefault("loop", time.perf_counter())

        def on_step_end(pipeline: Any, step: int, timestep: Any, kw: dict) -> dict:
            marks["step"] = time.perf_counter()
            progress(step + 1, request.steps)
            if cancel.is_set():
                pipeline._interrupt = True  # the parent skips the remaining steps
            return {}

        hook = pipe.transformer.register_forward_pre_hook(loop_started)
        call_start = time.perf_counter()
        try:
            latents = pipe(
                prompt=request.prompt,
                negative_prompt=request.negative_prompt or None,
                width=request.width,
                height=request.height,
                num_frames=request.num_frames,
                frame_rate=request.fps,
                num_inference_steps=request.steps,
                guidance_scale=request.guidance,
                generator=generator,
                output_type="latent",
                callback_on_step_end=on_step_end,
                callback_on_step_end_tensor_inputs=[],
                max_sequence_length=self.max_sequence_length,
                **conditioning.kwargs,
            ).frames
        finally:
            hook.remove()
        end = time.perf_counter()
        loop = marks.get("loop", call_start)
        timings["prepare"] = loop - call_start
        timings["denoise"] = marks.get("step", end) - loop
        timings["finish"] = end - marks.get("step", end)
        if cancel.is_set():
            raise GenerationCancelled("generation cancelled between denoising steps")
        return latents  # [1, C, F, h, w], normalised


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


def _oom_advice(request: GenerationRequest) -> str:
    lower = []
    if request.memory_mode in ("none", "vae_tiling"):
        lower.append("set memory_mode to model_offload (or sequential_offload)")
    elif request.memory_mode == "model_offload":
        lower.append("set memory_mode to sequential_offload")
    lower.append(
        f"lower the size ({request.width}x{request.height}) or num_frames "
        f"({request.num_frames})"
    )
    return "the GPU ran out of memory; " + ", or ".join(lower)


register_backend("ltx", LTXBackend)
