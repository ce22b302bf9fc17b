"""Generate one scene: from the story state to a new take on disk.

`generate_scene` runs the scene generation flow in a fixed order:

1. resolve the continuity source (the predecessor's selected take on a
   ``continuous`` edge) and the mode that can be honoured;
2. build the prompt and the request;
3. cache lookup: an identical content hash selects the existing take;
4. record a ``generating`` take (every state change goes through
   `kg.store.update_story`, never a story held across the generation);
5. call the backend;
6. write the first/last frames (lossless PNG), the tail latents and the clip
   (on the `ClipWriter` thread when one is given);
7. run the observer (with ``settings.release_models`` the backend's models
   are released first, and the observer's encoders after, so one heavy model
   is in memory at a time);
8. mark the take ``done``, select it, mark continuous descendants ``stale``.

Cancellation removes the unfinished take and restores the scene's status. A
backend failure (out of memory included) leaves a ``failed`` take with a
message saying what to change; the story and other takes stay intact.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.backend import (
    BackendError,
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    OutOfMemoryError,
    ProgressFn,
    SceneContext,
    VideoBackend,
    get_backend,
)
from engine.cache import cache_key
from engine.continuity import ContinuityPlan, plan_continuity, save_tail_latents
from engine.observe import TakeObserver
from engine.runlock import hold_run
from engine.takes import (
    apply_selection,
    find_cached_take,
    next_take_index,
)
from engine.video import ClipWriter, write_png, write_video
from kg.errors import UnsafePathError
from kg.graph import DynamicSceneGraph
from kg.layout import take_files
from kg.paths import resolve_asset
from kg.prompt import build_prompt
from kg.schema import (
    GenerationParams,
    SceneNode,
    Scores,
    Settings,
    Story,
    Take,
    TakeFiles,
    clip_message,
)
from kg.store import load_story, update_story

__all__ = [
    "scene_context",
    "build_request",
    "resolve_backend",
    "generate_scene",
]

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
    return {"counter": counter, "budget": min(limit, settings.prompt_token_budget)}


def build_request(
    story: Story,
    scene_id: str,
    model: str,
    plan: ContinuityPlan,
    backend: VideoBackend | None = None,
) -> GenerationRequest:
    """The backend request of a scene under the story's settings.

    Without ``backend`` the base class's defaults apply (any frame count, the
    default presets, the estimated token count).
    """
    backend = backend or VideoBackend()
    settings = story.settings
    graph = DynamicSceneGraph(story)
    scene = graph.scene(scene_id)
    prompt = build_prompt(graph, scene_id, **_prompt_budget(backend, settings, model))
    frames, steps, guidance = _frames_and_preset(backend, scene, settings, model)
    return GenerationRequest(
        prompt=prompt.text,
        negative_prompt=prompt.negative,
        width=settings.width,
        height=settings.height,
        num_frames=frames,
        fps=settings.fps,
        seed=scene.seed,
        steps=steps,
        guidance=guidance,
        model=model,
        memory_mode=settings.memory_mode,
        continuity=plan.input,
        scene=scene_context(story, scene),
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


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (OutOfMemoryError, MemoryError)):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch else None
    return oom is not None and isinstance(exc, oom)


def _failure_message(
    exc: BaseException, backend: str, request: GenerationRequest
) -> str:
    if _is_out_of_memory(exc):
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (
            f"out of memory in backend {backend!r} at {request.width}x"
            f"{request.height}, {request.num_frames} frames"
            + (f" ({detail})" if detail else "")
            + "; lower settings.width/height or the scene's duration, set "
            "settings.memory_mode to 'model_offload' or 'sequential_offload', "
            "or choose the 'fast' quality preset"
        )
    if isinstance(exc, BackendError):
        return str(exc)
    return (
        f"backend {backend!r} failed: {type(exc).__name__}: {exc}; "
        "see the log for details"
    )


def _check_result(result: GenerationResult, request: GenerationRequest) -> None:
    want = (request.num_frames, request.height, request.width, 3)
    frames = result.frames
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise BackendError(
            f"the backend returned frames of type {type(frames).__name__}, "
            "expected a uint8 numpy array"
        )
    if frames.shape[1:] != want[1:] or frames.shape[0] < 1:
        raise BackendError(
            f"the backend returned frames of shape {tuple(frames.shape)}, "
            f"expected {want}"
        )


def _remove_files(story_dir: Path, files: TakeFiles) -> None:
    for rel in files.model_dump().values():
        if rel:
            # behind a link nothing of ours was written: leave it alone
            with contextlib.suppress(UnsafePathError):
                resolve_asset(story_dir, rel).unlink(missing_ok=True)


def _mutate_take(
    scene_id: str, index: int, change: Callable[[SceneNode, Take], object]
) -> Callable[[Story], object]:
    """An `update_story` mutation on one take; a no-op if it was deleted."""

    def mutate(story: Story) -> object:
        try:
            scene = story.scene(scene_id)
            take = scene.take(index)
        except KeyError:
            log.warning("take %s of scene %r was deleted meanwhile", index, scene_id)
            return None
        return change(scene, take)

    return mutate


def generate_scene(
    story_dir: str | os.PathLike[str],
    scene_id: str,
    *,
    backend: str | VideoBackend | None = None,
    model: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    observer: TakeObserver | None = None,
    writer: ClipWriter | None = None,
    backends: Callable[[str], VideoBackend] = get_backend,
) -> Take:
    """Generate a scene as a new take and select it; returns the take.

    Parameters
    ----------
    story_dir : the story folder.
    scene_id : the scene to generate.
    backend : a backend name, an instance, or None for ``settings.backend``.
    model : model id or local path; None uses ``settings.model``.
    force : generate even when an identical take exists.
    progress : called as ``progress(step, total)`` by the backend.
    cancel : set it to stop between steps (raises `GenerationCancelled`).
    observer : scores the take (``scoring.observer.Observer`` or any
        `TakeObserver`); None leaves ``take.scores`` empty.
    writer : encode the mp4 on this writer's thread; None encodes before
        returning. With a writer the take is ``done`` before its clip lands;
        ``take.files.video`` is set once the file exists.
    backends : turns a backend name into an instance (default: a new one
        each time; front ends pass a resolver that reuses them).

    Returns the finished take (``status`` ``done``, or ``failed`` with
    ``error`` saying what to change). Raises `GenerationCancelled` when
    cancelled, `engine.continuity.ContinuityError` when the continuity
    predecessor has no take yet (neither leaves a take behind), and
    `engine.runlock.RunLockedError` when another process is generating
    scenes of this story.
    """
    with hold_run(story_dir):
        return _generate(
            Path(story_dir),
            scene_id,
            backend,
            model,
            force,
            progress,
            cancel,
            observer,
            writer,
            backends,
        )


def _generate(
    story_dir: Path,
    scene_id: str,
    backend: str | VideoBackend | None,
    model: str | None,
    force: bool,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    observer: TakeObserver | None,
    writer: ClipWriter | None,
    backends: Callable[[str], VideoBackend],
) -> Take:
    t0 = time.perf_counter()
    progress = progress or (lambda step, total: None)
    cancel = cancel or CancelToken()

    # 1. continuity source and mode
    story = load_story(story_dir)
    scene = story.scene(scene_id)  # KeyError names the scene
    backend_name, impl = resolve_backend(backend, story, backends)
    model = story.settings.model if model is None else model
    plan = plan_continuity(
        story_dir,
        story,
        scene_id,
        supports_latent=impl.supports_latent_continuity,
        backend_name=backend_name,
        width=story.settings.width,
        height=story.settings.height,
        model=model,
    )
    t_continuity = time.perf_counter()

    # 2. prompt and request
    request = build_request(story, scene_id, model, plan, impl)
    source_take = (
        story.scene(plan.source.scene_id).take(plan.source.take)
        if plan.source
        else None
    )
    key = cache_key(
        backend=backend_name,
        backend_version=impl.version,
        model=model,
        request=request,
        source=plan.source,
        source_key=(source_take.params.cache_key or source_take.created_at)
        if source_take
        else "",
        continuity_mode=plan.requested,
    )

    # 3. cache lookup
    if not force:
        cached = find_cached_take(story_dir, scene, key)
        if cached is not None:
            update_story(
                story_dir, lambda s: apply_selection(s, scene_id, cached.index)
            )
            log.info("scene %r: reusing identical take %d", scene_id, cached.index)
            return cached

    # 4. a generating take in the state
    params = GenerationParams(
        backend=backend_name,
        model=model,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        seed=request.seed,
        steps=request.steps,
        guidance=request.guidance,
        width=request.width,
        height=request.height,
        num_frames=request.num_frames,
        fps=request.fps,
        continuity_requested=plan.requested,
        continuity_used=plan.used,
        continuity_source=plan.source,
        continuity_note=plan.note,
        cache_key=key,
    )

    def start(s: Story) -> tuple[int, str]:
        scene = s.scene(scene_id)
        index = next_take_index(scene)
        scene.takes.append(Take(index=index, status="generating", params=params))
        prior, scene.status = scene.status, "generating"
        return index, prior

    index, prior_status = update_story(story_dir, start)
    files = take_files(scene_id, index)
    timings = {"continuity": t_continuity - t0}

    # 5. backend
    try:
        t_backend = time.perf_counter()
        result = impl.generate(request, progress, cancel)
        timings["backend"] = time.perf_counter() - t_backend
        for name, seconds in result.timings.items():
            timings[f"backend.{name}"] = float(seconds)
        _check_result(result, request)
    except GenerationCancelled:
        _abandon(story_dir, scene_id, index, prior_status, files)
        raise
    except Exception as exc:
        if not isinstance(exc, BackendError):
            log.exception("backend %r failed on scene %r", backend_name, scene_id)
        return _fail(
            story_dir,
            scene_id,
            index,
            timings,
            _failure_message(exc, backend_name, request),
        )
    except BaseException:
        _abandon(story_dir, scene_id, index, prior_status, files)
        raise
    release = story.settings.release_models
    if release:  # free the video model before the encoders load
        impl.release()

    def edited_since(saved: Story) -> bool:
        """Whether the scene as saved now asks for something else than was made."""
        try:
            now = build_request(saved, scene_id, model, plan, impl)
        except Exception:  # noqa: BLE001 - e.g. an entity it used was deleted
            return True
        return _asked_for(now) != _asked_for(request)

    take = _finish(
        story_dir,
        scene_id,
        index,
        result,
        request,
        plan,
        files,
        timings,
        t0,
        observer,
        writer,
        edited_since,
    )
    if release and observer is not None:
        observer.release()
    return take


def _asked_for(request: GenerationRequest) -> tuple:
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
    )


def _abandon(
    story_dir: Path, scene_id: str, index: int, prior_status: str, files: TakeFiles
) -> None:
    """Remove an unfinished take (cancelled) and restore the scene's status."""

    def change(scene: SceneNode, take: Take) -> None:
        scene.takes = [t for t in scene.takes if t.index != index]
        scene.status = prior_status

    update_story(story_dir, _mutate_take(scene_id, index, change))
    _remove_files(story_dir, files)


