"""The studio's one door to the story graph, the engine and the observer.

Pages call only what this module offers; each part lives in a focused module:

- `studio.library`: story folders on disk, imports, duplicates, deletes;
- `studio.reference_images`: reference image uploads;
- `studio.story_views`: the cached `StoryView` of a story and its previews;
- `kg.edits`: edits of scenes, structure, cast and settings (no UI);
- `studio.job_control`: generation jobs, one runner per story and process.

Nothing here draws; heavy libraries (torch through the engine, the
observer's encoders) are imported inside the functions that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.catalog import CATALOG, settings_problems
from kg.edits import (
    Problem,
    add_scene,
    branch_scene,
    connect_scenes,
    delete_character,
    delete_environment,
    delete_scene,
    dialogue_text,
    disconnect_scenes,
    edit_story,
    parse_dialogue,
    problems_of,
    remove_reference_image,
    save_character,
    save_environment,
    save_scene,
    save_settings,
    set_transition,
    validate_character,
    validate_environment,
    validate_scene,
)
from kg.errors import StoryError, StoryValidationError
from kg.history import Undone
from kg.history import next_steps as edit_history
from kg.history import redo as redo_edit
from kg.history import undo as undo_edit
from kg.schema import SceneNode, Settings, Story
from kg.store import STATE_FILE
from kg.windows import window_count
from studio.job_control import (
    JobSnapshot,
    QueueItem,
    cancel_all,
    cancel_generation,
    generating_elsewhere,
    job_runner,
    job_status,
    live_statuses,
    move_in_queue,
    queue_items,
    recover_interrupted,
    remove_from_queue,
    submit_generation,
    wait_for_jobs,
)
from studio.library import (
    OUTPUTS_ENV,
    StoryEntry,
    check_slug,
    create_story,
    dataset_folder,
    delete_story,
    duplicate_story,
    frame_image,
    frame_problems,
    import_story,
    last_story,
    list_stories,
    media_file,
    outputs_root,
    remember_last_story,
    resolve_asset,
    slugify,
)
from studio.reference_images import (
    MAX_REFERENCE_BYTES,
    add_reference_image,
    reference_thumbnail,
)
from studio.story_views import (
    StoryView,
    pending_scene_ids,
    preview_prompt,
    silent_backend_note,
    stale_if_selected,
    story_view,
)

__all__ = [
    "MAX_REFERENCE_BYTES",
    "STATE_FILE",
    "reference_thumbnail",
    "StoryError",
    "StoryValidationError",
    "JobSnapshot",
    "OUTPUTS_ENV",
    "StoryEntry",
    "StoryView",
    "Problem",
    "outputs_root",
    "list_stories",
    "check_slug",
    "slugify",
    "create_story",
    "import_story",
    "duplicate_story",
    "delete_story",
    "remember_last_story",
    "last_story",
    "story_view",
    "edit_story",
    "edit_history",
    "Undone",
    "undo_edit",
    "redo_edit",
    "problems_of",
    "validate_scene",
    "parse_dialogue",
    "dialogue_text",
    "scene_windows",
    "references_text",
    "cost_text",
    "save_scene",
    "add_scene",
    "branch_scene",
    "connect_scenes",
    "disconnect_scenes",
    "set_transition",
    "delete_scene",
    "preview_prompt",
    "silent_backend_note",
    "pending_scene_ids",
    "stale_if_selected",
    "select_take",
    "validate_character",
    "save_character",
    "delete_character",
    "validate_environment",
    "save_environment",
    "delete_environment",
    "add_reference_image",
    "dataset_folder",
    "remove_reference_image",
    "validate_settings",
    "save_settings",
    "available_backends",
    "resolve_asset",
    "media_file",
    "frame_image",
    "frame_problems",
    "job_runner",
    "job_status",
    "submit_generation",
    "cancel_generation",
    "QueueItem",
    "queue_items",
    "live_statuses",
    "remove_from_queue",
    "move_in_queue",
    "cancel_all",
    "new_take_seed_note",
    "wait_for_jobs",
    "recover_interrupted",
    "generating_elsewhere",
]


def select_take(folder: Path, scene_id: str, index: int) -> list[str]:
    """Make take ``index`` the scene's selected take; returns stale scene ids."""
    from engine.takes import select_take as engine_select

    return list(engine_select(folder, scene_id, index))


