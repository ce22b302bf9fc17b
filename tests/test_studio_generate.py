"""AppTest of generation from the Storyboard: animatic backend, progress, takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.store import load_story
from studio import services
from studio.pages.storyboard import SELECTED_KEY
from studio.testing import page_test

pytest.importorskip("engine.runner")


@pytest.fixture
def small_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example story at a size the animatic renders in a blink."""
    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    folder = services.create_story("small", "", example=True)

    def shrink(story) -> None:  # noqa: ANN001 - Story
        story.settings.width, story.settings.height, story.settings.fps = 128, 96, 8
        story.settings.backend = "animatic"
        for scene in story.scenes:
            scene.duration_s = 1.0

    services.edit_story(folder, shrink)
    return folder


def _texts(at) -> str:  # noqa: ANN001 - AppTest
    kinds = ("error", "warning", "success", "info", "markdown", "caption")
    return "\n".join(str(e.value) for k in kinds for e in getattr(at, k))


def test_generate_selected_then_all_pending(small_story: Path) -> None:
    at = page_test("storyboard", small_story).run()
    at.button(key="storyboard.generate").click().run()
    assert not at.exception
    assert "Queued arrival" in _texts(at)
    assert services.wait_for_jobs(small_story, timeout=240)
    at.run()
    story = load_story(small_story)
    arrival = story.scene("arrival")
    assert arrival.status == "done" and arrival.selected_take == 1
    assert (small_story / arrival.takes[0].files.video).exists()
    assert len(at.get("video")) == 1
    assert "Take 1" in _texts(at)

    at.button(key="storyboard.generate_all").click().run()
    assert services.wait_for_jobs(small_story, timeout=240)
    at.run()
    assert {s.status for s in load_story(small_story).scenes} == {"done"}
    assert "Generate all pending (0)" in [b.label for b in at.button]


def test_new_take_and_select_back_marks_descendants_stale(small_story: Path) -> None:
    services.submit_generation(small_story, ["arrival", "meeting"])
    assert services.wait_for_jobs(small_story, timeout=240)
    at = page_test("storyboard", small_story).run()
    assert at.selectbox(key=SELECTED_KEY).value == "arrival"
    at.button(key="storyboard.generate").click().run()  # a second take
    assert services.wait_for_jobs(small_story, timeout=240)
    at.run()
    story = load_story(small_story)
    assert story.scene("arrival").selected_take == 2
    assert story.scene("meeting").status == "stale"
    at.button(key="storyboard.select_take.1").click().run()
    assert load_story(small_story).scene("arrival").selected_take == 1
    assert "meeting" in _texts(at)
    assert len(at.get("video")) == 2


def test_progress_panel_shows_step_eta_and_cancels(
    small_story: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = services.JobSnapshot(
        running=True,
        current="meeting",
        step=3,
        total_steps=12,
        eta_s=75,
        queued=("climb",),
    )
    cancelled: list[Path] = []
    monkeypatch.setattr(services, "job_status", lambda folder: busy)
    monkeypatch.setattr(services, "cancel_generation", cancelled.append)
    at = page_test("storyboard", small_story).run()
    assert not at.exception
    assert "Queued: climb" in _texts(at)
    at.button(key="storyboard.cancel").click().run()
    assert cancelled == [small_story]


def test_interrupted_scenes_shown_after_reopen(small_story: Path) -> None:
    def crash(story) -> None:  # noqa: ANN001 - a process died mid-generation
        story.scene("climb").status = "generating"

    services.edit_story(small_story, crash)
    services.remember_last_story(small_story)  # it was open when it stopped
    at = page_test("storyboard").run()  # a new session reopens the last story
    assert not at.exception
    assert load_story(small_story).scene("climb").status == "interrupted"
    assert "Interrupted before they finished: climb" in _texts(at)