def _fail(
    story_dir: Path, scene_id: str, index: int, timings: dict[str, float], message: str
) -> Take:
    message = clip_message(message)  # an exception can say anything, at any length

    def change(scene: SceneNode, take: Take) -> Take:
        take.status = "failed"
        take.error = message
        take.timings = timings
        scene.status = "failed"
        return take.model_copy(deep=True)

    log.warning("scene %r take %d failed: %s", scene_id, index, message)
    _remove_files(story_dir, take_files(scene_id, index))
    return update_story(story_dir, _mutate_take(scene_id, index, change))


def _finish(
    story_dir: Path,
    scene_id: str,
    index: int,
    result: GenerationResult,
    request: GenerationRequest,
    plan: ContinuityPlan,
    files: TakeFiles,
    timings: dict[str, float],
    t0: float,
    observer: TakeObserver | None,
    writer: ClipWriter | None,
    edited_since: Callable[[Story], bool],
) -> Take:
    # 6. files: frames and latents now, the clip now or on the writer thread
    t_write = time.perf_counter()
    frames = result.frames
    written = TakeFiles(first_frame=files.first_frame, last_frame=files.last_frame)
    try:
        write_png(resolve_asset(story_dir, files.first_frame), frames[0])
        write_png(resolve_asset(story_dir, files.last_frame), frames[-1])
        if result.tail_latents is not None:
            meta = {
                "width": str(request.width),
                "height": str(request.height),
                "model": request.model,
            }
            meta.update(result.latent_meta)
            save_tail_latents(
                resolve_asset(story_dir, files.tail_latents), result.tail_latents, meta
            )
            written.tail_latents = files.tail_latents
        if writer is None:
            t_enc = time.perf_counter()
            write_video(resolve_asset(story_dir, files.video), frames, request.fps)
            timings["encode"] = time.perf_counter() - t_enc
            written.video = files.video
    except Exception as exc:
        log.exception("writing take %d of scene %r failed", index, scene_id)
        return _fail(
            story_dir,
            scene_id,
            index,
            timings,
            f"could not write the take's files: {exc}; check free disk space "
            f"and permissions in {story_dir}",
        )
    timings["write"] = time.perf_counter() - t_write - timings.get("encode", 0.0)

    # 7. observer
    used = result.continuity_used if plan.input is not None else "none"
    note = clip_message(
        "; ".join(dict.fromkeys(n for n in (plan.note, result.continuity_note) if n))
    )
    scores, embeddings = None, None
    if observer is not None:
        t_obs = time.perf_counter()
        scores, embeddings = _observe(
            story_dir,
            scene_id,
            index,
            observer,
            frames,
            plan,
            used,
            note,
            written,
        )
        timings["observe"] = time.perf_counter() - t_obs
    timings["total"] = time.perf_counter() - t0

    # 8. done, selected, descendants stale
    def change(scene: SceneNode, take: Take) -> Take:
        take.status = "done"
        take.params.continuity_used = used
        take.params.continuity_note = note
        take.params.random_weights = bool(result.random_weights)
        take.files = written.model_copy(update={"embeddings": embeddings})
        take.timings = dict(timings)
        take.scores = scores
        take.error = None
        return take.model_copy(deep=True)

    def complete(story: Story) -> Take | None:
        take = _mutate_take(scene_id, index, change)(story)
        if take is not None:
            stale = apply_selection(story, scene_id, index)
            if stale:
                log.info("scene %r: marked stale %s", scene_id, stale)
            if edited_since(story):
                # saved while it generated: the take shows the old text
                story.scene(scene_id).status = "stale"
                log.info("scene %r: edited while generating; marked stale", scene_id)
        return take

    take = update_story(story_dir, complete)
    if writer is not None and take is not None:
        writer.submit(
            resolve_asset(story_dir, files.video),
            frames,
            request.fps,
            on_done=_clip_recorder(
                story_dir, scene_id, index, files.video, time.perf_counter()
            ),
        )
    return take


