"""Generate one scene: from the story state to a new take on disk.

`generate_scene` runs the scene generation flow in a fixed order:

1. resolve the continuity source (the predecessor's selected take on a
   ``continuous`` edge) and the mode that can be honoured;
2. build the prompt and the request;
3. cache lookup: an identical content hash selects the existing take (a new
   take gets a new seed first, by ``settings.new_take_seed``: `engine.takes`);
4. record a ``generating`` take (every state change goes through
   `kg.store.update_story`, never a story held across the generation);
5. call the backend; then, where it did not pull its latents toward the
   take's colour anchor itself, transfer the frames' colours toward it
   (`engine.color`, ``settings.color``; the originals are kept);
6. write the first/last frames (lossless PNG), the tail latents and the clip
   (on the `ClipWriter` thread, while the observer scores, when one is given);
7. run the observer (with ``settings.release_models`` the backend's models
   are released first, and the observer's encoders after, so one heavy model
   is in memory at a time);
8. once the clip exists, mark the take ``done`` and select it, and mark
   continuous descendants ``stale``, in one save.

Progress is reported by phase (`engine.progress`: load, denoise, decode,
encode, score), and each phase's seconds are recorded in the take
(``phase.<name>``). Cancel is honoured in every phase: the backend checks it
between steps and decode chunks, the engine while it encodes and scores.
Cancellation removes the unfinished take and restores the scene's status. A
backend failure (out of memory included) leaves a ``failed`` take with a
message saying what to change; the story and other takes stay intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engine.backend import (
    BackendError,
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    LoraFile,
    ProgressFn,
    ReferenceImage,
    VideoBackend,
    get_backend,
)
from engine.budget import check_budget
from engine.cache import cache_key
from engine.color.anchor import plan_color_anchor
from engine.color.correct import correct_result
from engine.continuity import ContinuityPlan, plan_continuity
from engine.dialogue_audio import read_dialogue_audio
from engine.failure import check_result, failure_message
from engine.loras import chosen_loras, read_loras
from engine.observe import TakeObserver
from engine.outcome import Finishing, TakeInProgress, abandon, fail, finish
from engine.progress import PhaseProgress
from engine.redaction import redacted_traceback
from engine.references import chosen_references, read_references, used
from engine.request import asked_for, build_request, resolve_backend
from engine.runlock import hold_run
from engine.takes import (
    SEED_SPACE,
    apply_selection,
    find_cached_take,
    new_take_seed,
    next_take_index,
)
from engine.video import ClipWriter
from kg.errors import StoryConflictError
from kg.layout import take_files
from kg.schema import GenerationParams, SceneNode, Story, SuppliedSound, Take
from kg.store import load_story, save_story, update_story

__all__ = [
    "generate_scene",
    "PreparedTake",
    "prepare_take",
    "make_take",
    "complete_take",
    "backend_failed",
    "take_progress",
    "provisionally_selected",
]

T = TypeVar("T")

log = logging.getLogger(__name__)


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
    seed_offset: int = 0,
    new_take: bool = False,
) -> Take:
    """Generate a scene as a new take and select it; returns the take.

    Parameters
    ----------
    story_dir : the story folder.
    scene_id : the scene to generate.
    backend : a backend name, an instance, or None for ``settings.backend``.
    model : model id or local path; None uses ``settings.model``.
    force : generate even when an identical take exists.
    progress : called as ``progress(step, total)`` by the backend; a
        `engine.progress.PhaseProgress` hears every phase too.
    cancel : set it to stop in any phase (raises `GenerationCancelled`).
    observer : scores the take (``scoring.observer.Observer`` or any
        `TakeObserver`); None leaves ``take.scores`` empty.
    writer : encode the mp4 on this writer's thread while the observer
        scores; None encodes first. Either way the take becomes ``done`` and
        selected only once its clip exists.
    backends : turns a backend name into an instance (default: a new one
        each time; front ends pass a resolver that reuses them).
    seed_offset : added to the scene's seed (the candidates of best of N).
    new_take : a new take of a scene: its seed follows
        ``settings.new_take_seed`` (`engine.takes.new_take_seed`), and a take
        identical to an existing one is not made again (that one is selected).

    Returns the finished take (``status`` ``done``, or ``failed`` with
    ``error`` saying what to change). Raises `GenerationCancelled` when
    cancelled, `engine.continuity.ContinuityError` when the continuity
    predecessor has no take yet, `engine.references.ReferenceFileError` when
    a reference image cannot be used, `engine.loras.LoraFileError` when a LoRA
    is missing or made for another model, `engine.dialogue_audio.
    DialogueAudioError` when the scene's dialogue track cannot be read (none
    of these leaves a take behind), and
    `engine.runlock.RunLockedError` when another process is generating
    scenes of this story.
    """
    with hold_run(story_dir):
        prepared = prepare_take(
            story_dir,
            scene_id,
            backend=backend,
            model=model,
            force=force,
            backends=backends,
            seed_offset=seed_offset,
            new_take=new_take,
        )
        if isinstance(prepared, Take):
            return prepared  # an identical take, reused
        return make_take(prepared, progress, cancel, observer, writer)


def make_take(
    prepared: PreparedTake,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    observer: TakeObserver | None = None,
    writer: ClipWriter | None = None,
    *,
    defer: bool = False,
) -> Take | Finishing:
    """Steps 5 to 8 of a prepared take here: the backend, then
    `complete_take` (or `backend_failed`). The backend gets a
    `PhaseProgress` that relays to ``progress`` (every phase when it is one
    itself, the denoising steps otherwise) and times the phases. ``defer``:
    see `complete_take`; the returned `Finishing` reports its phases no more
    to ``progress`` (only into the take's timings)."""
    cancel = cancel or CancelToken()
    tracker = take_progress(progress)
    tracker.phase("load")
    try:
        result = prepared.impl.generate(prepared.request, tracker, cancel)
    except BaseException as exc:
        return backend_failed(prepared, exc)
    ended = complete_take(
        prepared,
        result,
        observer,
        writer,
        progress=tracker,
        cancel=cancel,
        defer=defer,
    )
    if isinstance(ended, Finishing):
        tracker.detach()  # the caller's progress goes on to the next scene
    return ended


def take_progress(progress: ProgressFn | None) -> PhaseProgress:
    """A fresh phase clock for one take, relaying to ``progress``."""
    if isinstance(progress, PhaseProgress):
        return PhaseProgress(listener=progress.relay)
    return PhaseProgress(steps=progress)


@dataclass
class PreparedTake:
    """A take begun (``generating`` in the state) and the request to make it.

    `prepare_take` makes it, a backend turns ``request`` into a result (here,
    or on a worker elsewhere: the request is plain data), and `complete_take`
    or `backend_failed` ends it; only the process that prepared it writes the
    story.
    """

    tip: TakeInProgress
    impl: VideoBackend
    backend_name: str
    model: str
    seed_offset: int
    references: tuple[ReferenceImage, ...] = field(default=())
    backend_started: float = field(default_factory=time.perf_counter)

    @property
    def request(self) -> GenerationRequest:
        return self.tip.request

    def edited_since(self, saved: Story) -> bool:
        """Whether the scene as saved now asks for something else than was made."""
        try:
            now = build_request(
                saved,
                self.tip.scene_id,
                self.model,
                self.tip.plan,
                self.impl,
                self.seed_offset,
                self.references,
            )
        except Exception:  # noqa: BLE001 - e.g. an entity it used was deleted
            return True
        return asked_for(now) != asked_for(self.request)


def prepare_take(
    story_dir: str | os.PathLike[str],
    scene_id: str,
    *,
    backend: str | VideoBackend | None = None,
    model: str | None = None,
    force: bool = False,
    backends: Callable[[str], VideoBackend] = get_backend,
    seed_offset: int = 0,
    in_flight_usd: float = 0.0,
    new_take: bool = False,
    seed: int | None = None,
    provisional: Mapping[str, Take] | None = None,
) -> PreparedTake | Take:
    """Steps 1 to 4: continuity, references, request, budget, cache, and a
    ``generating`` take saved; returns the reused take when an identical one
    exists (the caller must hold the story's run lock). ``in_flight_usd``:
    what the story's takes still in flight are estimated to cost (they count
    against the budget with what is spent). ``seed``: the take's seed (in
    place of ``seed_offset``); ``new_take``: the seed by the story's
    ``new_take_seed`` setting. ``provisional``: takes still finishing
    (`engine.outcome.Finishing`), by scene, planned from as their scene's
    selected take (the continuity source, the colour anchor, the cache key)
    though the state has them ``generating`` still."""
    story_dir = Path(story_dir)
    t0 = time.perf_counter()

    # 1. continuity source and mode (the one load before the take starts)
    story = load_story(story_dir)
    scene = story.scene(scene_id)  # KeyError names the scene
    if seed is None and new_take:
        seed = new_take_seed(scene, story.settings.new_take_seed)
    if seed is not None:
        seed_offset = (seed - scene.seed) % SEED_SPACE
    backend_name, impl = resolve_backend(backend, story, backends)
    model = story.settings.model if model is None else model
    with provisionally_selected(story, provisional or {}):
        planned = _plan(
            story_dir, story, scene_id, impl, backend_name, model, seed_offset
        )
    plan, references, request, params, t_continuity = planned
    if impl.charges:  # before anything is begun
        estimate = impl.estimate_cost(request, story.settings.hosted)
        what = f"scene {scene_id!r} on {backend_name}"
        check_budget(story, estimate, what, in_flight_usd=in_flight_usd)

    # 3. cache lookup
    if not force:
        cached = find_cached_take(story_dir, scene, params.cache_key)
        if cached is not None:
            _save_change(
                story_dir,
                story,
                lambda s: apply_selection(s, scene_id, cached.index, story_dir),
            )
            log.info("scene %r: reusing identical take %d", scene_id, cached.index)
            return cached

    # 4. a generating take in the state
    def start(s: Story) -> tuple[int, str]:
        scene = s.scene(scene_id)
        index = next_take_index(scene)
        scene.takes.append(Take(index=index, status="generating", params=params))
        prior, scene.status = scene.status, "generating"
        return index, prior

    index, prior_status = _save_change(story_dir, story, start)
    tip = TakeInProgress(
        story_dir=story_dir,
        story=story,
        scene_id=scene_id,
        index=index,
        prior_status=prior_status,
        params=params,
        request=request,
        plan=plan,
        files=take_files(scene_id, index),
        started=t0,
        timings={"continuity": t_continuity - t0},
    )
    return PreparedTake(tip, impl, backend_name, model, seed_offset, references)


def _plan(
    story_dir: Path,
    story: Story,
    scene_id: str,
    impl: VideoBackend,
    backend_name: str,
    model: str,
    seed_offset: int,
) -> tuple[
    ContinuityPlan, tuple[ReferenceImage, ...], GenerationRequest, GenerationParams,
    float,
]:  # fmt: skip
    """Steps 1 and 2 of `prepare_take`: the continuity plan, references,
    LoRAs and dialogue, then the request and the take's parameters (and the
    time the continuity step ended)."""
    scene = story.scene(scene_id)
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
    # reference images (read and checked before any take is begun)
    references: tuple[ReferenceImage, ...] = ()
    if impl.supports_references:
        chosen = chosen_references(story, scene_id, continuous=plan.input is not None)
        references = read_references(
            story_dir, chosen, story.settings.width, story.settings.height
        )
    # the LoRA stack and the dialogue track (checked before any take is begun)
    loras: tuple[LoraFile, ...] = ()
    if impl.supports_loras:
        loras = read_loras(story_dir, chosen_loras(story, scene_id))
        impl.check_loras(model, loras)
    dialogue = (
        read_dialogue_audio(story_dir, scene) if impl.supports_dialogue_audio else None
    )
    t_continuity = time.perf_counter()

    # 2. prompt and request
    request = build_request(
        story,
        scene_id,
        model,
        plan,
        impl,
        seed_offset,
        references,
        loras=loras,
        dialogue_audio=dialogue,
    )
    anchor = plan_color_anchor(
        story_dir, story, scene_id, plan, latent=impl.supports_latent_continuity
    )
    request = dataclasses.replace(request, color_anchor=anchor)
    params = _params(story, backend_name, impl, model, request, plan)
    return plan, references, request, params, t_continuity


@contextlib.contextmanager
def provisionally_selected(story: Story, takes: Mapping[str, Take]) -> Iterator[None]:
    """Within the block, each ``takes[scene]`` stands in the story in memory as
    that scene's selected take (`engine.outcome.Finishing.take`: done, its
    clip still being made); the story is put back as it was after, so
    nothing of it is ever saved.

    >>> from kg.example import example_story
    >>> story = example_story()
    >>> sid = story.scenes[0].id
    >>> params = GenerationParams(
    ...     backend="animatic", prompt="p", seed=1, steps=1, guidance=1.0,
    ...     width=64, height=64, num_frames=9, fps=24,
    ... )
    >>> story.scenes[0].takes.append(Take(index=1, status="generating", params=params))
    >>> done = Take(index=1, status="done", params=params)
    >>> with provisionally_selected(story, {sid: done}):
    ...     story.scene(sid).selected.status
    'done'
    >>> story.scene(sid).selected_take is None, story.scene(sid).takes[0].status
    (True, 'generating')
    """
    undo: list[tuple[SceneNode, list[Take], int | None]] = []
    try:
        for scene_id, take in takes.items():
            try:
                scene = story.scene(scene_id)
            except KeyError:
                continue  # deleted meanwhile: nothing to stand in for
            undo.append((scene, scene.takes, scene.selected_take))
            others = [t for t in scene.takes if t.index != take.index]
            scene.takes = [*others, take]
            scene.selected_take = take.index
        yield
    finally:
        for scene, kept, selected in reversed(undo):
            scene.takes = kept
            scene.selected_take = selected


def backend_failed(prepared: PreparedTake, exc: BaseException) -> Take:
    """Step 5 went wrong: a failed take with advice, or (cancelled, or the
    process is stopping) the take abandoned and the exception raised again."""
    tip = prepared.tip
    if isinstance(exc, Exception) and not isinstance(exc, GenerationCancelled):
        if not isinstance(exc, BackendError):  # unforeseen: its traceback, redacted
            log.error(
                "backend %r failed on scene %r\n%s",
                prepared.backend_name,
                tip.scene_id,
                redacted_traceback(exc),
            )
        return fail(tip, failure_message(exc, prepared.backend_name, tip.request))
    abandon(tip)
    raise exc


def complete_take(
    prepared: PreparedTake,
    result: GenerationResult,
    observer: TakeObserver | None,
    writer: ClipWriter | None,
    *,
    progress: PhaseProgress | None = None,
    cancel: CancelToken | None = None,
    defer: bool = False,
) -> Take | Finishing:
    """Steps 5 (its check) to 8: the result checked, files, scores, then
    ``done`` and selected in one save. ``progress`` hears the encode and
    score phases; ``cancel`` set during them discards the take
    (`GenerationCancelled`). ``defer``: return once the frames and tail
    latents are written, with steps 7 and 8 in the `Finishing`'s ``rest``
    (not with ``settings.release_models``, which frees the video model for
    the encoders: then everything is done here)."""
    tip = prepared.tip
    tip.timings["backend"] = time.perf_counter() - prepared.backend_started
    for name, seconds in result.timings.items():
        tip.timings[f"backend.{name}"] = float(seconds)
    try:
        check_result(result, tip.request)
    except BackendError as exc:
        return fail(tip, failure_message(exc, prepared.backend_name, tip.request))
    # colour held toward the anchor where the backend did not pull its latents
    result = correct_result(result, tip.request.color_anchor, tip.scene_id, tip.index)
    release = tip.story.settings.release_models
    if release:  # free the video model before the encoders load
        prepared.impl.release()

    # 6-8. files, observer, done and selected (engine.outcome)
    take = finish(
        tip,
        result,
        observer,
        writer,
        prepared.edited_since,
        progress=progress,
        cancel=cancel,
        defer=defer and not release,
    )
    if release and observer is not None:
        observer.release()
    return take


def _params(
    story: Story,
    backend_name: str,
    impl: VideoBackend,
    model: str,
    request: GenerationRequest,
    plan: ContinuityPlan,
) -> GenerationParams:
    """What the take records of its request, with the cache key of its content."""
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
    return GenerationParams(
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
        windows=story.settings.windows,
        references=used(request.references),
        dialogue_audio=_supplied(request),
    )


def _supplied(request: GenerationRequest) -> SuppliedSound | None:
    """What the take records of the scene's dialogue track."""
    track = request.dialogue_audio
    if track is None:
        return None
    seconds = request.num_frames / request.fps
    note = ""
    if track.seconds > seconds + 0.05:
        note = f"longer than the scene: its first {seconds:.2f} s are kept"
    elif track.seconds < seconds - 0.05:
        note = f"shorter than the scene: silence after {track.seconds:.2f} s"
    return SuppliedSound(path=track.path, seconds=round(track.seconds, 3), note=note)


def _save_change(story_dir: Path, story: Story, mutate: Callable[[Story], T]) -> T:
    """Apply ``mutate`` to the story in memory and save it (no second load).

    When someone saved in between (a revision conflict), the change is applied
    again to the newest revision under the lock instead (`update_story`), so
    their edit is kept.
    """
    result = mutate(story)
    try:
        save_story(story, story_dir)
    except StoryConflictError:
        result = update_story(story_dir, mutate)
    return result
