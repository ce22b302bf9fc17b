"""Scene generation: the example story end to end, continuity, cache, failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.backend import (
    BackendError,
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    OutOfMemoryError,
    VideoBackend,
    get_backend,
)
from engine.continuity import ContinuityError, load_tail_latents
from engine.generate import generate_scene
from engine.observe import Observation
from engine.runner import JobRunner
from engine.takes import select_take
from engine.video import read_png, read_video, video_info
from kg.example import example_story
from kg.graph import DynamicSceneGraph, continuity_predecessor
from kg.paths import resolve_asset
from kg.schema import Scores
from kg.store import STATE_FILE, load_story, save_story, update_story

W, H, FRAMES = 128, 96, 9


@pytest.fixture
def story_dir(tmp_path):
    story = example_story()
    story.settings.width, story.settings.height = W, H
    for i, scene in enumerate(story.scenes):
        scene.num_frames = FRAMES + 4 * (i % 2)  # 9 and 13 frames
    save_story(story, tmp_path)
    return tmp_path


def _frames(story_dir, rel):
    return read_png(resolve_asset(story_dir, rel))


class LatentBackend(VideoBackend):
    """Animatic frames plus fake tail latents; records what it was given."""

    name = "fake-latent"
    supports_latent_continuity = True
    version = "1"

    def __init__(self):
        self.requests: list[GenerationRequest] = []
        self.inner = get_backend("animatic")

    def generate(self, request, progress, cancel):
        self.requests.append(request)
        result = self.inner.generate(request, progress, cancel)
        carried = request.continuity
        result.tail_latents = torch.full((1, 4, 2, 3, 4), float(request.seed))
        result.latent_meta = {"model": request.model, "source": str(request.seed)}
        if carried is not None and carried.mode == "latent":
            result.continuity_used, result.continuity_note = "latent", ""
        return result


class FailingBackend(VideoBackend):
    name = "failing"
    supports_latent_continuity = False

    def __init__(self, exc):
        self.exc = exc

    def generate(self, request, progress, cancel):
        progress(1, 4)
        raise self.exc


def test_example_story_end_to_end_with_the_animatic(story_dir):
    runner = JobRunner(story_dir)
    story = load_story(story_dir)
    queued = runner.submit([s.id for s in story.scenes])
    assert runner.wait(120)
    st = runner.status()
    assert set(st.finished) == set(queued) and not st.failed and not st.running
    story = load_story(story_dir)
    graph = DynamicSceneGraph(story)
    continuous = 0
    for scene in story.scenes:
        assert scene.status == "done", scene.id
        take = scene.selected
        assert take.status == "done" and take.files.video
        info = video_info(resolve_asset(story_dir, take.files.video))
        assert (info["frames"], info["width"], info["height"]) == (
            scene.num_frames,
            W,
            H,
        )
        assert read_video(resolve_asset(story_dir, take.files.video)).shape == (
            scene.num_frames,
            H,
            W,
            3,
        )
        pred = continuity_predecessor(graph, scene.id)
        first = _frames(story_dir, take.files.first_frame)
        if pred is None:
            assert take.params.continuity_used == "none"
            continue
        continuous += 1
        prev_last = _frames(story_dir, story.scene(pred).selected.files.last_frame)
        assert np.abs(first.astype(int) - prev_last.astype(int)).max() <= 1, scene.id
        assert take.params.continuity_source.scene_id == pred
        # the animatic has no latents: latent mode falls back and says why
        assert take.params.continuity_requested == "latent"
        assert take.params.continuity_used == "frame"
        assert "no latent space" in take.params.continuity_note
        assert {"backend", "write", "encode", "total"} <= set(take.timings)
    assert continuous == 4


def test_cache_hit_reuses_the_take_and_force_makes_a_new_one(story_dir):
    first = generate_scene(story_dir, "arrival")
    again = generate_scene(story_dir, "arrival")
    assert again.index == first.index == 1
    assert len(load_story(story_dir).scene("arrival").takes) == 1
    forced = generate_scene(story_dir, "arrival", force=True)
    assert forced.index == 2 and forced.params.cache_key == first.params.cache_key
    update_story(story_dir, lambda s: setattr(s.scene("arrival"), "seed", 99))
    assert generate_scene(story_dir, "arrival").index == 3


def test_selecting_another_take_marks_continuous_descendants_stale(story_dir):
    for sid in ("arrival", "meeting", "climb", "cliff-edge"):
        generate_scene(story_dir, sid)
    # take 2 with other pixels (another camera move), selected
    update_story(story_dir, lambda s: setattr(s.scene("arrival"), "camera", "static"))
    generate_scene(story_dir, "arrival")
    story = load_story(story_dir)
    assert story.scene("meeting").status == "stale"
    assert story.scene("climb").status == "stale"
    assert story.scene("cliff-edge").status == "done"  # a cut: not affected
    update_story(story_dir, lambda s: setattr(s.scene("meeting"), "status", "done"))
    # climb is stale already; only meeting changes
    assert select_take(story_dir, "arrival", 1) == ["meeting"]
    assert select_take(story_dir, "arrival", 1) == []  # unchanged selection
    with pytest.raises(KeyError):
        select_take(story_dir, "arrival", 7)


def test_latent_continuity_carries_the_saved_tail(story_dir):
    backend = LatentBackend()
    a = generate_scene(story_dir, "arrival", backend=backend, model="m1")
    tail, meta = load_tail_latents(resolve_asset(story_dir, a.files.tail_latents))
    assert meta["source"] == "11" and meta["model"] == "m1"
    b = generate_scene(story_dir, "meeting", backend=backend, model="m1")
    carried = backend.requests[-1].continuity
    assert carried.mode == "latent" and torch.equal(carried.tail_latents, tail)
    assert carried.last_frame is not None and carried.latent_meta == meta
    assert b.params.continuity_used == "latent" and b.params.continuity_note == ""
    # latents from another model cannot condition: fall back to the frame
    generate_scene(story_dir, "climb", backend=backend, model="m2")
    carried = backend.requests[-1].continuity
    assert carried.mode == "frame" and carried.tail_latents is None
    take = load_story(story_dir).scene("climb").selected
    assert "model 'm1'" in take.params.continuity_note


@pytest.mark.parametrize("mode", ["frame", "none"])
def test_continuity_mode_setting(story_dir, mode):
    update_story(story_dir, lambda s: setattr(s.settings, "continuity_mode", mode))
    a = generate_scene(story_dir, "arrival")
    b = generate_scene(story_dir, "meeting")
    assert b.params.continuity_requested == mode
    assert b.params.continuity_used == mode
    same = np.array_equal(
        _frames(story_dir, a.files.last_frame), _frames(story_dir, b.files.first_frame)
    )
    assert same == (mode == "frame")


def test_a_scene_waits_for_its_predecessor(story_dir):
    with pytest.raises(ContinuityError, match="generate 'arrival' first"):
        generate_scene(story_dir, "meeting")
    scene = load_story(story_dir).scene("meeting")
    assert scene.takes == [] and scene.status == "draft"


@pytest.mark.parametrize(
    "exc",
    [
        OutOfMemoryError("CUDA out of memory"),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
    ],
)
def test_out_of_memory_gives_a_failed_take_and_an_intact_story(story_dir, exc):
    generate_scene(story_dir, "arrival")
    before = json.loads((story_dir / STATE_FILE).read_text())["scenes"][0]
    take = generate_scene(story_dir, "meeting", backend=FailingBackend(exc))
    assert take.status == "failed" and "out of memory" in take.error
    assert "memory_mode" in take.error and "width/height" in take.error
    story = load_story(story_dir)  # still valid
    scene = story.scene("meeting")
    assert scene.status == "failed" and scene.selected_take is None
    assert [t.status for t in scene.takes] == ["failed"]
    assert not (story_dir / "scenes" / "meeting").exists() or not list(
        (story_dir / "scenes" / "meeting").iterdir()
    )
    after = json.loads((story_dir / STATE_FILE).read_text())["scenes"][0]
    assert after == before
    # and the scene generates fine afterwards
    assert generate_scene(story_dir, "meeting").status == "done"


def test_a_backend_error_message_reaches_the_take(story_dir):
    msg = "height and width must be multiples of 32, got 96 and 128"
    take = generate_scene(
        story_dir, "arrival", backend=FailingBackend(BackendError(msg))
    )
    assert take.error == msg
    take = generate_scene(
        story_dir, "arrival", backend=FailingBackend(ZeroDivisionError("boom"))
    )
    assert "ZeroDivisionError: boom" in take.error and take.index == 2


def test_cancel_removes_the_unfinished_take(story_dir):
    cancel = CancelToken()

    def progress(step, total):
        if step == 3:
            cancel.set()

    with pytest.raises(GenerationCancelled):
        generate_scene(story_dir, "arrival", progress=progress, cancel=cancel)
    scene = load_story(story_dir).scene("arrival")
    assert scene.takes == [] and scene.status == "draft"
    assert (
        not any((story_dir / "scenes").rglob("*.*"))
        if (story_dir / "scenes").exists()
        else True
    )


class RecordingObserver:
    def __init__(self):
        self.calls = []

    def observe(self, request):
        self.calls.append(
            (
                request.scene_id,
                request.take_index,
                request.frames.shape,
                request.previous_last_frame,
            )
        )
        rel = request.embeddings_path
        from safetensors.numpy import save_file

        save_file({"clip": np.zeros((2, 4), np.float32)}, request.story_dir / rel)
        return Observation(scores=Scores(temporal_flicker=0.97), embeddings=rel)


class BrokenObserver:
    def observe(self, request):
        raise RuntimeError("no weights")


def test_observer_scores_are_stored_with_the_take(story_dir):
    observer = RecordingObserver()
    a = generate_scene(story_dir, "arrival", observer=observer)
    b = generate_scene(story_dir, "meeting", observer=observer)
    assert observer.calls[0][3] is None
    assert np.array_equal(observer.calls[1][3], _frames(story_dir, a.files.last_frame))
    assert observer.calls[1][2] == (13, H, W, 3)
    take = load_story(story_dir).scene("meeting").selected
    assert take.index == b.index and take.scores.temporal_flicker == 0.97
    assert take.files.embeddings.endswith(".embeddings.safetensors")
    c = generate_scene(story_dir, "climb", observer=BrokenObserver())
    assert c.status == "done" and "no weights" in c.scores.unavailable["observer"]


def test_one_generation_loads_the_story_twice_and_writes_it_twice(
    tmp_path, monkeypatch
):
    """The state is read once before the take starts and once to finish it
    (the merge path); written for 'generating' and for 'done'."""
    import engine.generate
    import kg.store as store

    story = example_story()
    story.settings.width, story.settings.height, story.settings.fps = 96, 64, 8
    save_story(story, tmp_path)
    counts = {"load": 0, "write": 0}
    real_load, real_write = store.load_story, store._atomic_write

    def load(*args, **kwargs):
        counts["load"] += 1
        return real_load(*args, **kwargs)

    def write(*args, **kwargs):
        counts["write"] += 1
        return real_write(*args, **kwargs)

    monkeypatch.setattr(store, "load_story", load)
    monkeypatch.setattr(engine.generate, "load_story", load)
    monkeypatch.setattr(store, "_atomic_write", write)
    take = generate_scene(tmp_path, "arrival", backend="animatic")
    assert take.status == "done"
    assert counts == {"load": 2, "write": 2}
