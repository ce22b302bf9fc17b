"""Takes: every generation of a scene, where its files live, and which is selected.

A take's files sit beside each other in the story folder (`kg.layout`).
Paths stored in a `Take` are relative to the story folder. Selecting another
take of a scene changes what its continuous successors start from, so they are
marked ``stale``. All state changes go through `kg.store.update_story`.
"""

from __future__ import annotations

import os
from pathlib import Path

from kg.graph import DynamicSceneGraph, mark_stale_descendants
from kg.paths import resolve_asset
from kg.schema import SceneNode, Story, Take
from kg.store import update_story

__all__ = [
    "next_take_index",
    "find_cached_take",
    "take_is_complete",
    "select_take",
    "apply_selection",
]


def next_take_index(scene: SceneNode) -> int:
    """One more than the highest take index (takes are never renumbered)."""
    return max((t.index for t in scene.takes), default=0) + 1


def take_is_complete(story_dir: str | os.PathLike[str], take: Take) -> bool:
    """A done take whose clip and last frame exist on disk."""
    if take.status != "done" or not take.files.video or not take.files.last_frame:
        return False
    return all(
        resolve_asset(story_dir, rel).is_file()
        for rel in (take.files.video, take.files.last_frame)
    )


def find_cached_take(
    story_dir: str | os.PathLike[str], scene: SceneNode, cache_key: str
) -> Take | None:
    """The newest complete take of ``scene`` made from the same content hash."""
    if not cache_key:
        return None
    for take in sorted(scene.takes, key=lambda t: t.index, reverse=True):
        if take.params.cache_key == cache_key and take_is_complete(story_dir, take):
            return take
    return None


def apply_selection(story: Story, scene_id: str, index: int) -> list[str]:
    """Select a done take in an in-memory story; returns the ids marked stale.

    The scene becomes ``done``. When the selection changes, generated scenes
    that continue from this one are marked ``stale``.
    """
    scene = story.scene(scene_id)
    take = scene.take(index)
    if take.status != "done":
        raise ValueError(
            f"take {index} of scene {scene_id!r} is {take.status}, not done; "
            "select a take that finished"
        )
    changed = scene.selected_take != index
    scene.selected_take = index
    scene.status = "done"
    if not changed:
        return []
    return mark_stale_descendants(DynamicSceneGraph(story), scene_id)


def select_take(
    story_dir: str | os.PathLike[str], scene_id: str, index: int
) -> list[str]:
    """Select take ``index`` of a scene and save; returns the ids marked stale.

    Raises ``KeyError`` for an unknown scene or take and ``ValueError`` for a
    take that did not finish.
    """
    return update_story(
        Path(story_dir), lambda story: apply_selection(story, scene_id, index)
    )
