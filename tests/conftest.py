"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.generate import generate_scene
from kg.example import example_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.store import save_story
from studio import services


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "outputs"
    root.mkdir()
    monkeypatch.setenv(services.OUTPUTS_ENV, str(root))
    return root


def generate_small_example(story_dir: Path) -> Path:
    """The example story generated with the animatic backend at 96x64, 8 fps."""
    story = example_story()
    story.settings.width, story.settings.height, story.settings.fps = 96, 64, 8
    save_story(story, story_dir)
    for sid in generation_order(DynamicSceneGraph(story)):
        take = generate_scene(story_dir, sid, backend="animatic")
        assert take.status == "done", take.error
    return story_dir


def json_paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (of keys and indices) in a JSON document, the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += json_paths(v, (*prefix, i))
    return out


def set_at(doc: object, path: tuple, value: object) -> None:
    """Set the value at ``path`` (not empty) in a JSON document."""
    for part in path[:-1]:
        doc = doc[part]  # type: ignore[index]
    doc[path[-1]] = value  # type: ignore[index]
