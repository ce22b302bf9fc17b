"""AppTest of generation from the Storyboard: animatic backend, progress, takes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kg.store import load_story
from studio import services
from studio.testing import page_test, shown_text
from studio.views.storyboard import SELECTED_KEY

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
    return shown_text(at)


def test_generate_selected_then_all_pending(small_story: Path) -> None:
    at = page_test("storyboard", small_story).run()
    at.button(key="storyboard.generate").click().run()
    assert not at.exception
    # The one-off "Queued arrival" notice may already be gone if the progress
    # panel reran the page when the scene started; the state tells for sure.
    assert load_story(small_story).scene("arrival").status in (
        "queued",
        "generating",
        "done",
    )
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
    # rain: the animatic draws it from the seed, so a new take has other pixels
    services.edit_story(
        small_story, lambda s: setattr(s.scene("arrival"), "weather", "rain")
    )
    services.submit_generation(small_story, ["arrival", "meeting"])
    assert services.wait_for_jobs(small_story, timeout=240)
    at = page_test("storyboard", small_story)
    at.session_state["storyboard.structure_open"] = True  # lists the successors
    at.run()
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
    (player,) = at.get("iframe")  # the two takes side by side, played together
    assert player.proto.srcdoc.count("<video") == 2


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

    def generating(story) -> None:  # noqa: ANN001 - Story
        story.scene("meeting").status = "generating"
        story.scene("climb").status = "queued"

    services.edit_story(small_story, generating)
    at = page_test("storyboard", small_story).run()
    assert not at.exception
    assert "Queued: climb" in _texts(at)
    assert "step 3/12 · ETA 1 min 15 s" in str(at.get("progress")[0].proto.text)
    assert not at.button(key="storyboard.generate").disabled  # arrival: a draft
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    assert at.button(key="storyboard.generate").disabled  # already generating
    assert load_story(small_story).scene("meeting").status == "generating"
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


# Holds the story's run lock the way `storygraph run` does, until stdin closes.
_LOCK_HOLDER = """
import sys
from engine.runlock import hold_run
with hold_run(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_generation_in_another_process_is_followed_not_interrupted(
    small_story: Path,
) -> None:
    def running_elsewhere(story) -> None:  # noqa: ANN001 - Story
        story.scene("climb").status = "generating"
        story.scene("lamp-room").status = "queued"

    services.edit_story(small_story, running_elsewhere)
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(small_story)],
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        at = page_test("storyboard", small_story).run()
        assert not at.exception
        text = _texts(at)
        assert "Generating in another process" in text and "climb, lamp-room" in text
        assert "Interrupted" not in text
        assert at.button(key="storyboard.generate").disabled
        assert at.button(key="storyboard.generate_all").disabled
        assert load_story(small_story).scene("climb").status == "generating"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    # the process is gone without finishing: its scenes were interrupted
    at.run()
    assert not at.exception
    story = load_story(small_story)
    assert story.scene("climb").status == "interrupted"
    assert story.scene("lamp-room").status == "interrupted"
    assert "Interrupted before they finished: climb, lamp-room" in _texts(at)
    assert not at.button(key="storyboard.generate").disabled