def _clip_recorder(
    story_dir: Path, scene_id: str, index: int, rel: str, submitted: float
) -> Callable[[Path, BaseException | None], None]:
    """Record a clip the writer thread finished (or could not write)."""

    def on_done(path: Path, error: BaseException | None) -> None:
        elapsed = time.perf_counter() - submitted

        def change(scene: SceneNode, take: Take) -> None:
            if error is None:
                take.files.video = rel
                take.timings["encode"] = elapsed
            else:
                take.error = (
                    f"the clip could not be encoded: {error}; generate the scene "
                    "again (use --force)"
                )

        update_story(story_dir, _mutate_take(scene_id, index, change))
        if error is not None:
            path.unlink(missing_ok=True)

    return on_done


def _observe(
    story_dir: Path,
    scene_id: str,
    index: int,
    observer: TakeObserver,
    frames: np.ndarray,
    plan: ContinuityPlan,
    used: str,
    note: str,
    written: TakeFiles,
) -> tuple[Scores | None, str | None]:
    """Score the take; an observer failure is recorded, never fatal."""
    story = load_story(story_dir)
    take = story.scene(scene_id).take(index).model_copy(deep=True)
    take.files = written.model_copy()
    take.params.continuity_used = used
    take.params.continuity_note = note
    previous = plan.previous_last_frame if plan.source is not None else None
    try:
        observation = observer.observe(
            story_dir, story, scene_id, take, frames, previous
        )
    except Exception as exc:
        log.exception("the observer failed on scene %r take %d", scene_id, index)
        return Scores(unavailable={"observer": f"scoring failed: {exc}"}), None
    return observation.scores, observation.embeddings
