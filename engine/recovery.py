"""Recovery after a process died mid-generation (killed, crashed, power cut).

A process generating a story holds its run lock (`engine.runlock`); the
kernel releases it when the process dies. So ``generating``/``queued``
scenes of a story nobody holds were left behind: they become
``interrupted``, their unfinished takes ``failed`` with a message, a selected
take whose clip never landed is unselected, and temporary files go.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.runlock import RunLockedError, held_here, hold_run
from engine.video import remove_partial_files
from kg.graph import DynamicSceneGraph, mark_stale_descendants
from kg.layout import SCENES_DIR
from kg.paths import resolve_asset
from kg.schema import Story
from kg.store import update_story

__all__ = ["recover_interrupted"]

_INTERRUPTED = (
    "the process stopped while this take was generating; generate the scene again"
)
_NOT_ENCODED = (
    "the process stopped before the clip was encoded; generate the scene again"
)


def recover_interrupted(story_dir: str | os.PathLike[str]) -> list[str]:
    """Mark scenes a dead process left ``generating``/``queued`` as ``interrupted``.

    Does nothing while a live process (this one included) holds the story's
    run lock. Unfinished takes become ``failed`` with a message; a selected
    take whose clip never landed is unselected; temporary files are removed.
    Returns the ids of the scenes marked ``interrupted``.
    """
    story_dir = Path(story_dir)
    if held_here(story_dir):
        return []
    try:
        with hold_run(story_dir):
            remove_partial_files(story_dir, SCENES_DIR)
            return update_story(story_dir, lambda s: _mark_interrupted(story_dir, s))
    except RunLockedError:
        return []


def _mark_interrupted(story_dir: Path, story: Story) -> list[str]:
    changed: list[str] = []
    unselected: list[str] = []
    for scene in story.scenes:
        hit = scene.status in ("generating", "queued")
        for take in scene.takes:
            if take.status == "generating":
                take.status, take.error, hit = "failed", _INTERRUPTED, True
            elif take.status == "done" and not (
                take.files.video
                and resolve_asset(story_dir, take.files.video).is_file()
            ):
                take.status, take.error, hit = "failed", _NOT_ENCODED, True
                if scene.selected_take == take.index:
                    scene.selected_take = None
                    unselected.append(scene.id)
        if hit:
            scene.status = "interrupted"
            changed.append(scene.id)
    graph = DynamicSceneGraph(story)
    for sid in unselected:
        mark_stale_descendants(graph, sid)
    return changed
