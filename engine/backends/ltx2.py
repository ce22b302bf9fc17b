"""The ``ltx2`` backend: LTX-2 on diffusers, video with synchronized sound.

`LTX2Backend.generate` runs in a fixed order:

1. check the request (sizes multiples of 32, frames ``8k + 1`` up to 481,
   steps, guidance, memory mode);
2. load the pipeline once per (model, device, memory mode, GGUF file) and keep
   it (`engine.ltx.runtime`, shared with the ``ltx`` backend);
3. choose the conditioning: the predecessor's video tail latents when they fit
   this model and size (no VAE decode/encode), with its audio tail latents,
   else its last frame encoded (no sound carried), and record why;
4. denoise video and audio together (`engine.ltx2.sample`), reporting each
   step and stopping between steps on cancel; when the checkpoint folder has
   a latent upsampler (``latent_upsampler/``) and the size halves to
   multiples of 32, in two stages: half size, the upsampler, then LTX-2's
   three stage-2 sigmas at full size with stage 1's audio held (the carried
   video tail enters stage 1 averaged 2x2 and stage 2 as it is);
5. decode the video in chunks straight to uint8 frames, and the audio
   through the audio VAE and vocoder to a waveform as long as the picture;
6. keep the last latent frames of both streams as the take's tails.

A scene is made in one window (up to 481 frames, 20 s at 24 fps); long takes
window by window are the ``ltx`` backend's. CUDA out-of-memory becomes
`engine.backend.OutOfMemoryError` with advice. Weights are bf16 on CUDA and
fp32 on CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from diffusers.pipelines.ltx2.utils import STAGE_2_DISTILLED_SIGMA_VALUES

from engine.backend import (
    PROMPT_TOKEN_BUDGETS,
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
from engine.ltx.extend import decode_in_chunks, encode_frame, repeated_frames
from engine.ltx.latents import (
    LTX_RATIOS,
    check_latent_fit,
    check_size,
    latent_shape,
    tail_latents,
    tail_meta,
)
from engine.ltx.memory import MEMORY_MODE_NEEDS
from engine.ltx.runtime import free_device_memory, loaded_model, release_models
from engine.ltx2.audio import (
    AUDIO_NORMALISATION,
    audio_tail_count,
    decode_audio,
    fit_duration,
    latents_per_second,
)
from engine.ltx2.loading import load_tokenizer
from engine.ltx2.sample import (
    Carried,
    Refine,
    Scene,
    encode_prompt,
    sample_scene,
    upsample_latents,
)
from engine.models import TINY_MODEL_ID

__all__ = ["LTX2Backend", "MAX_FRAMES", "PRESETS"]

log = logging.getLogger(__name__)

MAX_FRAMES = 481  # 20 s at 24 fps, LTX-2's longest clip

# (steps, guidance) per preset: the dev model card runs 40 steps at guidance
# 4; the distilled checkpoint was trained for 8 steps without guidance (its
# own sigma schedule, engine.ltx2.sample); random tiny weights stay cheap.
PRESETS: dict[str, dict[str, tuple[int, float]]] = {
    "dev": {"fast": (20, 4.0), "balanced": (40, 4.0), "high": (50, 4.0)},
    "distilled": {"fast": (8, 1.0), "balanced": (8, 1.0), "high": (8, 1.0)},
    "tiny": {"fast": (2, 1.0), "balanced": (2, 3.0), "high": (4, 3.0)},
}


def checkpoint_kind(model: str) -> str:
    """``tiny``, ``distilled`` or ``dev`` from the model's name.

    >>> checkpoint_kind("Lightricks/LTX-2"), checkpoint_kind("x/ltx-2-distilled")
    ('dev', 'distilled')
    """
    name = model.lower()
    if name == TINY_MODEL_ID:
        return "tiny"
    return "distilled" if "distill" in name else "dev"


@dataclass(frozen=True)
class _Conditioning:
    carried: Carried
    used: Literal["latent", "frame", "none"]
    audio_used: Literal["latent", "none"]
    note: str = ""


class LTX2Backend(VideoBackend):
    """LTX-2 through `engine.ltx2.sample`.

    Parameters
    ----------
    model:
        Used when the request names none: ``tiny-random``, a folder, or a
        Hugging Face id in the local cache.
    device:
        ``cuda``/``cpu``; the best available when ``None``.
    max_sequence_length:
        Gemma tokens the prompt may use (the pipeline's default, 1024).
    """

    name = "ltx2"
    version = "1"
    supports_latent_continuity = True
    makes_audio = True

    def __init__(
        self,
        model: str = "",
        device: str | None = None,
        max_sequence_length: int = PROMPT_TOKEN_BUDGETS["ltx2"],
    ) -> None:
        self.model = model
        self.device = device
        self.max_sequence_length = max_sequence_length

    def generate(
        self, request: GenerationRequest, progress: ProgressFn, cancel: CancelToken
    ) -> GenerationResult:
        """Generate one take with sound; see the module docstring for the steps."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        model = request.model or self.model
        self.check_request(request)
        if cancel.is_set():
            raise GenerationCancelled("cancelled before the model was loaded")
        loaded = loaded_model(
            model,
            self.device,
            request.memory_mode,
            family="ltx2",
            transformer_file=request.transformer_file,
        )
        pipe = loaded.pipe
        _check_ratios(pipe)
        timings["load"] = time.perf_counter() - start
        try:
            mark = time.perf_counter()
            conditioning = self._conditioning(pipe, request, model)
            timings["prepare"] = time.perf_counter() - mark
            mark = time.perf_counter()
            prompt = encode_prompt(
                pipe,
                request.prompt,
                request.negative_prompt,
                request.guidance,
                self.max_sequence_length,
            )
            timings["prompt"] = time.perf_counter() - mark
            scene = Scene(
                num_frames=request.num_frames,
                height=request.height,
                width=request.width,
                fps=request.fps,
                seed=request.seed,
                steps=request.steps,
                guidance=request.guidance,
                distilled=checkpoint_kind(model) == "distilled",
            )
            sampled, note = self._denoise(
                pipe, scene, prompt, conditioning, progress, cancel
            )
            if note:
                conditioning = dataclasses.replace(
                    conditioning,
                    note="; ".join(n for n in (conditioning.note, note) if n),
                )
            timings["denoise"] = sampled.seconds
            mark = time.perf_counter()
            frames = decode_in_chunks(
                pipe,
                sampled.video,
                generator=torch.Generator("cpu").manual_seed(request.seed),
                chunk_latents=max(16, sampled.video.shape[2]),
            )
            timings["decode"] = time.perf_counter() - mark
            mark = time.perf_counter()
            samples, rate = decode_audio(pipe, sampled.audio)
            samples = fit_duration(samples, rate, request.num_frames / request.fps)
            timings["decode_audio"] = time.perf_counter() - mark
        except torch.OutOfMemoryError as exc:
            free_device_memory()
            raise OutOfMemoryError(_oom_advice(request)) from exc
        keep = max(1, request.windows.overlap_frames // LTX_RATIOS.temporal)
        tail = tail_latents(sampled.video, keep)
        # the audio that lasts as long as the video tail, and one latent more
        audio_keep = audio_tail_count(
            request.windows.overlap_frames, request.fps, latents_per_second(pipe)
        )
        audio_tail = sampled.audio[:, -(audio_keep + 1) :].detach().float().cpu()
        meta = tail_meta(
            model=model,
            tail=tail,
            width=request.width,
            height=request.height,
            num_frames=request.num_frames,
        )
        meta.update(
            audio_normalisation=AUDIO_NORMALISATION,
            audio_latent_shape="x".join(str(d) for d in audio_tail.shape),
            audio_latents_per_second=f"{latents_per_second(pipe):g}",
        )
        timings["total"] = time.perf_counter() - start
        repeated = repeated_frames(sampled.conditioned_video)
        if conditioning.used == "frame":
            repeated = 1
        return GenerationResult(
            frames=frames,
            tail_latents=tail,
            latent_meta=meta,
            timings=timings,
            continuity_used=conditioning.used,
            continuity_note=conditioning.note,
            random_weights=loaded.source.random_weights,
            repeated_frames=repeated,
            audio=samples,
            audio_rate=rate,
            tail_audio_latents=audio_tail,
            audio_continuity_used=("latent" if sampled.conditioned_audio else "none"),
        )

    def _denoise(
        self,
        pipe: Any,
        scene: Scene,
        prompt: Any,
        conditioning: _Conditioning,
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> tuple[Any, str]:
        """One stage, or the two-stage route when the model has a latent
        upsampler and the size halves to multiples of 32: stage 1 at half
        size, the upsampler, then stage 2 (LTX-2's three stage-2 sigmas) at
        full size from the upsampled latents, the audio of stage 1 held."""
        carried = conditioning.carried
        two_stage = (
            getattr(pipe, "latent_upsampler", None) is not None
            and scene.width % 64 == 0
            and scene.height % 64 == 0
        )
        if not two_stage:
            sampled = sample_scene(
                pipe, scene, prompt, carried, _steps(progress, 1), cancel.is_set
            )
            return sampled, ""
        half = dataclasses.replace(
            scene, width=scene.width // 2, height=scene.height // 2
        )
        small = carried
        if carried.video is not None:  # the tail at half size (2x2 average)
            pooled = torch.nn.functional.avg_pool3d(carried.video, (1, 2, 2))
            small = dataclasses.replace(carried, video=pooled)
        elif carried.image is not None:
            pooled = torch.nn.functional.avg_pool3d(carried.image, (1, 2, 2))
            small = dataclasses.replace(carried, image=pooled)
        first = sample_scene(
            pipe, half, prompt, small, _steps(progress, 1), cancel.is_set
        )
        up = upsample_latents(pipe, first.video)
        refine = Refine(up, first.audio, tuple(STAGE_2_DISTILLED_SIGMA_VALUES))
        second = sample_scene(
            pipe, scene, prompt, carried, _steps(progress, 2), cancel.is_set, refine
        )
        second.audio = first.audio
        second.conditioned_audio = first.conditioned_audio
        second.seconds += first.seconds
        return second, (
            f"two-stage: {half.width}x{half.height}, latent upsampler, "
            f"{len(refine.sigmas)} refining steps at {scene.width}x{scene.height}"
        )

    def prompt_tokens(self, model: str) -> tuple[Callable[[str], int], int]:
        """Gemma's own token counter and the budget the pipeline reads."""
        tokenizer = load_tokenizer(model or self.model)

        def count(text: str) -> int:
            return len(tokenizer(text, verbose=False)["input_ids"])

        return count, self.max_sequence_length

    def release(self) -> None:
        release_models()

    @staticmethod
    def plan_frames(frames: int) -> int:
        """The nearest frame count LTX-2 makes (8k+1, 9 to 481).

        >>> LTX2Backend.plan_frames(48), LTX2Backend.plan_frames(2000)
        (49, 481)
        """
        k = max(1, round((frames - 1) / LTX_RATIOS.temporal))
        return min(k * LTX_RATIOS.temporal + 1, MAX_FRAMES)

    def preset(self, quality_preset: str, model: str) -> tuple[int, float]:
        table = PRESETS[checkpoint_kind(model or self.model)]
        if quality_preset not in table:
            raise BackendError(
                f"quality_preset must be one of {sorted(table)}, got {quality_preset!r}"
            )
        return table[quality_preset]

    @staticmethod
    def check_request(request: GenerationRequest) -> None:
        """Refuse requests LTX-2 cannot run, with what to change."""
        check_size(request.width, request.height, request.num_frames)
        if request.num_frames > MAX_FRAMES:
            raise BackendError(
                f"num_frames is {request.num_frames}; the ltx2 backend makes a scene "
                f"in one piece of at most {MAX_FRAMES} frames: shorten the scene or "
                "split it in two continuous scenes"
            )
        if request.steps < 1:
            raise BackendError(f"steps must be at least 1, got {request.steps}")
        if request.guidance < 0:
            raise BackendError(f"guidance must be >= 0, got {request.guidance}")
        if request.memory_mode not in MEMORY_MODE_NEEDS:
            raise BackendError(
                f"memory_mode must be one of {', '.join(MEMORY_MODE_NEEDS)}, got "
                f"{request.memory_mode!r}"
            )
        if not 0.0 < request.windows.strength <= 1.0:
            raise BackendError(
                f"windows.strength must be in (0, 1], got {request.windows.strength}"
            )

    def _conditioning(
        self, pipe: Any, request: GenerationRequest, model: str
    ) -> _Conditioning:
        carried = request.continuity
        if carried is None:
            return _Conditioning(Carried(), "none", "none")
        strength = carried.strength * request.windows.strength
        notes: list[str] = []
        if carried.mode == "latent":
            expected = latent_shape(
                request.width,
                request.height,
                request.num_frames,
                pipe.transformer.config.in_channels,
            )
            fit = check_latent_fit(
                carried.tail_latents,
                carried.latent_meta,
                model=model,
                expected=expected,
            )
            if fit.ok:
                assert carried.tail_latents is not None, "a fit tail exists"
                k = min(carried.tail_latents.shape[2], expected.frames - 1)
                audio = carried.tail_audio_latents
                audio_used: Literal["latent", "none"] = "latent"
                if audio is None:
                    audio_used = "none"
                    notes.append("the previous take has no sound; none carried")
                elif audio.ndim != 3 or audio.shape[2] != _audio_width(pipe):
                    audio, audio_used = None, "none"
                    notes.append(
                        "the previous take's audio tail does not fit this model"
                    )
                return _Conditioning(
                    Carried(
                        video=carried.tail_latents,
                        audio=audio,
                        strength=strength,
                        audio_frames=repeated_frames(k),
                    ),
                    "latent",
                    audio_used,
                    "; ".join(notes),
                )
            notes.append(f"{fit.reason}; continued from the last frame")
        if carried.last_frame is not None:
            image = encode_frame(pipe, carried.last_frame, request)
            notes.append("no sound carried (only latents carry it)")
            return _Conditioning(
                Carried(image=image, strength=carried.strength),
                "frame",
                "none",
                "; ".join(notes),
            )
        notes.append("no last frame to continue from; generated without continuity")
        return _Conditioning(Carried(), "none", "none", "; ".join(notes))


def _steps(progress: ProgressFn, stage: int) -> Callable[[int, int], None]:
    """Steps of a stage to ``progress`` (two stages report as two windows)."""

    def report(step: int, steps: int) -> None:
        if stage == 1:
            progress(step, steps)
        else:
            progress(step, steps, stage, 2)

    return report


def _audio_width(pipe: Any) -> int:
    mel = pipe.audio_mel_bins // pipe.audio_vae_mel_compression_ratio
    return pipe.audio_latent_channels * mel


def _check_ratios(pipe: Any) -> None:
    ratios = (pipe.vae_temporal_compression_ratio, pipe.vae_spatial_compression_ratio)
    if ratios != (LTX_RATIOS.temporal, LTX_RATIOS.spatial):
        raise BackendError(
            f"the model's VAE compresses {ratios[0]}x in time and {ratios[1]}x in "
            f"space; the ltx2 backend needs LTX-2's {LTX_RATIOS.temporal}x and "
            f"{LTX_RATIOS.spatial}x"
        )


def _oom_advice(request: GenerationRequest) -> str:
    lower = []
    if request.memory_mode in ("none", "vae_tiling"):
        lower.append("set memory_mode to fp8, group_offload or model_offload")
    elif request.memory_mode in ("fp8", "model_offload", "group_offload"):
        lower.append("set memory_mode to sequential_offload, or use a GGUF transformer")
    lower.append(
        f"lower the size ({request.width}x{request.height}) or num_frames "
        f"({request.num_frames})"
    )
    return "the GPU ran out of memory; " + ", or ".join(lower)


register_backend("ltx2", LTX2Backend)
