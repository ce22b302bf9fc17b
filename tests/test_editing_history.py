"""Undo and redo over the story's edit history, on the pages and in kg."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg import history
from kg.edits import add_scene, save_character, save_scene
from kg.store import load_story, update_story
from studio import services
from studio.testing import page_test, shown_text
from studio.views.storyboard import editor_key


@pytest.fixture
def example(outputs: Path) -> Path:
    return services.create_story("lighthouse", "", example=True)


def test_undo_restores_the_previous_revision_and_redo_brings_it_back(
    example: Path,
) -> None:
    before = load_story(example).scene("arrival").pose
    at = page_test("storyboard", example).run()
    assert at.button(key="storyboard.undo").disabled  # a new story: nothing yet
    at.text_input(key=editor_key("arrival", "pose")).input("kneeling").run()
    at.button(key="storyboard.save").click().run()
    assert load_story(example).scene("arrival").pose == "kneeling"

    undo = at.button(key="storyboard.undo")
    assert not undo.disabled
    assert "edit scene arrival (pose)" in undo.label  # says what it undoes
    undo.click().run()
    assert not at.exception
    assert load_story(example).scene("arrival").pose == before
    assert "Undid: edit scene arrival (pose)" in shown_text(at)
    assert at.text_input(key=editor_key("arrival", "pose")).value == before

    redo = at.button(key="storyboard.redo")
    assert "edit scene arrival (pose)" in redo.label
    redo.click().run()
    assert load_story(example).scene("arrival").pose == "kneeling"
    assert at.button(key="storyboard.redo").disabled


def test_undo_on_cast_takes_back_a_character_edit(example: Path) -> None:
    mara = load_story(example).character("mara")
    save_character(example, mara.model_copy(update={"description": "a new one"}))
    at = page_test("cast", example).run()
    undo = at.button(key="cast.undo")
    assert "edit character mara (description)" in undo.label
    undo.click().run()
    assert not at.exception
    assert load_story(example).character("mara").description == mara.description


def test_undo_of_an_added_scene_removes_it_and_its_edges(example: Path) -> None:
    edges = {(e.source, e.target) for e in load_story(example).edges}
    new_id = add_scene(example, "arrival")
    assert history.next_steps(example) == (f"add scene {new_id}", None)
    undone = history.undo(example)
    assert undone is not None and undone.label == f"add scene {new_id}"
    assert ("scenes", new_id) in undone.items
    story = load_story(example)
    assert new_id not in {s.id for s in story.scenes}
    assert {(e.source, e.target) for e in story.edges} == edges


def test_undo_keeps_takes_recorded_since_the_edit(example: Path) -> None:
    save_scene(example, "arrival", {"pose": "kneeling"})

    def generated(story) -> None:  # noqa: ANN001 - what the worker writes
        story.scene("arrival").status = "failed"

    update_story(example, generated)  # a worker save: not an edit, not undone
    history.undo(example)
    scene = load_story(example).scene("arrival")
    assert scene.pose != "kneeling"
    assert scene.status == "failed"


def test_a_new_edit_drops_the_redo_side_and_history_is_bounded(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_scene(example, "arrival", {"pose": "a"})
    history.undo(example)
    assert history.next_steps(example)[1] is not None
    save_scene(example, "arrival", {"pose": "b"})
    assert history.next_steps(example) == ("edit scene arrival (pose)", None)
    monkeypatch.setattr(history, "MAX_ENTRIES", 3)
    for i in range(5):
        save_scene(example, "arrival", {"pose": f"p{i}"})
    undone = [history.undo(example) for _ in range(5)]
    assert [u.label for u in undone[:3]] == ["edit scene arrival (pose)"] * 3
    assert undone[3:] == [None, None]
    assert load_story(example).scene("arrival").pose == "p1"


def test_history_never_writes_through_a_link(example: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (example / history.HISTORY_FILE).symlink_to(outside)
    save_scene(example, "arrival", {"pose": "kneeling"})  # saved, without an undo
    assert load_story(example).scene("arrival").pose == "kneeling"
    assert outside.read_text() == "{}"
    assert history.next_steps(example) == (None, None)
    assert history.undo(example) is None


def test_an_unreadable_history_starts_afresh(example: Path) -> None:
    (example / history.HISTORY_FILE).write_text("not json")
    assert history.next_steps(example) == (None, None)
    save_scene(example, "arrival", {"pose": "kneeling"})
    assert history.next_steps(example)[0] == "edit scene arrival (pose)"
