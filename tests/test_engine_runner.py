"""The job runner, crash recovery and ``storygraph run`` in a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from engine.backend import VideoBackend, get_backend
from engine.recovery import recover_interrupted
from engine.runlock import RunLockedError, hold_run
from engine.runner import JobRunner
from engine.video import read_png, read_video
from kg.example import example_story
from kg.graph import DynamicSceneGraph, continuity_predecessor
from kg.paths import resolve_asset
from kg.schema import GenerationParams, Take
from kg.store import STATE_FILE, load_story, save_story, update_story

W, H, FRAMES = 128, 96, 9
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def story_dir(tmp_path):
    story = example_story()
    story.settings.width, story.settings.height = W, H
    for scene in story.scenes:
        scene.num_frames = FRAMES
    save_story(story, tmp_path / "story")
    return tmp_path / "story"


class CancellingBackend(VideoBackend):
    """The animatic, whose progress callback cancels the run in scene ``at``."""

    name = "cancelling"
    supports_latent_continuity = False

    def __init__(self, runner_box, at):
        self.box, self.at, self.seen = runner_box, at, []
        self.inner = get_backend("animatic")

    def generate(self, request, progress, cancel):
        self.seen.append(request.scene.title)

        def cancelling_progress(step, total):
            progress(step, total)
            if len(self.seen) == self.at and step == 2:
                self.box[0].cancel()

        return self.inner.generate(request, cancelling_progress, cancel)


def test_cancel_mid_run_restores_statuses(story_dir):
    box = []
    runner = JobRunner(story_dir, background_encode=False)
    box.append(runner)
    story = load_story(story_dir)
    runner.submit([s.id for s in story.scenes], backend=CancellingBackend(box, 2))
    assert runner.wait(60)
    st = runner.status()
    assert st.finished == ("arrival",)
    assert st.cancelled[0] == "meeting" and len(st.cancelled) == 5
    assert not st.running and st.eta_s is None
    story = load_story(story_dir)
    assert story.scene("arrival").status == "done"
    for scene in story.scenes[1:]:
        assert scene.status == "draft" and scene.takes == [], scene.id
    assert not (story_dir / "scenes" / "meeting").exists() or not list(
        (story_dir / "scenes" / "meeting").iterdir()
    )
    # the runner keeps working after a cancel
    runner.submit(["meeting"])
    assert runner.wait(60) and load_story(story_dir).scene("meeting").status == "done"


def test_runner_orders_by_continuity_and_reports_progress(story_dir):
    runner = JobRunner(story_dir)
    assert runner.submit(["meeting", "arrival"]) == ["arrival", "meeting"]
    assert runner.wait(60)
    st = runner.status()
    assert st.finished == ("arrival", "meeting")
    assert (st.step, st.total_steps) == (FRAMES, FRAMES)
    story = load_story(story_dir)
    first = read_png(
        resolve_asset(story_dir, story.scene("meeting").selected.files.first_frame)
    )
    last = read_png(
        resolve_asset(story_dir, story.scene("arrival").selected.files.last_frame)
    )
    assert np.array_equal(first, last)
    with pytest.raises(KeyError, match="nope"):
        runner.submit(["nope"])


def test_a_failed_predecessor_fails_its_successor_with_a_message(story_dir):
    runner = JobRunner(story_dir)
    runner.submit(["meeting"])
    assert runner.wait(60)
    st = runner.status()
    assert st.failed == ("meeting",) and "generate 'arrival' first" in st.last_error
    assert load_story(story_dir).scene("meeting").status == "draft"


def _generating_take(index: int) -> Take:
    params = GenerationParams(
        backend="animatic",
        prompt="p",
        seed=1,
        steps=1,
        guidance=1.0,
        width=W,
        height=H,
        num_frames=FRAMES,
        fps=24,
    )
    return Take(index=index, status="generating", params=params)


def test_recover_interrupted_only_without_a_live_run(story_dir):
    def leave_generating(s):
        s.scene("arrival").status = "generating"
        s.scene("arrival").takes.append(_generating_take(1))
        s.scene("meeting").status = "queued"

    update_story(story_dir, leave_generating)
    partial = story_dir / "scenes" / "arrival" / ".take-1.partial-0000.mp4"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half a clip")
    with hold_run(story_dir):  # a live run in this process
        assert recover_interrupted(story_dir) == []
    # a live run in another process
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys
            from engine.runlock import hold_run
            with hold_run({str(story_dir)!r}):
                print("held", flush=True)
                sys.stdin.read()
        """),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert recover_interrupted(story_dir) == []
        with (
            pytest.raises(RunLockedError, match="another process"),
            hold_run(story_dir),
        ):
            pass
    finally:
        holder.communicate("", timeout=30)
    assert recover_interrupted(story_dir) == ["arrival", "meeting"]
    story = load_story(story_dir)
    take = story.scene("arrival").take(1)
    assert take.status == "failed" and "generate the scene again" in take.error
    assert story.scene("arrival").status == "interrupted"
    assert not partial.exists()
    assert recover_interrupted(story_dir) == []


