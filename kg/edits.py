"""Story edits without a user interface: scenes, structure, cast, settings.

Every edit goes through `edit_story`: ``kg.store.update_story`` (locked,
revision-checked, re-applied to the newest revision, so a change another
writer saved in between is never lost) plus the story-wide checks, so an edit
that would break the story raises `StoryValidationError` and writes nothing.
The studio's pages and the tests call these; so can any other front end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from kg.dialogue import (  # noqa: F401 - the scene editor's dialogue box
    dialogue_text,
    parse_dialogue,
)
from kg.errors import StoryConflictError, StoryValidationError
from kg.graph import DynamicSceneGraph, mark_stale_descendants
from kg.schema import (
    GENERATED_STATUSES,
    Character,
    Environment,
    SceneNode,
    Settings,
    Story,
)
from kg.store import (
    STATE_FILE,
    dump_story,
    parse_story,
    validation_problems,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Problem = tuple[str, str]  # (field path, message)

_CONFLICT_RETRIES = 3


# Writing ---------------------------------------------------------------------------


def problems_of(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Pydantic errors as ``(field, message)`` pairs a person can act on."""
    return validation_problems(exc, prefix)


def _revalidate(story: Story, source: str) -> None:
    """Cross-reference checks the field-level assignment checks do not run.

    Raises `StoryValidationError` naming each problem's JSON path.
    """
    parse_story(dump_story(story), source)


def edit_story(folder: Path, mutate: Callable[[Story], T]) -> T:
    """Apply ``mutate`` to the newest revision under the lock and save it.

    The worker may save in between a page's read and this write; the change
    is re-applied on the newest revision rather than lost. A mutation that
    breaks the story raises `StoryValidationError` and nothing is written.
    What the edit changed joins the story's undo history (`kg.history`).
    """
    from kg.history import record, snapshot
    from kg.store import story_lock, update_story

    done: list[Any] = []  # (items before, story after) of the saved attempt

    def checked(story: Story) -> T:
        before = snapshot(story)
        result = mutate(story)
        _revalidate(story, str(Path(folder) / STATE_FILE))
        done[:] = [before, story]
        return result

    for attempt in range(_CONFLICT_RETRIES):
        try:
            with story_lock(folder):
                result = update_story(folder, checked)
                record(folder, *done)
            return result
        except StoryConflictError:
            if attempt == _CONFLICT_RETRIES - 1:
                raise
            log.info("story %s changed while saving; applying again", folder)
    raise AssertionError("unreachable")


# Scenes ----------------------------------------------------------------------------

EDITABLE_SCENE_FIELDS = (
    "title",
    "character_ids",
    "environment_id",
    "pose",
    "motion",
    "weather",
    "lighting",
    "camera",
    "duration_s",
    "window_prompts",
    "use_references",
    "seed",
    "prompt_override",
    "negative_prompt",
    "dialogue",
    "sound",
)


def validate_scene(
    scene: SceneNode, fields: dict[str, Any]
) -> tuple[SceneNode | None, list[Problem]]:
    """The scene with the editor's values, or the problems naming each field."""
    unknown = set(fields) - set(EDITABLE_SCENE_FIELDS)
    assert not unknown, f"not editable scene fields: {sorted(unknown)}"
    data = scene.model_dump()
    data.update(fields)
    if data.get("prompt_override") is not None and not data["prompt_override"].strip():
        data["prompt_override"] = None
    try:
        return SceneNode.model_validate(data), []
    except ValidationError as exc:
        return None, problems_of(exc)


def _scene_changed(old: SceneNode, new: SceneNode) -> bool:
    return any(getattr(old, f) != getattr(new, f) for f in EDITABLE_SCENE_FIELDS)


def save_scene(folder: Path, scene_id: str, fields: dict[str, Any]) -> list[str]:
    """Save the editor's values; returns scenes that became stale.

    A generated scene whose description changed no longer matches its takes:
    it and its continuous descendants become ``stale``.
    """

    def mutate(story: Story) -> list[str]:
        graph = DynamicSceneGraph(story)
        old = graph.scene(scene_id)
        new, problems = validate_scene(old, fields)
        if new is None:
            raise StoryValidationError(f"scene {scene_id}", problems)
        if not _scene_changed(old, new):
            return []
        stale: list[str] = []
        if new.status in GENERATED_STATUSES and new.takes:
            new.status = "stale"
            stale.append(scene_id)
        i = next(i for i, s in enumerate(story.scenes) if s.id == scene_id)
        story.scenes[i] = new
        graph = DynamicSceneGraph(story)
        if stale:
            stale += mark_stale_descendants(graph, scene_id)
        return stale

    return edit_story(folder, mutate)


def _new_scene_id(story: Story) -> str:
    taken = {s.id for s in story.scenes}
    n = len(story.scenes) + 1
    while f"scene-{n}" in taken:
        n += 1
    return f"scene-{n}"


