"""Progress that tells the truth: the take's phases in order, each with its time,
an ETA from the story's own recorded phase timings, and the scene shown as
``generating`` in its editor and on the graph while it is made."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.video
from engine.generate import generate_scene
from engine.progress import PHASES, PhaseProgress, PhaseReport
from kg.store import load_story
from studio import services, wiring
from studio.components.graph import graph_data
from studio.palette import STATUS_COLOURS
from studio.testing import page_test, shown_text
from tests.everyday_fakes import (
    GATES,
    HeldObserver,
    example_story,
    finish_everything,
    install,
)

pytest.importorskip("engine.runner")


@pytest.fixture
def story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    install(monkeypatch)
    monkeypatch.setattr(wiring, "default_observer", HeldObserver)
    real = engine.video.write_video

    def held_encode(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        GATES.hold("encode")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.video, "write_video", held_encode)
    GATES.arm()
    folder = example_story("progress")
    yield folder
    finish_everything(folder)


def _progress_text(at) -> str:  # noqa: ANN001 - AppTest
    return str(at.get("progress")[0].proto.text)


def _node_colour(folder: Path, scene_id: str) -> str:
    view = services.story_view(folder)
    node = next(n for n in graph_data(view, scene_id)["nodes"] if n["id"] == scene_id)
    colour = node["color"]
    return colour["background"] if isinstance(colour, dict) else colour


def _shows_generating(at, folder: Path) -> None:  # noqa: ANN001 - AppTest
    assert "Status: :blue[**generating**]" in shown_text(at)
    assert _node_colour(folder, "arrival") == STATUS_COLOURS["generating"]


def test_phases_in_order_with_the_scene_generating(story: Path) -> None:
    GATES.arm("load", "denoise", "decode", "score", "encode")
    at = page_test("storyboard", story).run()
    at.button(key="storyboard.generate").click().run()
    seen = []
    for gate, words in (
        ("load", "loading the model"),
        ("denoise", "denoising · step 1/2"),
        ("decode", "decoding · chunk 1/3"),
        ("score", "scoring"),
    ):
        assert GATES.reached[gate].wait(60), f"never reached {gate}"
        at.run()
        text = _progress_text(at)
        assert f"Generating **arrival** · {words}" in text, text
        assert "ETA" in text
        _shows_generating(at, story)
        seen.append(services.job_status(story).phase)
        GATES.open(gate)
    assert GATES.reached["encode"].wait(60)  # the clip encodes beside scoring
    GATES.open("encode")
    assert services.wait_for_jobs(story, timeout=60)
    assert seen == ["load", "denoise", "decode", "score"]
    take = load_story(story).scene("arrival").take(1)
    recorded = [
        k.removeprefix("phase.") for k in take.timings if k.startswith("phase.")
    ]
    assert sorted(recorded, key=PHASES.index) == list(PHASES)  # every phase timed
    at.run()
    assert "Status: :green[**done**]" in shown_text(at)


def test_eta_comes_from_the_story_recorded_timings(story: Path) -> None:
    generate_scene(story, "arrival", observer=HeldObserver())  # no gates armed
    # a second scene: its ETA while loading is the first take's phase times
    GATES.arm("load")
    services.submit_generation(story, ["meeting"])
    assert GATES.reached["load"].wait(60)
    status = services.job_status(story)
    assert status.phase == "load" and status.current == "meeting"
    assert status.eta_s is not None and status.eta_s >= 0
    assert [name for name, _ in status.phases] == ["load"]
    GATES.open("load")
    assert services.wait_for_jobs(story, timeout=60)


def test_editor_and_graph_say_generating_before_the_file_does(
    story: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the worker has started "meeting"; the story file still says queued
    services.edit_story(
        story, lambda s: setattr(s.scene("meeting"), "status", "queued")
    )
    busy = services.JobSnapshot(
        running=True, current="meeting", phase="load", queued=("climb",)
    )
    monkeypatch.setattr(services, "job_status", lambda folder: busy)
    import studio.job_control as job_control

    monkeypatch.setattr(job_control, "job_status", lambda folder: busy)
    at = page_test("storyboard", story).run()
    at.selectbox(key="storyboard.selected").set_value("meeting").run()
    assert "Status: :blue[**generating**]" in shown_text(at)
    assert "loading the model" in _progress_text(at)
    view = services.story_view(story)
    nodes = {n["id"]: n for n in graph_data(view, "arrival")["nodes"]}
    assert nodes["meeting"]["color"]["background"] == STATUS_COLOURS["generating"]
    assert nodes["climb"]["color"]["background"] == STATUS_COLOURS["queued"]


def test_a_plain_step_callback_still_hears_steps_and_phases_are_timed(
    story: Path,
) -> None:
    steps: list[tuple[int, int]] = []
    generate_scene(story, "arrival", progress=lambda s, t: steps.append((s, t)))
    assert steps == [(1, 2), (2, 2)]
    reports: list[PhaseReport] = []
    services.edit_story(story, lambda s: setattr(s.settings, "backend", "animatic"))
    generate_scene(
        story, "meeting", progress=PhaseProgress(listener=reports.append)
    )  # encoded here, not on a writer: the phases follow one another
    order = list(dict.fromkeys(r.phase for r in reports))
    assert order == ["load", "denoise", "decode", "encode"]  # no observer: no score
    encode = [r for r in reports if r.phase == "encode"]
    assert encode[-1].done == encode[-1].total > 0  # frame by frame
