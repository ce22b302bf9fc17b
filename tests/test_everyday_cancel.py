"""Cancel stops a take in every phase: decode chunk by chunk, encode, scoring.

A cancelled take is discarded (no take, no files) and the story is left as it
was; the panel says "cancelling…" until it has.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from engine.backend import CancelToken, GenerationCancelled
from engine.generate import generate_scene
from engine.progress import PhaseProgress, PhaseReport
from kg.store import load_story
from studio import services, wiring
from studio.testing import page_test
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
    monkeypatch.setattr(wiring, "default_observer", lambda: None)
    GATES.arm()
    folder = example_story("cancel")
    yield folder
    finish_everything(folder)


def _files(folder: Path) -> list[Path]:
    scenes = folder / "scenes"
    if not scenes.exists():
        return []
    return sorted(p for p in scenes.rglob("*") if p.is_file())


def _progress_text(at) -> str:  # noqa: ANN001 - AppTest
    return str(at.get("progress")[0].proto.text)


def test_cancel_during_decode_discards_the_take(story: Path) -> None:
    before = load_story(story)
    GATES.arm("decode")
    at = page_test("storyboard", story).run()
    at.button(key="storyboard.generate").click().run()
    assert GATES.reached["decode"].wait(60), "the decode never started"
    at.run()
    assert "decoding · chunk 1/3" in _progress_text(at)
    at.button(key="storyboard.cancel").click().run()
    assert "Cancelling **arrival**" in _progress_text(at)
    cancel = at.button(key="storyboard.cancel")
    assert cancel.label == "Cancelling…" and cancel.disabled
    GATES.open("decode")  # chunk 2 ends; chunk 3 is never decoded
    assert services.wait_for_jobs(story, timeout=60)
    at.run()
    after = load_story(story)
    arrival = after.scene("arrival")
    assert arrival.takes == [] and arrival.status == "draft"
    assert arrival.selected_take is None
    assert [s.status for s in after.scenes] == [s.status for s in before.scenes]
    assert _files(story) == []
    assert "arrival" in services.job_status(story).cancelled
    assert not at.get("progress")  # nothing generating any more


def _cancel_when(phase: str, done: int, cancel: CancelToken) -> PhaseProgress:
    def listen(report: PhaseReport) -> None:
        if report.phase == phase and report.done >= done:
            cancel.set()

    return PhaseProgress(listener=listen)


def test_cancel_during_encode_leaves_no_clip(story: Path) -> None:
    services.edit_story(story, lambda s: setattr(s.settings, "backend", "animatic"))
    cancel = CancelToken()
    with pytest.raises(GenerationCancelled, match="encoding"):
        generate_scene(
            story, "arrival", progress=_cancel_when("encode", 2, cancel), cancel=cancel
        )
    arrival = load_story(story).scene("arrival")
    assert arrival.takes == [] and arrival.status == "draft"
    assert _files(story) == []


def test_cancel_during_scoring_gives_up_at_once(story: Path) -> None:
    services.edit_story(story, lambda s: setattr(s.settings, "backend", "animatic"))
    GATES.arm("score")
    cancel = CancelToken()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            generate_scene(story, "arrival", cancel=cancel, observer=HeldObserver())
        except BaseException as exc:  # noqa: BLE001 - what the test looks at
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert GATES.reached["score"].wait(60), "scoring never started"
    cancel.set()
    worker.join(60)  # ends while the scorer is still held
    assert not worker.is_alive()
    assert isinstance(outcome[0], GenerationCancelled)
    arrival = load_story(story).scene("arrival")
    assert arrival.takes == [] and arrival.status == "draft"
    GATES.open("score")  # the scorer ends and writes its features...
    for thread in threading.enumerate():
        if thread.name == "storygraph-score":
            thread.join(60)
    assert _files(story) == []  # ...which are removed with it


def test_a_late_scorer_leaves_the_next_take_of_the_same_index_alone(
    story: Path,
) -> None:
    services.edit_story(story, lambda s: setattr(s.settings, "backend", "animatic"))
    GATES.arm("score")
    cancel = CancelToken()

    def run() -> None:
        with contextlib.suppress(GenerationCancelled):
            generate_scene(story, "arrival", cancel=cancel, observer=HeldObserver())

    worker = threading.Thread(target=run)
    worker.start()
    assert GATES.reached["score"].wait(60), "scoring never started"
    cancel.set()
    worker.join(60)
    # a new take gets the same index (and paths) while the old scorer waits
    take = generate_scene(story, "arrival")
    assert take.index == 1 and take.status == "done"
    GATES.open("score")
    for thread in threading.enumerate():
        if thread.name == "storygraph-score":
            thread.join(60)
    video = story / take.files.video  # type: ignore[operator]
    assert video.is_file(), "the late scorer removed the new take's clip"
