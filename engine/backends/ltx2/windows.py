"""Long LTX-2 takes: window by window, the picture and the sound carried on.

A scene longer than the story's window (``WindowPlan.frames``, at most 481
frames) is made in overlapping windows, the way the ``ltx`` backend makes
long takes (`engine.backends.ltx.extend`, after Lightricks' extension
sampler ``LTXVExtendSampler`` in ComfyUI-LTXVideo and diffusers'
``LTXI2VLongMultiPromptPipeline``), with LTX-2's second stream carried the
same way. Each window after the first is one `sample_scene` call in which
the previous windows' tails are in-place conditioning (the makers'
``VideoConditionByLatentIndex`` / ``AudioConditionByLatent`` with a mask):

- **Video.** The last ``k = overlap_frames / 8`` latent frames made so far
  take the window's first ``k`` latent slots at the window strength. The
  window's slot 0 is the causal VAE's one-frame slot, so its output latent
  is dropped (inside a take there is no frame to encode for it, the
  ``ltx`` backend's rule); the next ``k - 1`` are fused linearly with what
  they repeat (`engine.backends.diffusers.windows.fuse_overlap`) and the
  rest are new. AdaIN pulls the new latents' per-channel statistics toward
  the first window's by ``adain_factor`` (diffusers'
  ``adain_normalize_latents``).
- **Sound.** The audio made so far ends where the picture made so far ends
  (25 latents a second). The window's audio starts with the last ``n``
  audio latents held the same way, ``n`` chosen so that after the window the
  take's audio again ends exactly with its picture (the audio grid never
  drifts from the video's, whatever the rounding), and only what follows
  them is appended: at strength 1 the held latents (both streams) come out
  as they went in, so what follows them is appended to the take as it was
  and the waveform has no gap and no repeat at a seam; below 1 the overlaps
  are fused linearly.
- **Prompts and seeds.** Window ``i`` uses the ``i``-th window prompt (the
  last repeats) and the seed ``seed + first latent of the window``, as the
  ``ltx`` backend does.

A take with one window is exactly a one-piece scene. The scene join (a
predecessor's tails, `engine.backends.ltx2.conditioning`) conditions the
first window only; reference tokens (`engine.backends.ltx2.references`)
condition every window, and a supplied dialogue track
(`engine.backends.ltx2.supplied_audio`) holds each window's audio to its
stretch of the track, from the window's first audio latent on. Long
takes run in one stage at full size: the two-stage route would need the
carried tails at half size in every window, which the makers' pipelines do
not define.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.pipelines.ltx.pipeline_ltx_i2v_long_multi_prompt import (
    adain_normalize_latents,
)

from engine.backend import GenerationCancelled, WindowPlan, WindowReport
from engine.backends.diffusers.frames import pixel_frames
from engine.backends.diffusers.latents import LTX_RATIOS
from engine.backends.diffusers.windows import (
    fuse_overlap,
    fuse_sequence,
    window_spans,
)
from engine.backends.ltx2.audio import audio_latent_count, latents_per_second
from engine.backends.ltx2.sample import Carried, Encoded, Sampled, Scene, sample_scene

__all__ = ["Take", "audio_overlap", "sample_take"]

# (step, steps, window, windows)
StepFn = Callable[[int, int, int, int], None]


@dataclass
class Take:
    """A take's latents window by window: the video ``[1, C, F, h, w]`` and
    audio ``[1, L, D]``, the first window's `Sampled` (what the scene join
    held), each window's report and stage time, and the seams: per window
    after the first, ``(video latents held, audio latents held)``."""

    video: torch.Tensor
    audio: torch.Tensor
    first: Sampled
    windows: list[WindowReport] = field(default_factory=list)
    window_seconds: list[float] = field(default_factory=list)
    sampled: list[Sampled] = field(default_factory=list)
    seams: list[tuple[int, int]] = field(default_factory=list)
    prompt_seconds: float = 0.0


def audio_overlap(
    made_audio: int,
    made_video: int,
    window_latents: int,
    k: int,
    fps: int,
    per_second: float,
) -> tuple[int, int]:
    """``(window audio latents, audio latents to hold)`` for a window of
    ``window_latents`` video latents after ``made_video`` video latents and
    ``made_audio`` audio latents, holding ``k`` video latents: the window's
    own audio length, and the overlap that makes the take's audio end with
    its picture after the window.

    >>> audio_overlap(126, 16, 16, 3, 24, 25.0)
    (126, 18)
    """
    window_audio = audio_latent_count(pixel_frames(window_latents), fps, per_second)
    after = made_video + window_latents - k
    target = audio_latent_count(pixel_frames(after), fps, per_second)
    held = made_audio + window_audio - target
    return window_audio, max(1, min(held, made_audio, window_audio - 1))


def sample_take(
    pipe: Any,
    scene: Scene,
    plan: WindowPlan,
    prompts: list[Encoded],
    texts: list[str],
    carried: Carried,
    on_step: StepFn,
    cancelled: Callable[[], bool],
    *,
    preview: Any = None,
) -> Take:
    """Denoise a take window by window (see the module docstring).

    ``prompts``/``texts``: one encoded prompt per window (the last repeats);
    ``carried``: the scene join's conditioning, for the first window.
    ``on_step(step, steps, window, windows)`` after each step; cancel is
    checked before every step (`sample_scene`), so nothing of a cancelled
    take is returned. ``preview``: hears latent previews (`sample_scene`).
    """
    t = LTX_RATIOS.temporal
    spans = window_spans(scene.num_frames, plan.frames, plan.overlap_frames)
    k = plan.overlap_frames // t
    per_second = latents_per_second(pipe)
    take: Take | None = None
    for index, (start, end) in enumerate(spans):
        prompt = prompts[min(index, len(prompts) - 1)]
        text = texts[min(index, len(texts) - 1)]
        frames = pixel_frames(end - start)
        window = dataclasses.replace(scene, num_frames=frames, seed=scene.seed + start)

        def step(done: int, steps: int, index: int = index) -> None:
            on_step(done, steps, index + 1, len(spans))

        mark = time.perf_counter()
        try:
            take = _window(
                pipe, take, window, (start, end), k, plan, prompt, carried, step,
                cancelled, per_second, preview=preview,
            )  # fmt: skip
        except GenerationCancelled as exc:
            raise GenerationCancelled(
                f"cancelled in window {index + 1} of {len(spans)} ({exc})"
            ) from exc
        take.window_seconds.append(time.perf_counter() - mark)
        take.windows.append(
            WindowReport(
                start_frame=0 if start == 0 else 1 + t * (start - 1),
                num_frames=frames,
                seed=window.seed,
                prompt=text,
            )
        )
    assert take is not None, "a take has at least one window"
    return take


def _window(
    pipe: Any,
    take: Take | None,
    window: Scene,
    span: tuple[int, int],
    k: int,
    plan: WindowPlan,
    prompt: Encoded,
    carried: Carried,
    step: Callable[[int, int], None],
    cancelled: Callable[[], bool],
    per_second: float,
    *,
    preview: Any = None,
) -> Take:
    """One window: the first from the scene join's conditioning, a later one
    from the take so far (see the module docstring)."""
    start, end = span
    if take is None:
        out = sample_scene(
            pipe, window, prompt, carried, step, cancelled, preview=preview
        )
        take = Take(out.video, out.audio, out)
    else:
        made_v, made_a = take.video.shape[2], take.audio.shape[1]
        _, held = audio_overlap(made_a, made_v, end - start, k, window.fps, per_second)
        hold = Carried(
            video=take.video[:, :, -k:],
            audio=take.audio[:, -held:],
            strength=plan.strength,
            audio_held=held,
            references=carried.references,  # in every window
            audio_track=carried.audio_track,  # the supplied sound, from here on
            audio_offset=made_a - held,
        )
        out = sample_scene(pipe, window, prompt, hold, step, cancelled, preview=preview)
        new = out.video[:, :, 1:]  # slot 0: the one-frame slot, dropped
        fresh = adain_normalize_latents(
            new[:, :, k - 1 :], take.first.video, plan.adain_factor
        )
        new = torch.cat([new[:, :, : k - 1], fresh], dim=2)
        if plan.strength >= 1.0:  # held as they went in: append what follows
            take.video = torch.cat([take.video, new[:, :, k - 1 :]], dim=2)
            take.audio = torch.cat([take.audio, out.audio[:, held:]], dim=1)
        else:
            take.video = fuse_overlap(take.video, new, k - 1)
            take.audio = fuse_sequence(take.audio, out.audio, held)
        take.seams.append((out.conditioned_video, out.conditioned_audio))
    take.sampled.append(out)
    return take