_CHILD = """
import sys, threading
from engine.backend import VideoBackend, get_backend, register_backend
from studio.cli import main

class Blocking(VideoBackend):
    name = "blocking"
    supports_latent_continuity = False

    def __init__(self):
        self.inner, self.calls = get_backend("animatic"), 0

    def generate(self, request, progress, cancel):
        self.calls += 1
        if self.calls < 3:
            return self.inner.generate(request, progress, cancel)
        progress(1, request.num_frames)
        threading.Event().wait()  # until SIGKILL

register_backend("blocking", Blocking)
sys.argv = ["storygraph", "run", sys.argv[1], "--backend", "blocking", "--no-score"]
main()
"""


def _wait_for(predicate, deadline_s, what):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)  # polling the state file, with a deadline
    raise AssertionError(f"timed out waiting for {what}")


def _state(story_dir):
    try:
        return load_story(story_dir)
    except Exception:  # mid-replace on some file systems
        return None


def test_sigkill_mid_run_then_run_again_finishes(story_dir):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(story_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def third_scene_generating():
            story = _state(story_dir)
            assert child.poll() is None, child.stderr.read().decode()
            return (
                story is not None
                and any(s.status == "generating" for s in story.scenes)
                and sum(s.status == "done" for s in story.scenes) == 2
            )

        _wait_for(third_scene_generating, 120, "a generating scene")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    killed = load_story(story_dir)
    stuck = [s.id for s in killed.scenes if s.status == "generating"]
    assert len(stuck) == 1

    rerun = subprocess.run(
        [sys.executable, "-m", "studio.cli", "run", str(story_dir), "--no-score"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Recovered interrupted scenes" in rerun.stdout
    story = load_story(story_dir)
    graph = DynamicSceneGraph(story)
    for scene in story.scenes:
        assert scene.status == "done", scene.id
        take = scene.selected
        assert read_video(resolve_asset(story_dir, take.files.video)).shape == (
            FRAMES,
            H,
            W,
            3,
        )
        pred = continuity_predecessor(graph, scene.id)
        if pred:
            assert take.params.continuity_source.take == story.scene(pred).selected_take
    interrupted = story.scene(stuck[0]).takes[0]
    assert interrupted.status == "failed" and "stopped" in interrupted.error
    assert not list(story_dir.rglob("*.partial-*"))
    assert (story_dir / STATE_FILE).read_text().endswith("}\n")


class GatedBackend(VideoBackend):
    """The animatic, but each scene waits for the test to open the gate."""

    name = "gated"
    supports_latent_continuity = False

    def __init__(self):
        import threading

        self.gate = threading.Event()
        self.inner = get_backend("animatic")

    def generate(self, request, progress, cancel):
        assert self.gate.wait(60), "the test never opened the gate"
        return self.inner.generate(request, progress, cancel)


def test_queued_scenes_are_never_left_with_a_free_run_lock(story_dir, monkeypatch):
    probe = textwrap.dedent(
        f"""
        from engine.runlock import RunLockedError, hold_run
        try:
            with hold_run({str(story_dir)!r}):
                print("free")
        except RunLockedError:
            print("held")
        """
    )
    import engine.runner as runner_module
    from engine.runlock import held_here

    backend = GatedBackend()
    runner = JobRunner(story_dir)
    lock_held_at_write = []
    real_update = runner_module.update_story

    def watching_update(path, mutate):
        lock_held_at_write.append(held_here(story_dir))
        return real_update(path, mutate)

    monkeypatch.setattr(runner_module, "update_story", watching_update)
    runner.submit(["arrival", "meeting"], backend=backend)
    # The scenes were written as queued while this process held the lock.
    assert lock_held_at_write[0] is True
    # Another process looking now sees the queued scenes AND a held lock.
    statuses = {s.id: s.status for s in load_story(story_dir).scenes}
    assert statuses["meeting"] == "queued"
    seen = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert seen == "held"
    assert recover_interrupted(story_dir) == []  # nothing taken for dead
    backend.gate.set()
    assert runner.wait(120)
    assert sorted(runner.status().finished) == ["arrival", "meeting"]
