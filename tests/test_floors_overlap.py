"""A take's clip and scores are made behind the next scene's denoising.

The runner hands a take whose frames and tail latents are written to its
finisher thread and starts the next ready scene at once; a continuous
successor starts from that take. These tests hold the first scene's scoring
(or its clip) until the second scene's backend has started, so they fail
unless the two overlap, and check that a successor never outlives a source
take that then fails.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

import engine.runner as runner_module
from engine.backend import VideoBackend, get_backend
from engine.runner import JobRunner
from engine.video import ClipWriter
from kg.example import example_story
from kg.observation import Observation, ObservationRequest
from kg.schema import Scores
from kg.store import load_story, save_story

W, H, FRAMES = 96, 64, 9
WAIT = 60  # seconds a gate may take on a loaded machine before the test fails
LINE = ["arrival", "meeting", "climb"]  # each continues from the one before


@pytest.fixture
def story_dir(tmp_path: Path) -> Path:
    story = example_story()
    story.settings.width, story.settings.height = W, H
    for scene in story.scenes:
        scene.num_frames = FRAMES
    save_story(story, tmp_path / "story")
    return tmp_path / "story"


class Announcing(VideoBackend):
    """The animatic, announcing each scene's start by its title."""

    name = "animatic"
    supports_latent_continuity = False

    def __init__(self) -> None:
        self.inner = get_backend("animatic")
        self.started: dict[str, threading.Event] = {}
        self.order: list[str] = []
        self.scored: list[str] | None = None  # an observer's, when watched
        self.scored_before: dict[str, list[str]] = {}

    def event(self, title: str) -> threading.Event:
        return self.started.setdefault(title, threading.Event())

    def generate(self, request, progress, cancel):  # noqa: ANN001, ANN201
        self.order.append(request.scene.title)
        if self.scored is not None:  # what was scored when this scene began
            self.scored_before[request.scene.title] = list(self.scored)
        self.event(request.scene.title).set()
        return self.inner.generate(request, progress, cancel)


def _title(story_dir: Path, scene_id: str) -> str:
    return load_story(story_dir).scene(scene_id).title


class HeldObserver:
    """Scores nothing; holds the scoring of ``held`` until ``release``."""

    def __init__(self, held: str) -> None:
        self.held = held
        self.holding = threading.Event()
        self.release_ = threading.Event()
        self.requests: dict[str, ObservationRequest] = {}
        self.scored: list[str] = []

    def observe(self, request: ObservationRequest) -> Observation:
        self.requests[request.scene_id] = request
        if request.scene_id == self.held:
            self.holding.set()
            assert self.release_.wait(WAIT), "the test never released the scorer"
        self.scored.append(request.scene_id)
        return Observation(scores=Scores())

    def release(self) -> None:
        pass


def test_scoring_runs_behind_the_next_scene(story_dir: Path) -> None:
    backend = Announcing()
    observer = HeldObserver(held="arrival")
    backend.scored = observer.scored
    runner = JobRunner(story_dir, observer, backends=lambda name: backend)
    second = backend.event(_title(story_dir, "meeting"))
    runner.submit(LINE, backend=backend)
    try:
        # arrival's scorer is held: meeting can only start if it overlaps
        assert observer.holding.wait(WAIT)
        assert second.wait(WAIT), "meeting did not start while arrival scored"
        status = runner.status()
        shown = [(status.current_scene, status.phase), *status.finishing]
        assert ("arrival", "score") in shown, shown
        assert load_story(story_dir).scene("arrival").status == "generating"
    finally:
        observer.release_.set()
    assert runner.wait(WAIT * 3)
    story = load_story(story_dir)
    for sid in LINE:
        assert story.scene(sid).status == "done", sid
        assert story.scene(sid).selected.files.video
    # meeting continued from arrival's take, and its scores saw that clip
    meeting = story.scene("meeting").selected
    source = meeting.params.continuity_source
    assert (source.scene_id, source.take) == ("arrival", 1)
    assert meeting.params.continuity_used == "frame"
    assert observer.requests["meeting"].previous_tail is not None
    assert runner.status().finished == tuple(LINE)
    # one take finishing at a time behind a scene: climb began after
    # arrival's scores (meeting's may still have been on their way)
    assert "arrival" in backend.scored_before[_title(story_dir, "climb")]


def _made(story_dir: Path, overlap: bool) -> dict[str, tuple[str, str, bytes]]:
    runner = JobRunner(story_dir, HeldObserver(held=""), overlap=overlap)
    runner.submit(LINE, backend="animatic")
    assert runner.wait(WAIT * 3)
    story = load_story(story_dir)
    out = {}
    for sid in LINE:
        take = story.scene(sid).selected
        last = (story_dir / take.files.last_frame).read_bytes()
        out[sid] = (take.params.cache_key, take.params.continuity_used, last)
    return out


