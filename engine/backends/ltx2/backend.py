"""The ``ltx2`` backend: LTX-2 on diffusers, video with synchronized sound.

`LTX2Backend.generate` runs in a fixed order:

1. check the request (sizes multiples of 32, frames ``8k + 1`` up to 481,
   steps, guidance, memory mode);
2. load the pipeline once per (model, device, memory mode, GGUF file) and keep
   it (`engine.backends.diffusers.runtime`, shared with the ``ltx`` backend);
3. choose the conditioning: the predecessor's video tail latents when they fit
   this model and size (no VAE decode/encode), with its audio tail latents,
   else its last frame encoded (no sound carried), and record why; the
   scene's reference images as keyframe tokens before the clip, or as
   in-context references for an IC-LoRA (`engine.backends.ltx2.references`);
   a supplied dialogue track encoded into the audio stream and held there
   (`engine.backends.ltx2.supplied_audio`); the take's LoRA stack loaded and
   turned on (`engine.backends.ltx2.loras`);
4. denoise video and audio together (`engine.backends.ltx2.sample`), reporting each
   step and stopping between steps on cancel; when the checkpoint folder has
   a latent upsampler (``latent_upsampler/``) and the size halves to
   multiples of 32, in the makers' two stages (`engine.backends.ltx2.stages`:
   half size, the upsampler, three stage-2 sigmas at full size without
   guidance, the distilled LoRA on a dev model);
5. decode the video 16 latents at a time in spatial tiles straight to uint8
   frames, and the audio through the audio VAE and vocoder to a waveform as
   long as the picture (a supplied track is the take's sound itself,
   resampled);
6. keep the last latent frames of both streams as the take's tails, and
   record the recipe: the checkpoint kind and how it was read, each stage's
   sigmas and guidance, the LoRAs, the join strength.

The checkpoint's release (LTX-2.0, 2.3 or 2.5) is read from its configs
(`engine.backends.ltx2.loading.model_version_of`) and the quality preset
takes that release's recipe from the catalog (`engine.catalog.LTX2_VERSIONS`):
steps, CFG for video and audio, spatio-temporal guidance on the makers'
block, modality guidance, rescale. A scene longer than the story's window
(``settings.windows.frames``, at most 481 frames) is made window by window
with its sound carried on (`engine.backends.ltx2.windows`), up to 120 s.
CUDA out-of-memory becomes `engine.backend.OutOfMemoryError` with advice.
Weights are bf16 on CUDA and fp32 on CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.backend import (
    BackendError,
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    LoraFile,
    OutOfMemoryError,
    ProgressFn,
    VideoBackend,
    register_backend,
    report_phase,
)
from engine.backends.diffusers import runtime
from engine.backends.diffusers.adain import pull_toward_anchor
from engine.backends.diffusers.frames import (
    decode_in_chunks,
    repeated_frames,
)
from engine.backends.diffusers.latents import (
    LTX_RATIOS,
    check_size,
    check_window_plan,
    tail_latents,
    tail_meta,
)
from engine.backends.diffusers.memory import out_of_memory_advice
from engine.backends.diffusers.runtime import free_device_memory
from engine.backends.diffusers.windows import window_spans
from engine.backends.ltx2 import loading
from engine.backends.ltx2.audio import (
    AUDIO_NORMALISATION,
    audio_tail_count,
    decode_audio,
    fit_duration,
    latents_per_second,
)
from engine.backends.ltx2.conditioning import Conditioning, continuity_conditioning
from engine.backends.ltx2.loading import (
    checkpoint_kind_of,
    load_tokenizer,
    model_version_of,
)
from engine.backends.ltx2.loras import (
    Adapter,
    TakeLoras,
    check_stack,
    downscale_factor,
    lora_uses,
)
from engine.backends.ltx2.references import reference_tokens
from engine.backends.ltx2.sample import (
    Encoded,
    Sampled,
    Scene,
    encode_prompt,
    sample_scene,
)
from engine.backends.ltx2.stages import (
    plan_stages,
    set_distilled_lora,
    stage_recipe,
    two_stages,
)
from engine.backends.ltx2.supplied_audio import (
    encode_track,
    take_waveform,
    track_note,
)
from engine.backends.ltx2.windows import Take, sample_take
from engine.catalog import Preset, plan_frames, resolve_preset, spec
from engine.model_cache import ModelCache
from kg.take import LoraUse, SamplingRecipe, StageRecipe
from kg.vocabulary import MAX_SCENE_SECONDS

__all__ = ["LTX2Backend", "loaded_model", "use_pipeline", "release_models"]

log = logging.getLogger(__name__)

SPEC = spec("ltx2")
assert SPEC.max_frames is not None, "LTX-2 makes a window of at most 481 frames"
MAX_FRAMES: int = SPEC.max_frames  # one window


FAMILY = runtime.Family(SPEC.model_family, loading)
loaded_model = FAMILY.loaded  # the family's pipeline, loaded once per cache
use_pipeline = FAMILY.use  # serve a built pipeline (tests, benchmarks)
release_models = FAMILY.release  # free it; other families' stay


class LTX2Backend(VideoBackend):
    """LTX-2 through `engine.backends.ltx2.sample`.

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
    version = "2"
    supports_latent_continuity = True
    supports_references = True  # keyframes before the clip, or IC-LoRA references
    supports_loras = True  # a LoRA stack through diffusers' adapter API
    supports_dialogue_audio = True  # the makers' audio-to-video route

    def __init__(
        self,
        model: str = "",
        device: str | None = None,
        max_sequence_length: int | None = None,
        models: ModelCache | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.max_sequence_length = max_sequence_length or SPEC.prompt_token_budget
        self.models = models

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
        report_phase(progress, "load")
        loaded = loaded_model(
            model,
            self.device,
            request.memory_mode,
            transformer_file=request.transformer_file,
            cache=self.models,
        )
        pipe = loaded.pipe
        _check_ratios(pipe)
        if not getattr(pipe.vae, "use_tiling", False):
            pipe.vae.enable_tiling()  # the makers always decode in tiles
        kind, kind_source = checkpoint_kind_of(model)
        release, release_source = model_version_of(model)
        preset = resolve_preset(
            SPEC.name,
            request.quality_preset,
            model,
            steps=request.steps,
            guidance=request.guidance,
            kind=kind,
            version=release,
        )
        timings["load"] = time.perf_counter() - start
        plan = request.windows
        spans = window_spans(request.num_frames, plan.frames, plan.overlap_frames)
        with TakeLoras(pipe, request.loras, request.memory_mode) as stack:
            try:
                mark = time.perf_counter()
                conditioning = continuity_conditioning(pipe, request, model)
                conditioning = _held(pipe, request, conditioning, stack.adapters)
                timings["prepare"] = time.perf_counter() - mark
                mark = time.perf_counter()
                texts = list(request.window_prompts())[: len(spans)]
                encoded = {
                    text: encode_prompt(
                        pipe,
                        text,
                        request.negative_prompt,
                        request.guidance,
                        self.max_sequence_length,
                    )
                    for text in dict.fromkeys(texts)
                }
                timings["prompt"] = time.perf_counter() - mark
                scene = _scene(request, preset, kind, release)
                lora = (
                    getattr(pipe, "distilled_lora_file", None)
                    if kind == "dev"
                    else None
                )
                if len(spans) == 1:
                    sampled, note, stages = self._denoise(
                        pipe,
                        scene,
                        encoded[texts[0]],
                        conditioning,
                        progress,
                        cancel,
                        kind,
                        lora,
                    )
                    take = Take(
                        sampled.video, sampled.audio, sampled, sampled=[sampled]
                    )
                else:
                    set_distilled_lora(pipe, None)
                    take = sample_take(
                        pipe,
                        scene,
                        plan,
                        [encoded[text] for text in texts],
                        texts,
                        conditioning.carried,
                        progress,
                        cancel.is_set,
                        preview=progress,
                    )
                    sampled = take.first
                    note = (
                        f"{len(spans)} windows of up to {plan.frames} frames, "
                        f"{plan.overlap_frames} carried at each seam with its sound "
                        f"(one stage at full size)"
                    )
                    stages = [
                        stage_recipe(f"window {i + 1}", scene, part)
                        for i, part in enumerate(take.sampled)
                    ]
                if note:
                    conditioning = dataclasses.replace(
                        conditioning,
                        note="; ".join(n for n in (conditioning.note, note) if n),
                    )
                timings["denoise"] = sum(part.seconds for part in take.sampled)
                # colour held toward the line's anchor (its latent statistics)
                take.video, correction = pull_toward_anchor(
                    take.video, request.color_anchor
                )
                mark = time.perf_counter()
                frames = decode_in_chunks(  # 16 latents at a time, tiled in space
                    pipe,
                    take.video,
                    generator=torch.Generator("cpu").manual_seed(request.seed),
                    chunk_latents=16,
                    cancel=cancel,
                    progress=progress,
                )
                timings["decode"] = time.perf_counter() - mark
                if cancel.is_set():
                    raise GenerationCancelled("cancelled before the sound was decoded")
                mark = time.perf_counter()
                seconds = request.num_frames / request.fps
                if request.dialogue_audio is not None:  # the track itself
                    rate = int(pipe.vocoder.config.output_sampling_rate)
                    samples = take_waveform(request.dialogue_audio, rate, seconds)
                else:
                    samples, rate = decode_audio(pipe, take.audio)
                    samples = fit_duration(samples, rate, seconds)
                timings["decode_audio"] = time.perf_counter() - mark
            except torch.OutOfMemoryError as exc:
                free_device_memory()
                raise OutOfMemoryError(out_of_memory_advice(request)) from exc
        keep = max(1, plan.overlap_frames // LTX_RATIOS.temporal)
        tail = tail_latents(take.video, keep)
        # the audio that lasts as long as the video tail, and one latent more
        audio_keep = audio_tail_count(
            plan.overlap_frames, request.fps, latents_per_second(pipe)
        )
        audio_tail = take.audio[:, -(audio_keep + 1) :].detach().float().cpu()
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
            audio_latents_made=str(take.audio.shape[1]),
        )
        timings["total"] = time.perf_counter() - start
        if len(spans) > 1:
            timings.update(
                {f"window_{i + 1}": sec for i, sec in enumerate(take.window_seconds)}
            )
        distilled = sorted({n for s in stages for n in s.loras})
        stages = stack.named(stages)  # the take's own LoRAs, stage by stage
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
            windows=take.windows if len(spans) > 1 else [],
            color_correction=correction,
            audio=samples,
            audio_rate=rate,
            tail_audio_latents=audio_tail,
            audio_continuity_used=("latent" if sampled.conditioned_audio else "none"),
            recipe=SamplingRecipe(
                checkpoint_kind=kind,
                kind_source=kind_source,
                model_version=release,
                version_source=release_source,
                quality_preset=request.quality_preset,
                stages=stages,
                loras=[
                    *lora_uses(stack),
                    *(
                        LoraUse(name=r, file=str(lora), weight=1.0, scope="stage 2")
                        for r in distilled
                    ),
                ],
                join_strength=(
                    conditioning.carried.strength
                    if conditioning.used != "none"
                    else None
                ),
            ),
        )

    def _denoise(
        self,
        pipe: Any,
        scene: Scene,
        prompt: Encoded,
        conditioning: Conditioning,
        progress: ProgressFn,
        cancel: CancelToken,
        kind: str,
        lora: Path | None,
    ) -> tuple[Sampled, str, list[StageRecipe]]:
        """One stage, or the makers' two stages (`engine.backends.ltx2.stages`)."""
        plan = plan_stages(pipe, scene, kind, lora)
        if not plan.two_stage:
            set_distilled_lora(pipe, None)
            sampled = sample_scene(
                pipe,
                scene,
                prompt,
                conditioning.carried,
                _steps(progress, 1),
                cancel.is_set,
                preview=progress,
            )
            return sampled, plan.note, [stage_recipe("stage 1", scene, sampled)]
        return two_stages(
            pipe,
            scene,
            prompt,
            conditioning.carried,
            plan,
            (_steps(progress, 1), _steps(progress, 2)),
            cancel.is_set,
            preview=progress,
        )

    def check_loras(self, model: str, loras: tuple[LoraFile, ...]) -> None:
        """Refuse LoRAs made for another architecture than ``model``'s, reading
        their headers only (`engine.backends.ltx2.loras.check_stack`); a model
        not here is left to the load to report."""
        try:
            check_stack(model or self.model, loras)
        except BackendError as exc:  # not here: the load says so
            log.info("LoRA check left to the load: %s", exc)

    def prompt_tokens(self, model: str) -> tuple[Callable[[str], int], int]:
        """Gemma's own token counter and the budget the pipeline reads."""
        tokenizer = load_tokenizer(model or self.model)

        def count(text: str) -> int:
            return len(tokenizer(text, verbose=False)["input_ids"])

        return count, self.max_sequence_length

    def release(self) -> None:
        """Free this family's loaded pipeline; another family's stays loaded."""
        release_models(cache=self.models)

    @staticmethod
    def plan_frames(frames: int) -> int:
        """The nearest frame count LTX-2 makes (8k+1; longer than a window,
        window by window).

        >>> LTX2Backend.plan_frames(48), LTX2Backend.plan_frames(2000)
        (49, 2001)
        """
        return plan_frames(SPEC.name, frames)

    def preset(self, quality_preset: str, model: str) -> tuple[int, float]:
        """Steps and guidance of a preset for the checkpoint's kind and
        release, read from the checkpoint where it says (`checkpoint_kind_of`,
        `model_version_of`); the rest of the recipe is read at generation."""
        chosen = self.recipe(quality_preset, model)
        return chosen.steps, chosen.guidance

    def recipe(self, quality_preset: str, model: str) -> Preset:
        """The whole preset (guidance terms and their cost) for ``model``."""
        model = model or self.model
        kind, _ = checkpoint_kind_of(model)
        release, _ = model_version_of(model)
        return resolve_preset(
            SPEC.name, quality_preset, model, kind=kind, version=release
        )

    @staticmethod
    def check_request(request: GenerationRequest) -> None:
        """Refuse requests LTX-2 cannot run, with what to change."""
        check_size(request.width, request.height, request.num_frames)
        plan = request.windows
        check_window_plan(plan.frames, plan.overlap_frames)
        if plan.frames > MAX_FRAMES:
            raise BackendError(
                f"windows.frames is {plan.frames}; an ltx2 window is at most "
                f"{MAX_FRAMES} frames (20 s at 24 fps): set settings.windows.frames "
                f"to {MAX_FRAMES} or less"
            )
        if request.num_frames > MAX_SCENE_SECONDS * request.fps + 1:
            raise BackendError(
                f"num_frames is {request.num_frames}; a scene lasts at most "
                f"{MAX_SCENE_SECONDS:g} s ({int(MAX_SCENE_SECONDS * request.fps) + 1} "
                f"frames at {request.fps} fps): shorten it"
            )
        if not 0.0 <= plan.adain_factor <= 1.0:
            raise BackendError(
                f"windows.adain_factor must be in [0, 1], got {plan.adain_factor}"
            )
        if request.steps < 1:
            raise BackendError(f"steps must be at least 1, got {request.steps}")
        if request.guidance < 0:
            raise BackendError(f"guidance must be >= 0, got {request.guidance}")
        if request.memory_mode not in SPEC.memory_modes:
            raise BackendError(
                f"memory_mode must be one of {', '.join(SPEC.memory_modes)}, got "
                f"{request.memory_mode!r}"
            )
        if not 0.0 < request.windows.strength <= 1.0:
            raise BackendError(
                f"windows.strength must be in (0, 1], got {request.windows.strength}"
            )


