"""The scheduler both runners use: readiness along continuous edges, story
order, stories taking turns, the error table and a budget stop."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.budget import BudgetExceededError
from engine.scheduler import (
    ERROR_RULES,
    Outcome,
    StoryProgress,
    next_scene,
    outcome_of_error,
    plan_story,
)
from kg.example import example_story
from kg.store import save_story


@pytest.fixture
def story_dir(tmp_path: Path) -> Path:
    save_story(example_story(), tmp_path / "story")
    return tmp_path / "story"


def test_a_scene_waits_for_its_continuity_source_and_cuts_do_not(
    story_dir: Path,
) -> None:
    # arrival -> meeting -> climb -> lamp-room; climb -cut-> cliff-edge -> dawn
    run = plan_story(story_dir)
    assert run.pending == [
        "arrival", "meeting", "climb", "lamp-room", "cliff-edge", "dawn"
    ]  # fmt: skip
    assert run.next_ready() == "arrival"
    run.start("arrival")
    assert run.next_ready() == "cliff-edge"  # a cut: it waits for nobody
    run.start("cliff-edge")
    assert run.next_ready() is None  # the others continue a scene not done
    run.end("arrival", Outcome("done"))
    assert run.next_ready() == "meeting"
    run.start("meeting")
    run.end("cliff-edge", Outcome("failed", "no"))
    assert run.next_ready() == "dawn"  # its generation says what is missing
    assert run.after["climb"] == "meeting" and run.after["cliff-edge"] is None


def test_scenes_not_asked_for_are_not_waited_for(story_dir: Path) -> None:
    run = plan_story(story_dir, ["dawn", "meeting"])
    assert run.pending == ["meeting", "dawn"]  # story order
    assert run.next_ready() == "meeting"
    run.start("meeting")
    assert run.next_ready() == "dawn"


def test_stories_take_turns(story_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    save_story(example_story(), other)
    runs = [plan_story(story_dir, ["arrival", "cliff-edge"]), plan_story(other)]
    picked = next_scene(runs, 0)
    assert picked == (0, "arrival")
    runs[0].start("arrival")
    assert next_scene(runs, 1) == (1, "arrival")
    assert next_scene(runs, 0) == (0, "cliff-edge")


def test_a_stalled_queue_gives_its_first_scene() -> None:
    run = StoryProgress(Path("."), [])
    run.add("b", after="a")
    run.add("a", after="b")  # the story was edited into a loop meanwhile
    assert run.next_ready() == "b"


def test_a_budget_refusal_stops_the_story_and_drains_it(story_dir: Path) -> None:
    run = plan_story(story_dir)
    run.start("arrival")
    refused = outcome_of_error("arrival", BudgetExceededError("over the budget"))
    assert refused == Outcome("budget", "over the budget") and refused.failed
    run.end("arrival", refused)
    assert run.next_ready() is None
    assert run.drain() == ["meeting", "climb", "lamp-room", "cliff-edge", "dawn"]
    assert len(run.failed) == 6 and run.errors["dawn"] == "over the budget"
    assert run.stop is None and run.done


def test_the_first_matching_rule_wins_and_other_errors_stop_the_run() -> None:
    kinds = [rule.kind for rule in ERROR_RULES]
    assert set(kinds) == {"cancelled", "budget", "interrupted", "failed"}
    # BudgetExceededError is a StoryError: its own row comes first
    assert outcome_of_error("s", BudgetExceededError("x")).kind == "budget"
    unexpected = outcome_of_error("s", RuntimeError("boom"))
    assert unexpected == Outcome("failed", "scene 's' could not be generated: boom")
    with pytest.raises(KeyboardInterrupt):
        outcome_of_error("s", KeyboardInterrupt())


def test_candidates_on_ray_continue_after_the_seeds_the_scene_used(
    story_dir: Path,
) -> None:
    """The Ray path (`SceneRun`) seeds best of N as the local one does."""
    from engine.generate import generate_scene
    from engine.scheduler import SceneRun, StoryProgress
    from kg.store import load_story

    generate_scene(story_dir, "arrival", backend="animatic", force=True)
    seed = load_story(story_dir).scene("arrival").seed
    run = SceneRun(StoryProgress(story_dir, pending=[]), "arrival", wanted=2)
    prepared = [run.begin(backend="animatic"), run.begin(backend="animatic")]
    assert [p.tip.request.seed for p in prepared] == [seed + 1, seed + 2]