def test_overlapped_takes_equal_the_ones_made_in_turn(tmp_path: Path) -> None:
    made = {}
    for overlap in (True, False):
        story = example_story()
        story.settings.width, story.settings.height = W, H
        for scene in story.scenes:
            scene.num_frames = FRAMES
        folder = tmp_path / f"overlap-{overlap}"
        save_story(story, folder)
        made[overlap] = _made(folder, overlap)
    assert made[True] == made[False]


def test_a_successor_of_a_cancelled_take_is_discarded(story_dir: Path) -> None:
    backend = Announcing()
    observer = HeldObserver(held="arrival")
    runner = JobRunner(story_dir, observer, backends=lambda name: backend)
    second = backend.event(_title(story_dir, "meeting"))
    runner.submit(LINE[:2], backend=backend)
    assert observer.holding.wait(WAIT)
    assert second.wait(WAIT)
    runner.cancel("arrival")  # while it scores behind meeting
    observer.release_.set()
    assert runner.wait(WAIT * 3)
    story = load_story(story_dir)
    assert story.scene("arrival").takes == []
    assert story.scene("meeting").takes == []  # it started from arrival's take
    # both scenes are back as they were before they were queued
    assert [story.scene(sid).status for sid in LINE[:2]] == ["draft"] * 2
    status = runner.status()
    assert "arrival" in status.cancelled
    assert "meeting" in status.failed
    assert "'arrival', which it continues from, ended cancelled" in (
        status.last_error or ""
    )
    leftovers = sorted(p.name for p in (story_dir / "scenes").rglob("take-*"))
    assert leftovers == []


class FailingWriter(ClipWriter):
    """Fails the clip of ``path_part`` once ``gate`` is set (the successor has
    started from that take)."""

    gate: threading.Event
    path_part = "arrival"

    def submit(self, path, frames, fps, **kwargs):  # noqa: ANN001, ANN201
        if self.path_part not in str(path):
            return super().submit(path, frames, fps, **kwargs)
        failed: Future = Future()

        def fail_later() -> None:
            self.gate.wait(WAIT)
            failed.set_exception(OSError("no space left on the test device"))
            on_done = kwargs.get("on_done")
            if on_done is not None:
                on_done(Path(path), failed.exception())

        threading.Thread(target=fail_later, daemon=True).start()
        return failed