def _held(
    pipe: Any,
    request: GenerationRequest,
    conditioning: Conditioning,
    adapters: list[Adapter],
) -> Conditioning:
    """What the scene holds besides its join: its reference images as tokens
    (in-context ones for an in-context LoRA of the stack) and its supplied
    dialogue track in the audio stream, with the track's note."""
    in_context = [a for a in adapters if a.lora.in_context]
    downscale = downscale_factor(in_context[0].lora) if in_context else None
    carried = dataclasses.replace(
        conditioning.carried, references=reference_tokens(pipe, request, downscale)
    )
    note = conditioning.note
    if request.dialogue_audio is not None:
        track = encode_track(
            pipe, request.dialogue_audio, request.num_frames, request.fps
        )
        carried = dataclasses.replace(carried, audio_track=track.latents)
        said = track_note(request.dialogue_audio, request.num_frames / request.fps)
        note = "; ".join(n for n in (note, said) if n)
    return dataclasses.replace(conditioning, carried=carried, note=note)


def _scene(
    request: GenerationRequest, preset: Preset, kind: str, release: str
) -> Scene:
    """The sampler's scene: size, seed, and the release's recipe for the
    preset (the request's steps and CFG; the guidance terms from the catalog)."""
    return Scene(
        num_frames=request.num_frames,
        height=request.height,
        width=request.width,
        fps=request.fps,
        seed=request.seed,
        steps=request.steps,
        guidance=request.guidance,
        distilled=kind != "dev",
        audio_guidance=(
            preset.audio_guidance if preset.audio_guidance is not None else 7.0
        ),
        rescale=preset.rescale or 0.7,
        stg=preset.stg,
        stg_blocks=preset.stg_blocks,
        modality=preset.modality,
        cross_timestep=SPEC.versions[release].cross_timestep,
    )


def _steps(progress: ProgressFn, stage: int) -> Callable[[int, int], None]:
    """Steps of a stage to ``progress`` (two stages report as two windows)."""

    def report(step: int, steps: int) -> None:
        if stage == 1:
            progress(step, steps)
        else:
            progress(step, steps, stage, 2)

    return report


def _check_ratios(pipe: Any) -> None:
    ratios = (pipe.vae_temporal_compression_ratio, pipe.vae_spatial_compression_ratio)
    if ratios != (LTX_RATIOS.temporal, LTX_RATIOS.spatial):
        raise BackendError(
            f"the model's VAE compresses {ratios[0]}x in time and {ratios[1]}x in "
            f"space; the ltx2 backend needs LTX-2's {LTX_RATIOS.temporal}x and "
            f"{LTX_RATIOS.spatial}x"
        )


register_backend("ltx2", LTX2Backend)