def new_take_seed_note(story: Story, scene: SceneNode) -> str:
    """What a new take of ``scene`` does with the seed (``seed 43``, ``random
    seed``), by the story's ``new_take_seed`` setting."""
    from engine.takes import seed_note  # kg only, no torch

    return seed_note(scene, story.settings.new_take_seed)


def available_backends() -> list[str]:
    from engine.backend import available_backends as engine_backends

    return engine_backends()


def validate_settings(values: dict[str, Any]) -> tuple[Settings | None, list[Problem]]:
    """Settings from the form's values, or the problems naming each field."""
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        return None, problems_of(exc)
    problems: list[Problem] = []
    if settings.backend not in available_backends():
        problems.append(
            (
                "backend",
                f"unknown backend {settings.backend!r}; choose one of "
                f"{available_backends()}",
            )
        )
    elif settings.backend in CATALOG:  # the rules generation applies, same words
        problems += settings_problems(settings)
    return (None, problems) if problems else (settings, [])


def scene_windows(story: Story, scene: SceneNode, duration_s: float) -> int:
    """Windows a scene of ``duration_s`` (or its explicit frame count) needs."""
    settings = story.settings
    frames = scene.num_frames or max(1, round(float(duration_s) * settings.fps))
    backend = CATALOG.get(settings.backend)
    if backend is None or not backend.windows or backend.temporal_ratio is None:
        return 1  # made in one piece
    windows = settings.windows
    return window_count(
        frames, windows.frames, windows.overlap_frames, temporal=backend.temporal_ratio
    )


def references_text(story: Story, scene: SceneNode, values: dict[str, Any]) -> str:
    """Which reference images the scene as edited would be conditioned on."""
    from engine.references import chosen_references  # numpy only, no torch
    from kg.graph import DynamicSceneGraph, continuity_predecessor

    draft = scene.model_copy(
        update={
            "character_ids": list(values.get("character_ids", scene.character_ids)),
            "environment_id": values.get("environment_id") or None,
            "use_references": bool(values.get("use_references", True)),
        }
    )
    continuous = (
        story.settings.continuity_mode != "none"
        and continuity_predecessor(DynamicSceneGraph(story), scene.id) is not None
    )
    if not draft.use_references:
        return "Reference images off for this scene."
    chosen = chosen_references(story, scene.id, continuous=continuous, scene=draft)
    if not chosen:
        if story.settings.references.strength <= 0:
            return "Reference images are off in Settings."
        return (
            "No reference images for its characters or environment (add them on Cast)."
        )
    names = ", ".join(
        f"{entity}: {path.rsplit('/', 1)[-1]}" for path, entity, _ in chosen
    )
    where = "with the carried tail" if continuous else "nothing carried"
    return f"References ({where}, strength {chosen[0][2]:g}): {names}"


def cost_text(view: StoryView, scene_ids: list[str]) -> str | None:
    """The estimated cost of generating ``scene_ids`` with the story's hosted
    backend, against its budget; None for a local backend."""
    from engine.backend import GenerationRequest, get_backend
    from engine.budget import spent

    story = view.story
    settings = story.settings
    if settings.backend not in CATALOG or not CATALOG[settings.backend].hosted:
        return None
    backend = get_backend(settings.backend)  # a client wrapper: no torch
    total, unknown = 0.0, []
    for sid in scene_ids:
        scene = view.scene(sid)
        request = GenerationRequest(
            prompt="",
            width=settings.width,
            height=settings.height,
            num_frames=scene.frame_count(settings.fps),
            fps=settings.fps,
            seed=scene.seed,
            steps=1,
            guidance=1.0,
            model=settings.model,
            hosted=settings.hosted,
        )
        estimate = backend.estimate_cost(request, settings.hosted)
        if estimate is None:
            unknown.append(sid)
        else:
            total += estimate[0]
    used = spent(story)
    budget = settings.hosted.budget_usd
    text = (
        f"Estimated cost of {len(scene_ids)} scene(s) on {settings.backend}: "
        f"${total:.2f}; spent so far ${used:.2f}"
    )
    if budget is not None:
        text += f" of a ${budget:.2f} budget"
        if used + total > budget:
            text += " — over the budget: scenes past it are refused"
    if unknown:
        text += (
            f". No price for model {settings.model or 'default'!r}: add its USD "
            "per second in Settings (Hosted APIs)"
        )
    return text + "."
