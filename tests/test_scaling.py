"""Linear in scenes and in text: 1x against 4x inputs by operation counts.

Wall time is noisy; counting operations is not. Each check runs an operation
at one size and at four times that size and counts the Python function calls
it makes (``sys.setprofile``, on every thread) or the characters it hands to
the token counter. Linear work grows about 4x; quadratic work 16x. The bound
(6x) leaves room for constant costs and logarithmic factors, none for a
quadratic term. ``bench/bench_scale_text.py`` measures the same in seconds.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kg.example import synthetic_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.memory import memory_by_scene, story_memory
from kg.prompt import build_prompt, count_tokens
from kg.store import save_story
from studio.cli import app

LINEAR = 6.0


def count_calls(action: Callable[[], object]) -> int:
    """Python and C function calls made while ``action`` runs (all threads)."""
    calls = 0

    def profile(frame, event, arg) -> None:  # noqa: ANN001
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return calls


def _ratio(small: int, large: int) -> float:
    assert small > 0
    return large / small


def test_show_is_linear_in_scenes(tmp_path: Path) -> None:
    runner = CliRunner()
    counts = []
    for n in (250, 1_000):
        story_dir = tmp_path / f"s{n}"
        save_story(synthetic_story(n), story_dir)

        def show(story_dir: Path = story_dir) -> None:
            result = runner.invoke(app, ["show", str(story_dir)])
            assert result.exit_code == 0, result.output

        counts.append(count_calls(show))
    assert _ratio(*counts) < LINEAR, counts


def test_memory_of_every_scene_in_one_walk_matches_the_definition() -> None:
    graph = DynamicSceneGraph(synthetic_story(120))
    memories = memory_by_scene(graph)
    for sid in generation_order(graph):
        assert memories[sid] == story_memory(graph, sid)


def _counted_chars() -> tuple[Callable[[str], int], list[int]]:
    seen = [0]

    def counter(text: str) -> int:
        seen[0] += len(text)
        return count_tokens(text)

    return counter, seen


@pytest.mark.parametrize("field", ["motion", "prompt_override"])
def test_prompt_building_is_linear_in_text_length(field: str) -> None:
    """Even text far over the schema's limits (set behind its back) is cheap."""
    chars = []
    for size in (64_000, 256_000):
        story = synthetic_story(3)
        scene = story.scenes[-1]
        scene.__dict__[field] = "wind " * (size // 5)  # bypasses validation
        counter, seen = _counted_chars()
        prompt = build_prompt(DynamicSceneGraph(story), scene.id, counter=counter)
        assert prompt.tokens <= prompt.budget
        chars.append(seen[0])
    assert _ratio(*chars) < LINEAR, chars


def test_prompt_of_the_last_scene_is_linear_in_the_story() -> None:
    counts = []
    for n in (1_000, 4_000):
        graph = DynamicSceneGraph(synthetic_story(n))
        last = generation_order(graph)[-1]
        counts.append(count_calls(lambda g=graph, s=last: build_prompt(g, s)))
    assert _ratio(*counts) < LINEAR, counts


def test_graph_view_data_is_linear_and_windowed() -> None:
    from studio.components.graph import WINDOW_SCENES, graph_data
    from studio.services import StoryView

    counts = []
    for n in (1_000, 4_000):
        view = StoryView(Path("unused"), synthetic_story(n))
        data: dict = {}

        def build(view: StoryView = view, data: dict = data) -> None:
            data.update(graph_data(view, view.order[len(view.order) // 2]))

        counts.append(count_calls(build))
        assert len(data["nodes"]) == WINDOW_SCENES
        assert all("x" in node and "y" in node for node in data["nodes"])
    assert _ratio(*counts) < LINEAR, counts


def test_storyboard_rerun_is_linear_in_scenes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio import services
    from studio.testing import page_test

    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    counts = []
    for n in (250, 1_000):
        story_dir = tmp_path / f"s{n}"
        save_story(synthetic_story(n), story_dir)
        at = page_test("storyboard", story_dir)
        at.run()
        assert not at.exception, at.exception
        counts.append(count_calls(at.run))  # the rerun, caches warm
        assert not at.exception, at.exception
    assert _ratio(*counts) < LINEAR, counts
