"""On Ray too, a take's clip and scores are made behind its successor.

The driver writes a returned take's frames and tail latents, hands its clip,
scores and save to its finisher thread, and sends the continuous successor
out at once. The first scene's scoring (or clip) is held until the driver has
submitted the second scene, so these tests fail unless the two overlap; a
successor of a take that then fails is discarded and fails, saying why.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from engine.ray_runner import RayRunner  # noqa: E402
from engine.video import ClipWriter  # noqa: E402
from kg.example import example_story  # noqa: E402
from kg.observation import Observation, ObservationRequest  # noqa: E402
from kg.schema import Scores  # noqa: E402
from kg.store import load_story, save_story  # noqa: E402

WAIT = 60  # seconds a gate may take on a loaded machine before the test fails
LINE = ["arrival", "meeting", "climb"]  # each continues from the one before


@pytest.fixture(scope="module")
def cluster():  # noqa: ANN201
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _story(folder: Path) -> Path:
    story = example_story()
    story.settings.width, story.settings.height, story.settings.fps = 96, 64, 8
    for scene in story.scenes:
        scene.num_frames = 9
    save_story(story, folder)
    return folder


class Submitted:
    """``on_submit``: an event per scene sent to a worker."""

    def __init__(self) -> None:
        self.events: dict[str, threading.Event] = {}

    def __getitem__(self, scene_id: str) -> threading.Event:
        return self.events.setdefault(scene_id, threading.Event())

    def __call__(self, story_dir, scene_id, worker, attempt) -> None:  # noqa: ANN001
        self[scene_id].set()


class HeldObserver:
    """Holds the scoring of ``held`` until ``gate`` is set."""

    def __init__(self, held: str, gate: threading.Event) -> None:
        self.held, self.gate = held, gate
        self.overlapped = False
        self.requests: dict[str, ObservationRequest] = {}

    def observe(self, request: ObservationRequest) -> Observation:
        self.requests[request.scene_id] = request
        if request.scene_id == self.held:
            self.overlapped = self.gate.wait(WAIT)
        return Observation(scores=Scores())

    def release(self) -> None:
        pass


def test_the_successor_goes_out_while_its_source_is_scored(
    cluster: None, tmp_path: Path
) -> None:
    folder = _story(tmp_path / "story")
    submitted = Submitted()
    observer = HeldObserver("arrival", submitted["meeting"])
    status = RayRunner(workers=2, observer=observer, on_submit=submitted).run(
        [folder], scenes={folder: LINE}, backend="animatic"
    )
    assert observer.overlapped, "meeting was not sent out while arrival scored"
    (story,) = status.stories
    assert story.finished == LINE and not story.failed
    saved = load_story(folder)
    meeting = saved.scene("meeting").selected
    source = meeting.params.continuity_source
    assert (source.scene_id, source.take) == ("arrival", 1)
    assert meeting.params.continuity_used in ("latent", "frame")
    assert observer.requests["meeting"].previous_tail is not None
    for sid in LINE:
        assert saved.scene(sid).status == "done"
        assert saved.scene(sid).selected.files.video


def test_a_successor_of_a_failed_take_is_discarded(
    cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _story(tmp_path / "story")
    submitted = Submitted()

    class FailingWriter(ClipWriter):
        """Fails arrival's clip once meeting has gone out."""

        def submit(self, path, frames, fps, **kwargs):  # noqa: ANN001, ANN201
            if "arrival" not in str(path):
                return super().submit(path, frames, fps, **kwargs)
            failed: Future = Future()

            def fail_later() -> None:
                submitted["meeting"].wait(WAIT)
                failed.set_exception(OSError("no space left on the test device"))

            threading.Thread(target=fail_later, daemon=True).start()
            return failed

    monkeypatch.setattr("engine.ray_runner.ClipWriter", FailingWriter)
    status = RayRunner(workers=2, on_submit=submitted).run(
        [folder], scenes={folder: LINE}, backend="animatic"
    )
    assert submitted["meeting"].is_set()
    (story,) = status.stories
    assert "arrival" in story.failed and "meeting" in story.failed
    assert "'arrival', which it continues from, ended failed" in story.errors["meeting"]
    saved = load_story(folder)
    assert [t.status for t in saved.scene("arrival").takes] == ["failed"]
    assert saved.scene("meeting").takes == []  # discarded, files and all
    assert saved.scene("climb").takes == []
    assert not list((folder / "scenes").glob("meeting/take-*"))
