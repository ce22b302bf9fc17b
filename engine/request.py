"""The backend request of a scene: prompt, frames, steps, size, continuity.

Everything a backend is asked for is built here from the story and the
backend's own rules (`engine.backend.VideoBackend`: frame planning, presets,
its text encoder's token budget), so a request is the same whoever builds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from engine.backend import (
    DialogueAudio,
    GenerationRequest,
    LoraFile,
    ReferenceImage,
    SceneContext,
    VideoBackend,
    WindowPlan,
    get_backend,
)
from engine.catalog import CATALOG, check_settings
from engine.continuity import ContinuityPlan
from kg.graph import DynamicSceneGraph
from kg.prompt import build_prompt, window_prompts
from kg.schema import SceneNode, Settings, Story

__all__ = ["scene_context", "build_request", "resolve_backend", "asked_for"]

log = logging.getLogger(__name__)


def scene_context(story: Story, scene: SceneNode) -> SceneContext:
    """The attributes a storyboard backend draws, with environment defaults."""
    env = story.environment(scene.environment_id) if scene.environment_id else None
    chars = [story.character(cid) for cid in scene.character_ids]
    return SceneContext(
        title=scene.title,
        characters=tuple(c.name for c in chars),
        character_looks=tuple(", ".join(c.visual_attributes) for c in chars),
        environment=f"{env.name}, {env.description}" if env else "",
        lighting=scene.lighting or (env.lighting if env else ""),
        weather=scene.weather or (env.default_weather if env else "clear"),
        camera=scene.camera,
        motion=scene.motion,
    )


def _frames_and_preset(
    backend: VideoBackend, scene: SceneNode, settings: Settings, model: str
) -> tuple[int, int, float]:
    """Frame count, steps and guidance, asking the backend where it has rules.

    A duration becomes the nearest frame count the backend can make
    (``plan_frames``, e.g. LTX-Video's 8k+1); an explicit ``num_frames`` is
    passed as written, so a count the backend cannot make is refused with a
    message instead of being changed silently. Steps and guidance come from
    the backend's ``preset`` (e.g. distilled checkpoints need fewer steps).
    """
    frames = scene.frame_count(settings.fps)
    if scene.num_frames is None:
        frames = backend.plan_frames(frames)
    steps, guidance = backend.preset(settings.quality_preset, model)
    return frames, steps, guidance


def _prompt_budget(
    backend: VideoBackend, settings: Settings, model: str
) -> dict[str, Any]:
    """The backend's real token counter and budget, when it offers them.

    Without one (or when its tokenizer is not available locally; the backend
    then reports the missing model itself) the prompt generator's estimate
    and ``settings.prompt_token_budget`` apply.
    """
    try:
        tokens = backend.prompt_tokens(model)
    except Exception as exc:  # noqa: BLE001 - the estimate is a safe fallback
        log.info("token counter unavailable (%s); using the estimate", exc)
        return {}
    if tokens is None:
        return {}
    counter, limit = tokens
    cap = settings.prompt_token_budget
    return {"counter": counter, "budget": limit if cap is None else min(limit, cap)}


def build_request(
    story: Story,
    scene_id: str,
    model: str,
    continuity: ContinuityPlan,
    backend: VideoBackend | None = None,
    seed_offset: int = 0,
    references: tuple[ReferenceImage, ...] = (),
    *,
    loras: tuple[LoraFile, ...] = (),
    dialogue_audio: DialogueAudio | None = None,
) -> GenerationRequest:
    """The backend request of a scene under the story's settings.

    Without ``backend`` the base class's defaults apply (any frame count, the
    default presets, the estimated token count). ``seed_offset`` is added to
    the scene's seed (modulo 2**32): the candidates of a best-of-N run.
    """
    backend = backend or VideoBackend()
    settings = story.settings
    if backend.name in CATALOG:  # the rules Settings validation applies
        check_settings(settings, backend.name)
    graph = DynamicSceneGraph(story)
    scene = graph.scene(scene_id)
    budget = _prompt_budget(backend, settings, model)
    audio = backend.makes_audio
    prompt = build_prompt(graph, scene_id, audio=audio, **budget)
    frames, steps, guidance = _frames_and_preset(backend, scene, settings, model)
    windows = settings.windows
    plan = WindowPlan(
        frames=windows.frames,
        overlap_frames=windows.overlap_frames,
        strength=windows.strength,
        adain_factor=windows.adain_factor,
        join_strength=windows.join_strength,
        prompts=window_prompts(graph, scene_id, audio=audio, **budget),
    )
    return GenerationRequest(
        prompt=prompt.text,
        negative_prompt=prompt.negative,
        width=settings.width,
        height=settings.height,
        num_frames=frames,
        fps=settings.fps,
        seed=(scene.seed + seed_offset) % 2**32,
        steps=steps,
        guidance=guidance,
        quality_preset=settings.quality_preset,
        model=model,
        memory_mode=settings.memory_mode,
        transformer_file=settings.transformer_file,
        continuity=continuity.input,
        scene=scene_context(story, scene),
        windows=plan,
        references=references,
        loras=loras,
        dialogue_audio=dialogue_audio,
        hosted=settings.hosted,
    )


def resolve_backend(
    backend: str | VideoBackend | None,
    story: Story,
    backends: Callable[[str], VideoBackend] = get_backend,
) -> tuple[str, VideoBackend]:
    """A backend instance and its name, from a name, an instance or the settings.

    ``backends`` turns a name into an instance; a front end passes one that
    keeps instances for reuse (`studio.wiring.shared_backend`).
    """
    if backend is None or isinstance(backend, str):
        name = backend or story.settings.backend
        return name, backends(name)
    return backend.name, backend


def asked_for(request: GenerationRequest) -> tuple:
    """What a request asks of the backend, continuity input aside."""
    return (
        request.prompt,
        request.negative_prompt,
        request.width,
        request.height,
        request.num_frames,
        request.fps,
        request.seed,
        request.steps,
        request.guidance,
        request.scene,
        request.windows,
    )
