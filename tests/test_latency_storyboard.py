"""The Storyboard's per-click work: a save is one run, a refused save says why.

Save writes in its click callback (`studio.components.scene_editor`), so the
run the click causes already shows the saved scene and no second run
(``st.rerun``) follows; the scene area is a fragment
(`studio.views.storyboard`), drawn in the same run as the page.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.store import load_story
from studio import services
from studio.testing import page_test, shown_text
from studio.views import storyboard
from studio.views.storyboard import editor_key


@pytest.fixture
def example(outputs: Path) -> Path:
    return services.create_story("lighthouse", "", example=True)


def _count_page_runs(monkeypatch: pytest.MonkeyPatch) -> list[Path | None]:
    """Record every full run of the Storyboard page (its ``story_page`` call)."""
    runs: list[Path | None] = []
    real = storyboard.story_page

    def counted(title: str | None) -> Path | None:
        folder = real(title)
        runs.append(folder)
        return folder

    monkeypatch.setattr(storyboard, "story_page", counted)
    return runs


def test_a_save_is_one_run_that_already_shows_the_saved_scene(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _count_page_runs(monkeypatch)
    at = page_test("storyboard", example).run()
    at.text_input(key=editor_key("arrival", "pose")).input("kneeling").run()
    runs.clear()
    at.button(key="storyboard.save").click().run()
    assert not at.exception
    assert len(runs) == 1  # no rerun after the save
    assert load_story(example).scene("arrival").pose == "kneeling"
    assert "Saved arrival." in shown_text(at)
    assert "edit scene arrival (pose)" in at.button(key="storyboard.undo").label
    assert at.button(key="storyboard.revert").disabled  # nothing unsaved now


def test_a_refused_save_keeps_the_typed_values_and_says_why(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = page_test("storyboard", example).run()
    at.text_input(key=editor_key("arrival", "pose")).input("kneeling").run()

    def refuse(folder: Path, scene_id: str, fields: dict) -> list[str]:
        raise services.StoryError("the story file is read-only; make it writable")

    monkeypatch.setattr(services, "save_scene", refuse)
    at.button(key="storyboard.save").click().run()
    assert not at.exception
    assert "Not saved; your values are kept" in shown_text(at)
    assert "read-only" in shown_text(at)
    assert at.text_input(key=editor_key("arrival", "pose")).value == "kneeling"
    assert load_story(example).scene("arrival").pose != "kneeling"

    at.run()  # the notice is shown once
    assert "Not saved" not in shown_text(at)


def test_saving_an_unchanged_scene_writes_nothing(example: Path) -> None:
    at = page_test("storyboard", example).run()
    revision = services.story_view(example).revision
    at.button(key="storyboard.save").click().run()
    assert not at.exception
    assert services.story_view(example).revision == revision
    assert any("nothing changed" in t.value for t in at.toast)


def test_the_editor_holds_each_scene_in_turn_with_its_own_typed_values(
    example: Path,
) -> None:
    from studio.views.storyboard import SELECTED_KEY

    story = load_story(example)
    pose = editor_key("arrival", "pose")  # the same widgets for every scene
    at = page_test("storyboard", example).run()
    at.text_input(key=pose).input("kneeling").run()
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    assert not at.exception
    assert at.text_input(key=pose).value == story.scene("meeting").pose
    assert at.text_input(key=editor_key("meeting", "title")).value == (
        story.scene("meeting").title
    )
    assert "Unsaved edits" not in shown_text(at)
    assert at.button(key="storyboard.revert").disabled
    at.text_input(key=pose).input("leaning on the rail").run()
    at.selectbox(key=SELECTED_KEY).set_value("arrival").run()
    assert at.text_input(key=pose).value == "kneeling"
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    assert at.text_input(key=pose).value == "leaning on the rail"
    # the scene not shown keeps its typed value as a draft
    drafts = at.session_state["storyboard.drafts"]
    assert drafts[(str(example), "arrival")]["pose"] == "kneeling"
    assert load_story(example).scene("arrival").pose == story.scene("arrival").pose