def test_a_successor_never_outlives_a_source_that_fails(
    story_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = Announcing()
    FailingWriter.gate = backend.event(_title(story_dir, "meeting"))
    monkeypatch.setattr("engine.runner.ClipWriter", FailingWriter)
    runner = JobRunner(story_dir, HeldObserver(held=""), backends=lambda n: backend)
    runner.submit(LINE, backend=backend)
    assert runner.wait(WAIT * 3)
    story = load_story(story_dir)
    arrival = story.scene("arrival")
    assert [t.status for t in arrival.takes] == ["failed"]
    assert "could not be encoded" in arrival.takes[0].error
    # meeting began from arrival's take before the clip failed: not kept
    assert _title(story_dir, "meeting") in backend.order
    assert story.scene("meeting").takes == []
    status = runner.status()
    assert "meeting" in status.failed
    assert "climb" in status.failed  # nothing left to continue from
    assert story.scene("climb").takes == []
    assert [story.scene(sid).status for sid in LINE] == ["failed", "draft", "draft"]


def test_the_take_card_tells_what_each_phase_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio import services, wiring
    from studio.testing import page_test, shown_text
    from tests.everyday_fakes import example_story as studio_story

    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    monkeypatch.setattr(wiring, "default_observer", lambda: HeldObserver(held=""))
    folder = studio_story("costs", backend="animatic")
    services.submit_generation(folder, ["arrival", "meeting"])
    assert services.wait_for_jobs(folder, timeout=WAIT * 3)
    take = load_story(folder).scene("arrival").selected
    assert {"phase.load", "phase.denoise", "phase.encode", "phase.score"} <= set(
        take.timings
    )
    at = page_test("storyboard", folder)
    at.query_params["scene"] = "arrival"
    at.run()
    text = shown_text(at)
    assert f"scoring {take.timings['phase.score']:.1f} s" in text
    assert f"denoise {take.timings['phase.denoise']:.1f} s" in text


def test_a_scene_being_finished_is_not_queued_again(story_dir: Path) -> None:
    backend = Announcing()
    observer = HeldObserver(held="arrival")
    runner = JobRunner(story_dir, observer, backends=lambda name: backend)
    runner.submit(["arrival"], backend=backend)
    try:
        assert observer.holding.wait(WAIT)  # arrival is being finished
        assert runner.submit(["arrival"], backend=backend, force=True) == []
    finally:
        observer.release_.set()
    assert runner.wait(WAIT)
    assert [t.index for t in load_story(story_dir).scene("arrival").takes] == [1]
    # once it is done, it may be made again
    assert runner.submit(["arrival"], backend=backend, force=True) == ["arrival"]
    assert runner.wait(WAIT)
    assert len(load_story(story_dir).scene("arrival").takes) == 2


def test_a_budget_stop_ends_the_run_with_the_rest_put_back(
    story_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.budget import BudgetExceededError

    real = runner_module.prepare_take

    def refuse_meeting(story_dir, scene_id, **options):  # noqa: ANN001, ANN202
        if scene_id == "meeting":
            raise BudgetExceededError("the story's budget is spent; raise it")
        return real(story_dir, scene_id, **options)

    monkeypatch.setattr(runner_module, "prepare_take", refuse_meeting)
    runner = JobRunner(story_dir, HeldObserver(held=""))
    runner.submit(LINE, backend="animatic")
    assert runner.wait(WAIT), "the run did not end after the budget stop"
    story = load_story(story_dir)
    assert story.scene("arrival").status == "done"
    assert story.scene("meeting").status == "draft"
    assert story.scene("climb").status == "draft"  # not left queued
    status = runner.status()
    assert not status.running and "meeting" in status.failed


def test_a_successor_reading_its_source_clip_equals_one_made_in_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LTX-2 fills the causal VAE's one-frame slot from the source's clip:
    planned from a take still being finished, it waits for that clip."""
    from engine.backends.ltx2.backend import release_models
    from kg.schema import SceneNode, Settings, Story

    second = threading.Event()
    real = runner_module.make_take

    def announcing(prepared, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if prepared.tip.scene_id == "cliff":
            second.set()
        return real(prepared, *args, **kwargs)

    monkeypatch.setattr(runner_module, "make_take", announcing)
    made = {}
    try:
        for overlap in (True, False):
            story = Story(
                title="Shore",
                settings=Settings(
                    backend="ltx2", model="tiny-random", width=64, height=64,
                    fps=24, quality_preset="fast",
                ),
                scenes=[
                    SceneNode(id="shore", title="Shore", num_frames=33),
                    SceneNode(id="cliff", title="Cliff", num_frames=33),
                ],
            )  # fmt: skip
            from kg.graph import DynamicSceneGraph

            DynamicSceneGraph(story).connect("shore", "cliff")
            folder = tmp_path / f"overlap-{overlap}"
            save_story(story, folder)
            observer = HeldObserver(held="shore" if overlap else "")
            observer.release_ = second  # shore is scored once cliff has begun
            runner = JobRunner(folder, observer, overlap=overlap)
            second.clear()
            runner.submit(["shore", "cliff"])
            assert runner.wait(WAIT * 4)
            saved = load_story(folder)
            assert saved.scene("cliff").status == "done", runner.status()
            take = saved.scene("cliff").selected
            assert take.params.continuity_used == "latent"
            made[overlap] = (
                take.params.continuity_note,
                (folder / take.files.last_frame).read_bytes(),
            )
    finally:
        release_models()
    assert made[True] == made[False]


def test_a_hosted_take_being_finished_counts_against_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.budget import spent
    from engine.video import write_video
    from tests.hosted_fakes import FakeReplicate, Script

    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_secret_test_token_123")
    out = tmp_path / "out.mp4"
    frames = np.zeros((30, 96, 160, 3), np.uint8)
    write_video(out, frames, 24)
    story = example_story()
    s = story.settings
    s.backend, s.model, s.width, s.height, s.fps = (
        "replicate", "lightricks/ltx-video", 64, 64, 24
    )  # fmt: skip
    s.hosted.budget_usd = 0.15
    s.hosted.prices.usd_per_second["lightricks/ltx-video"] = 0.10 * 24 / 17
    for scene in story.scenes:
        scene.duration_s = 17 / 24  # $0.10 a scene
    folder = tmp_path / "story"
    save_story(story, folder)
    # arrival is scored (its cost not yet saved) until meeting's budget check
    checked = threading.Event()
    real = runner_module.prepare_take

    def checking(story_dir, scene_id, **options):  # noqa: ANN001, ANN202
        try:
            return real(story_dir, scene_id, **options)
        finally:
            if scene_id == "meeting":
                checked.set()

    monkeypatch.setattr(runner_module, "prepare_take", checking)
    observer = HeldObserver(held="arrival")
    observer.release_ = checked
    with FakeReplicate(Script(output=out.read_bytes())) as fake:
        backend = get_backend("replicate", base_url=fake.url)
        backend.poll_s = 0.0
        runner = JobRunner(folder, observer, backends=lambda name: backend)
        runner.submit(LINE[:2], backend=backend)
        assert runner.wait(WAIT * 3)
    saved = load_story(folder)
    assert saved.scene("arrival").status == "done"
    assert saved.scene("meeting").takes == []  # $0.10 held + $0.10 > $0.15
    assert "budget" in (runner.status().last_error or "")
    assert spent(saved) == pytest.approx(0.10)
