"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

from engine.generate import generate_scene
from kg.example import example_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.store import save_story


def generate_small_example(story_dir: Path) -> Path:
    """The example story generated with the animatic backend at 96x64, 8 fps."""
    story = example_story()
    story.settings.width, story.settings.height, story.settings.fps = 96, 64, 8
    save_story(story, story_dir)
    for sid in generation_order(DynamicSceneGraph(story)):
        take = generate_scene(story_dir, sid, backend="animatic")
        assert take.status == "done", take.error
    return story_dir