def _blank_scene(story: Story, after: SceneNode | None) -> SceneNode:
    sid = _new_scene_id(story)
    if after is None:
        return SceneNode(id=sid, title=f"Scene {len(story.scenes) + 1}")
    return SceneNode(
        id=sid,
        title=f"After {after.title}"[:120],
        character_ids=list(after.character_ids),
        environment_id=after.environment_id,
        weather=after.weather,
        lighting=after.lighting,
        seed=after.seed + 1,
    )


def add_scene(folder: Path, after: str | None = None) -> str:
    """A new scene after ``after`` (taking over its successors), or a new root."""

    def mutate(story: Story) -> str:
        graph = DynamicSceneGraph(story)
        scene = _blank_scene(story, graph.scene(after) if after else None)
        if after is None:
            graph.add_scene(scene)
        else:
            graph.insert_after(scene, after)
        return scene.id

    return edit_story(folder, mutate)


def branch_scene(folder: Path, after: str, transition: str = "cut") -> str:
    """A new scene starting a branch from ``after``."""

    def mutate(story: Story) -> str:
        graph = DynamicSceneGraph(story)
        scene = _blank_scene(story, graph.scene(after))
        graph.add_scene(scene, after=after, transition=transition)
        return scene.id

    return edit_story(folder, mutate)


def connect_scenes(folder: Path, source: str, target: str, transition: str) -> None:
    edit_story(
        folder, lambda s: DynamicSceneGraph(s).connect(source, target, transition)
    )


def disconnect_scenes(folder: Path, source: str, target: str) -> None:
    edit_story(folder, lambda s: DynamicSceneGraph(s).disconnect(source, target))


def set_transition(folder: Path, source: str, target: str, transition: str) -> None:
    edit_story(
        folder,
        lambda s: DynamicSceneGraph(s).set_transition(source, target, transition),
    )


def delete_scene(folder: Path, scene_id: str) -> None:
    """Delete a scene (its predecessor joins its successors); files stay."""
    edit_story(folder, lambda s: DynamicSceneGraph(s).remove_scene(scene_id))


# Cast ------------------------------------------------------------------------------


def validate_character(data: dict[str, Any]) -> tuple[Character | None, list[Problem]]:
    try:
        return Character.model_validate(data), []
    except ValidationError as exc:
        return None, problems_of(exc)


def validate_environment(
    data: dict[str, Any],
) -> tuple[Environment | None, list[Problem]]:
    try:
        return Environment.model_validate(data), []
    except ValidationError as exc:
        return None, problems_of(exc)


def _upsert(items: list[Any], item: Any) -> None:
    for i, existing in enumerate(items):
        if existing.id == item.id:
            items[i] = item
            return
    items.append(item)


def save_character(folder: Path, character: Character) -> None:
    edit_story(folder, lambda s: _upsert(s.characters, character))


def save_environment(folder: Path, environment: Environment) -> None:
    edit_story(folder, lambda s: _upsert(s.environments, environment))


def delete_character(folder: Path, character_id: str) -> None:
    """Remove a character and its appearances in scenes."""

    def mutate(story: Story) -> None:
        story.characters = [c for c in story.characters if c.id != character_id]
        for scene in story.scenes:
            if character_id in scene.character_ids:
                scene.character_ids = [
                    c for c in scene.character_ids if c != character_id
                ]

    edit_story(folder, mutate)


def delete_environment(folder: Path, environment_id: str) -> None:
    """Remove an environment; scenes set in it lose their environment."""

    def mutate(story: Story) -> None:
        story.environments = [e for e in story.environments if e.id != environment_id]
        for scene in story.scenes:
            if scene.environment_id == environment_id:
                scene.environment_id = None

    edit_story(folder, mutate)


def remove_reference_image(
    folder: Path, entity_id: str, rel: str, kind: str = "character"
) -> None:
    """Forget one reference image of a character (or an environment)."""

    def mutate(story: Story) -> None:
        e = reference_owner(story, entity_id, kind)
        e.reference_images = [r for r in e.reference_images if r != rel]

    edit_story(folder, mutate)


def reference_owner(story: Story, entity_id: str, kind: str) -> Character | Environment:
    """The character (``kind`` "character") or environment with that id."""
    if kind == "character":
        return story.character(entity_id)
    if kind == "environment":
        for env in story.environments:
            if env.id == entity_id:
                return env
        raise KeyError(f"no environment {entity_id!r}")
    raise ValueError(f"kind must be character or environment, got {kind!r}")


# Settings --------------------------------------------------------------------------


def save_settings(folder: Path, settings: Settings) -> None:
    def mutate(story: Story) -> None:
        story.settings = settings

    edit_story(folder, mutate)
