"""Runs that keep going and keep what the user did (issue 24): a bad
reference image fails only its scenes, ``run --ray`` holds the story's run
lock while Ray starts, a batch renders a story named twice once, best of N
keeps an edit or a selection made while its candidates generate, and a full
disk is named, not a traceback."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import engine.backend as backend_registry
from engine.backend import CancelToken as Cancel
from engine.backends.animatic.backend import AnimaticBackend
from engine.best_of import generate_best_of
from engine.generate import complete_take
from engine.references import ReferenceFileError
from engine.runlock import RunLockedError, held_here
from engine.runner import JobRunner
from engine.scheduler import SceneRun, outcome_of_error, plan_story
from engine.takes import select_take
from kg.example import example_story
from kg.observation import Observation, ObservationRequest
from kg.schema import Scores
from kg.store import load_story, save_story, update_story
from studio.cli import app


def _story(folder: Path, bad_reference: bool = False) -> Path:
    story = example_story()
    s = story.settings
    s.width, s.height, s.fps = 64, 64, 8
    s.best_of.objective = ["clip_score"]
    if bad_reference:  # the lighthouse's picture is not an image
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "lighthouse.png").write_bytes(b"\x89PNG not really")
        story.environments[1].reference_images = ["refs/lighthouse.png"]
    save_story(story, folder)
    return folder


class _WithReferences(AnimaticBackend):
    supports_references = True  # reads them, so a bad one is refused


@pytest.fixture
def references(monkeypatch: pytest.MonkeyPatch) -> None:
    """The animatic backend reads reference images, as LTX does (and the
    front ends' shared instances are built anew from the registry)."""
    import studio.wiring

    monkeypatch.setitem(backend_registry._REGISTRY, "animatic", _WithReferences)
    monkeypatch.setattr(studio.wiring, "_BACKENDS", {})


class _Scores:
    """Scores a take by its seed; ``during(n, request)`` runs as candidate
    ``n`` (1-based) is scored: what a user does meanwhile."""

    def __init__(self, during: Any = None, first_best: bool = False) -> None:
        self.during = during
        self.first_best = first_best
        self.count = 0

    def observe(self, request: ObservationRequest) -> Observation:
        self.count += 1
        if self.during is not None:
            self.during(self.count, request)
        score = 1 / self.count if self.first_best else 0.1 * self.count
        return Observation(Scores(clip_score=score))

    def release(self) -> None:
        pass


# One bad reference ----------------------------------------------------------------


def test_a_bad_reference_fails_only_its_scenes(
    tmp_path: Path, references: None
) -> None:
    refused = outcome_of_error("climb", ReferenceFileError("lighthouse.png: no"))
    assert refused.kind == "failed" and not refused.stops_story

    for candidates in (1, 2):  # one take, and best of N
        folder = _story(tmp_path / f"story{candidates}", bad_reference=True)
        runner = JobRunner(folder, _Scores(), background_encode=False)
        runner.submit([s.id for s in load_story(folder).scenes], candidates=candidates)
        assert runner.wait(300)
        status = runner.status()
        assert set(status.finished) == {"arrival", "meeting"}, status
        assert "cliff-edge" in status.failed and len(status.failed) == 4
        assert "lighthouse.png" in runner._book.errors["climb"]  # named, no take
        assert load_story(folder).scene("climb").takes == []

    # a batch goes on with its other stories
    bad = _story(tmp_path / "bad", bad_reference=True)
    good = _story(tmp_path / "good")
    result = CliRunner().invoke(app, ["batch", str(bad), str(good), "--no-score"])
    assert result.exit_code == 1, result.output
    assert {s.status for s in load_story(good).scenes} == {"done"}
    assert "Traceback" not in result.output


# The run lock across Ray's start ---------------------------------------------------


def test_run_on_ray_holds_the_story_lock_while_ray_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from engine.ray_runner import BatchStatus, RayRunner

    folder = _story(tmp_path / "story")
    seen: list[bool] = []

    def init(**kwargs: Any) -> None:
        seen.append(held_here(folder))
        raise RuntimeError("no cluster in this test")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(RuntimeError, match="no cluster"):
        RayRunner(workers=1).run([folder])
    assert seen == [True] and not held_here(folder)

    # the command: its lock is never let go between its checks and the run
    def run(self: RayRunner, stories: list[Path], **kw: Any) -> BatchStatus:
        seen.append(all(held_here(s) for s in stories))
        return BatchStatus([plan_story(s) for s in stories])

    monkeypatch.setattr(RayRunner, "run", run)
    cli = CliRunner()
    result = cli.invoke(app, ["run", str(folder), "--ray", "local", "--no-score"])
    assert result.exit_code == 0, result.output
    assert seen == [True, True]

    def locked(self: RayRunner, stories: list[Path], **kw: Any) -> BatchStatus:
        raise RunLockedError(f"another process is generating scenes of {folder}")

    monkeypatch.setattr(RayRunner, "run", locked)
    result = cli.invoke(app, ["batch", str(folder), "--ray", "local", "--no-score"])
    assert result.exit_code == 1 and "another process" in result.output
    assert isinstance(result.exception, SystemExit)  # a message, no traceback


# A story named twice --------------------------------------------------------------


def test_a_batch_renders_a_story_named_twice_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _story(tmp_path / "a")
    b = _story(tmp_path / "b")
    (tmp_path / "link").symlink_to(a, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    names = ["a", "a/", str(a), "link", "./a/../a", "b"]
    result = CliRunner().invoke(app, ["batch", *names, "--no-score"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # as printed, wrapped or not
    assert said.count("is the same story as a") == 4
    for folder in (a, b):
        assert [len(s.takes) for s in load_story(folder).scenes] == [1] * 6

    sent: list[list[Path]] = []

    def on_ray(directories: list[Path], *args: Any, **kw: Any) -> Any:
        sent.append(directories)
        raise SystemExit(0)

    monkeypatch.setattr("studio.cli.on_ray.run_on_ray", on_ray)
    CliRunner().invoke(app, ["batch", *names, "--ray", "local"])
    assert sent == [[Path("a"), Path("b")]]


# Best of N and the user's changes meanwhile ---------------------------------------


def test_best_of_keeps_an_edit_saved_while_its_candidates_generate(
    tmp_path: Path,
) -> None:
    folder = _story(tmp_path / "story")

    def edit(n: int, request: ObservationRequest) -> None:
        if n == 1:  # saved while the candidates generate

            def change(story: Any) -> None:
                story.scene("arrival").motion = "she runs back to the boat"

            update_story(folder, change)

    # the best candidate was made before the edit: it shows the old text
    observer = _Scores(edit, first_best=True)
    take = generate_best_of(folder, "arrival", 3, backend="animatic", observer=observer)
    scene = load_story(folder).scene("arrival")
    assert scene.status == "stale" and take.index == scene.selected_take == 1
    assert scene.motion == "she runs back to the boat"
    assert scene.selected.best_of.candidates == [1, 2, 3]

    # the best was made after it (candidates run one after another here): done
    take = generate_best_of(folder, "arrival", 3, backend="animatic",
                            observer=_Scores(edit))  # fmt: skip
    scene = load_story(folder).scene("arrival")
    assert scene.status == "done" and take.index == scene.selected_take == 6


def test_best_of_keeps_a_selection_made_while_its_candidates_generate(
    tmp_path: Path,
) -> None:
    folder = _story(tmp_path / "story")
    generate_best_of(folder, "arrival", 2, backend="animatic", observer=_Scores())
    before = load_story(folder).scene("arrival").selected_take

    def pick(n: int, request: ObservationRequest) -> None:
        if n == 2:  # the user picks take 1 while candidate 2 is scored
            select_take(folder, "arrival", 1)

    generate_best_of(folder, "arrival", 2, backend="animatic", observer=_Scores(pick))
    scene = load_story(folder).scene("arrival")
    assert before == 2 and scene.selected_take == 1 and scene.status == "done"
    assert scene.take(4).best_of is not None  # the choice is still recorded


def test_candidates_on_the_shared_scheduler_keep_an_edit(tmp_path: Path) -> None:
    folder = _story(tmp_path / "story")
    story = plan_story(folder, ["arrival"])
    story.start("arrival")
    run = SceneRun(story, "arrival", wanted=2)
    begun = [run.begin(backend="animatic"), run.begin(backend="animatic")]

    def change(s: Any) -> None:
        s.scene("arrival").motion = "the tide comes in"

    update_story(folder, change)  # saved while both are in flight (as on Ray)
    for prepared in begun:
        assert prepared is not None
        result = prepared.impl.generate(prepared.request, lambda *a: None, Cancel())
        run.settle(prepared, lambda p, r=result: complete_take(p, r, _Scores(), None))
    assert run.over and run.outcome().kind == "done"
    scene = load_story(folder).scene("arrival")
    assert scene.status == "stale" and scene.selected.best_of.candidates == [1, 2]


# A full disk -----------------------------------------------------------------------


def _full(path: Path, code: int = errno.ENOSPC) -> OSError:
    return OSError(code, os.strerror(code), str(path))


def test_a_full_disk_is_named_with_its_file_and_what_to_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "story" / "scenes" / "arrival" / "take-1.mp4"
    full = outcome_of_error("arrival", _full(target))
    assert full.kind == "failed" and str(target) in full.message
    assert "the disk is full" in full.message and "Free at least 1.0 GB" in full.message
    assert "quota" in outcome_of_error("arrival", _full(target, errno.EDQUOT)).message
    try:  # raised from a disk-full error: the cause is found
        try:
            raise _full(target)
        except OSError as exc:
            raise RuntimeError("encoding failed") from exc
    except RuntimeError as exc:
        assert "the disk is full" in outcome_of_error("arrival", exc).message
    other = outcome_of_error("arrival", PermissionError(errno.EACCES, "denied"))
    assert "the disk is full" not in other.message

    # the command: `new` on a full disk
    cli = CliRunner()
    folder = tmp_path / "new"

    def no_room(story: Any, directory: Path, *a: Any, **kw: Any) -> None:
        raise _full(Path(directory) / "kg_state.json")

    monkeypatch.setattr("kg.store.save_story", no_room)
    result = cli.invoke(app, ["new", str(folder), "--example"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "the disk is full: could not write" in result.output
    assert "kg_state.json" in result.output and "Traceback" not in result.output
    monkeypatch.undo()

    # a run: the take's frames cannot be written
    folder = _story(tmp_path / "run")

    def png(path: Path, frame: Any) -> None:
        raise _full(path)

    monkeypatch.setattr("engine.outcome.write_png", png)
    result = cli.invoke(app, ["run", str(folder), "--scenes", "arrival", "--no-score"])
    assert result.exit_code == 1 and "the disk is full" in result.output
    error = load_story(folder).scene("arrival").takes[-1].error
    assert "the disk is full: could not write" in error and "first.png" in error


def test_the_studio_names_a_full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.testing import app_test, shown_text

    def stories_page() -> None:
        raise _full(Path("/stories/lighthouse/kg_state.json"))

    monkeypatch.setattr("studio.views.stories.stories_page", stories_page)
    at = app_test().run()
    assert not at.exception
    text = shown_text(at)
    assert "the disk is full: could not write /stories/lighthouse/kg_state.json" in text
