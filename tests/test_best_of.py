"""Best of N: the objective picks the take it says on fixed scores, ties are
deterministic, the margin is right; candidates are made, scored, chosen and
recorded through the engine, the runner, the CLI and the studio."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.best_of import choose, generate_best_of
from engine.runner import JobRunner
from kg.example import example_story
from kg.metrics import metric
from kg.observation import Observation, ObservationRequest
from kg.schema import Scores
from kg.store import load_story, save_story
from studio.cli import app
from studio.testing import page_test, shown_text

OBJECTIVE = ["seam_dino_cosine", "seam_pixel_mae", "subject_consistency", "clip_score"]


def test_the_first_metric_decides_beyond_its_tolerance() -> None:
    c = choose(
        [
            (1, Scores(seam_dino_cosine=0.80, clip_score=0.40)),
            (2, Scores(seam_dino_cosine=0.90, clip_score=0.10)),
            (3, Scores(seam_dino_cosine=0.85, clip_score=0.30)),
        ],
        OBJECTIVE,
    )
    assert (c.best, c.runner_up, c.deciding_metric) == (2, 3, "seam_dino_cosine")
    assert c.margin == pytest.approx(0.05)


def test_within_tolerance_the_next_metric_decides() -> None:
    # 0.905 and 0.900 are within the cosine's 0.01: subject consistency decides
    c = choose(
        [
            (1, Scores(seam_dino_cosine=0.905, subject_consistency=0.90)),
            (2, Scores(seam_dino_cosine=0.900, subject_consistency=0.95)),
        ],
        OBJECTIVE,
    )
    assert (c.best, c.runner_up, c.deciding_metric) == (2, 1, "subject_consistency")
    assert c.margin == pytest.approx(0.05)


def test_lower_is_better_for_the_pixel_seam_and_metrics_nobody_has_are_skipped() -> (
    None
):
    c = choose(
        [(4, Scores(seam_pixel_mae=12.0)), (7, Scores(seam_pixel_mae=3.5))],
        OBJECTIVE,
    )
    assert (c.best, c.deciding_metric) == (7, "seam_pixel_mae")
    assert c.margin == pytest.approx(8.5)  # 8.5 pixel values better


def test_seam_flow_ranks_by_closeness_to_one() -> None:
    c = choose(
        [
            (1, Scores(seam_flow=2.0)),
            (2, Scores(seam_flow=0.9)),
            (3, Scores(seam_flow=1.3)),
        ],
        ["seam_flow"],
    )
    assert (c.best, c.runner_up) == (2, 3)


def test_ties_go_to_the_first_take_whatever_the_order_given() -> None:
    same = Scores(clip_score=0.3, subject_consistency=0.9)
    for order in ([(3, same), (1, same), (2, same)], [(2, same), (3, same), (1, same)]):
        c = choose(order, OBJECTIVE)
        assert (c.best, c.runner_up, c.deciding_metric, c.margin) == (1, 2, None, 0.0)


def test_a_candidate_without_a_value_falls_behind() -> None:
    c = choose(
        [(1, None), (2, Scores(clip_score=0.1)), (3, Scores(clip_score=None))],
        OBJECTIVE,
    )
    assert (c.best, c.runner_up, c.deciding_metric, c.margin) == (
        2,
        1,
        "clip_score",
        None,
    )


def test_bad_objectives_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown objective metrics"):
        choose([(1, Scores())], ["sharpness"])
    with pytest.raises(ValueError, match="no candidates"):
        choose([], OBJECTIVE)


class SeedObserver:
    """Scores a take by its seed: clip_score = the value given for that seed."""

    def __init__(self, by_seed: dict[int, float]) -> None:
        self.by_seed = by_seed
        self.seen: list[int] = []

    def observe(self, request: ObservationRequest) -> Observation:
        seed = (
            load_story(request.story_dir)
            .scene(request.scene_id)
            .take(request.take_index)
            .params.seed
        )
        self.seen.append(seed)
        return Observation(Scores(clip_score=self.by_seed.get(seed, 0.0)))

    def release(self) -> None:
        pass


@pytest.fixture
def story(tmp_path: Path) -> Path:
    folder = tmp_path / "story"
    st = example_story()
    st.settings.width, st.settings.height, st.settings.fps = 64, 64, 8
    st.settings.best_of.objective = ["clip_score"]
    save_story(st, folder)
    return folder


def test_candidates_are_made_scored_chosen_and_recorded(story: Path) -> None:
    seed = load_story(story).scene("arrival").seed
    observer = SeedObserver({seed: 0.20, seed + 1: 0.35, seed + 2: 0.31})
    take = generate_best_of(story, "arrival", 3, backend="animatic", observer=observer)
    assert observer.seen == [seed, seed + 1, seed + 2]
    scene = load_story(story).scene("arrival")
    assert [t.status for t in scene.takes] == ["done"] * 3
    assert take.index == scene.selected_take == 2
    choice = scene.selected.best_of
    assert choice.candidates == [1, 2, 3] and choice.objective == ["clip_score"]
    assert (choice.runner_up, choice.deciding_metric) == (3, "clip_score")
    assert choice.margin == pytest.approx(0.04)
    # only the chosen take carries the record; the user can still pick another
    assert [t.best_of is None for t in scene.takes] == [True, False, True]


def test_best_of_needs_scores_and_a_sane_count(story: Path) -> None:
    with pytest.raises(ValueError, match="needs an observer"):
        generate_best_of(story, "arrival", 3, backend="animatic")
    with pytest.raises(ValueError, match="candidates must be 2 to 16"):
        generate_best_of(
            story, "arrival", 1, backend="animatic", observer=SeedObserver({})
        )
    with pytest.raises(ValueError, match="no observer"):
        JobRunner(story).submit(["arrival"], candidates=2)


def test_the_runner_makes_candidates_in_story_order(story: Path) -> None:
    seed = load_story(story).scene("meeting").seed
    observer = SeedObserver({seed + 1: 0.9})  # meeting's second candidate wins
    runner = JobRunner(story, observer, background_encode=True)
    runner.submit(["arrival", "meeting"], backend="animatic", candidates=2)
    assert runner.wait(120)
    status = runner.status()
    assert status.finished == ("arrival", "meeting") and not status.failed
    st = load_story(story)
    assert [len(st.scene(s).takes) for s in ("arrival", "meeting")] == [2, 2]
    assert st.scene("meeting").selected_take == 2
    # the continuity of meeting's candidates comes from arrival's chosen take
    arrival = st.scene("arrival").selected_take
    for take in st.scene("meeting").takes:
        assert take.params.continuity_source.take == arrival


def test_cli_candidates(story: Path) -> None:
    cli = CliRunner()
    refused = cli.invoke(app, ["run", str(story), "--candidates", "3", "--no-score"])
    assert refused.exit_code == 2 and "drop --no-score" in refused.output
    ran = cli.invoke(
        app, ["run", str(story), "--candidates", "2", "--scenes", "arrival"]
    )
    assert ran.exit_code == 0, ran.output
    scene = load_story(story).scene("arrival")
    assert len(scene.takes) == 2 and scene.selected.best_of.candidates == [1, 2]


def test_studio_offers_best_of_n_and_explains_the_choice(
    story: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio import services

    seed = load_story(story).scene("arrival").seed
    generate_best_of(
        story, "arrival", 2, backend="animatic", observer=SeedObserver({seed: 0.5})
    )
    submitted = []
    monkeypatch.setattr(
        services,
        "submit_generation",
        lambda folder, ids, force=False, candidates=1: submitted.append(
            (ids, force, candidates)
        ),
    )
    at = page_test("storyboard", story).run()
    label = metric("clip_score").label  # the take card names metrics by label
    assert f"Best of 2 (takes 1, 2): chosen on {label}, 0.5 ahead of take 2." in (
        shown_text(at)
    )
    at.number_input(key="storyboard.candidates").set_value(4).run()
    at.button(key="storyboard.generate_best_of").click().run()
    assert submitted == [(["arrival"], True, 4)]


def test_settings_save_the_objective_in_order(story: Path) -> None:
    at = page_test("settings", story).run()
    at.multiselect(key="settings.best_of_objective").set_value(
        ["seam_flow", "subject_consistency"]
    )
    at.number_input(key="settings.best_of_candidates").set_value(5)
    at.button[0].click().run()
    assert not at.exception, at.exception
    best = load_story(story).settings.best_of
    assert best.objective == ["seam_flow", "subject_consistency"]
    assert best.candidates == 5
