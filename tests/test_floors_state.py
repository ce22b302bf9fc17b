"""The faster story I/O refuses what the careful path refuses.

A save validates its own text straight from JSON (`kg.parse.check_dump`)
while the file is written, and loads hold the garbage collector off
(`kg.parse.building_tree`). Neither may let through what `parse_story`
refuses, leave a refused save on disk, or leave the collector off.
"""

from __future__ import annotations

import gc
import math
import threading

import pytest

from kg.errors import StoryValidationError
from kg.parse import building_tree, check_dump, dump_story, parse_story
from kg.schema import Character, SceneEdge, SceneNode, Story, Take
from kg.store import load_story, save_story


def _story() -> Story:
    return Story(
        title="floors",
        characters=[Character(id="ana", name="Ana")],
        scenes=[
            SceneNode(id="s1", title="One", character_ids=["ana"]),
            SceneNode(id="s2", title="Two"),
        ],
        edges=[SceneEdge(source="s1", target="s2")],
    )


def _dangling(story: Story) -> None:
    story.scenes[0].character_ids.append("nobody")  # list edits skip validation


def _cycle(story: Story) -> None:
    story.edges.append(SceneEdge(source="s2", target="s1"))


def _nan_timing(story: Story) -> None:
    story.scenes[0].takes.append(
        Take.model_construct(**{**_take().__dict__, "timings": {"x": math.nan}})
    )


def _long_title(story: Story) -> None:
    story.title = "t" * 201  # Story does not validate assignments


def _control_title(story: Story) -> None:
    story.title = "bell \x07"


def _duplicate_scene(story: Story) -> None:
    story.scenes.append(SceneNode(id="s1", title="Again"))


def _take() -> Take:
    from kg.schema import GenerationParams

    return Take(
        index=1,
        params=GenerationParams(
            backend="animatic", prompt="p", seed=1, steps=1, guidance=1.0,
            width=64, height=64, num_frames=9, fps=24,
        ),
    )  # fmt: skip


BREAKS = [_dangling, _cycle, _nan_timing, _long_title, _control_title,
          _duplicate_scene]  # fmt: skip


@pytest.mark.parametrize("brk", BREAKS, ids=lambda f: f.__name__.strip("_"))
def test_check_dump_refuses_what_parse_story_refuses(brk) -> None:  # noqa: ANN001
    story = _story()
    brk(story)
    text = dump_story(story)
    with pytest.raises(StoryValidationError) as careful:
        parse_story(text)
    with pytest.raises(StoryValidationError) as fast:
        check_dump(text)
    assert fast.value.problems == careful.value.problems


@pytest.mark.parametrize("brk", BREAKS, ids=lambda f: f.__name__.strip("_"))
def test_a_refused_save_leaves_the_file_and_revision_as_they_were(
    tmp_path,
    brk,  # noqa: ANN001
) -> None:
    story = _story()
    save_story(story, tmp_path)
    before = (tmp_path / "kg_state.json").read_bytes()
    revision = story.revision
    brk(story)
    with pytest.raises(StoryValidationError):
        save_story(story, tmp_path)
    assert (tmp_path / "kg_state.json").read_bytes() == before
    assert story.revision == revision
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    assert load_story(tmp_path).title == "floors"


def test_check_dump_accepts_a_valid_dump_and_migrates_an_old_one() -> None:
    story = _story()
    check_dump(dump_story(story))
    old = dump_story(story).replace('"schema_version": 3', '"schema_version": 2', 1)
    assert old != dump_story(story)
    check_dump(old)  # through parse_story and its migrations


def test_save_and_load_round_trip(tmp_path) -> None:  # noqa: ANN001
    story = _story()
    save_story(story, tmp_path)
    assert dump_story(load_story(tmp_path)) == dump_story(story)


def test_building_tree_restores_the_collector() -> None:
    assert gc.isenabled()
    with building_tree():
        assert not gc.isenabled()
        with building_tree():  # re-entrant
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), building_tree():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with building_tree():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_building_tree_across_threads_enables_once_the_last_leaves() -> None:
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with building_tree():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(10)
    with building_tree():
        pass
    assert not gc.isenabled()  # the other thread still builds
    leave.set()
    thread.join(10)
    assert gc.isenabled()


def test_parse_story_refuses_hostile_json_with_the_collector_back_on() -> None:
    text = dump_story(_story()).replace('"title": "floors"', '"title": NaN', 1)
    with pytest.raises(StoryValidationError):
        parse_story(text)
    assert gc.isenabled()
