"""``storygraph score`` on a story with synthetic takes (small mp4s)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import scoring.encoders as enc
import scoring.held
from kg.example import example_story
from kg.schema import GenerationParams, Take, TakeFiles, TakeRef
from kg.store import load_story, save_story
from scoring.encoders import FETCH_COMMAND
from scoring.observer import Observer
from scoring.testing import tiny_clip, tiny_dino
from studio.cli import score as scoring_cli

runner = CliRunner()


@pytest.fixture(scope="module")
def encoders_pair():
    return tiny_clip(device="cpu"), tiny_dino(device="cpu")


@pytest.fixture
def app():
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root (keeps 'score' a subcommand)."""

    scoring_cli.register(app)
    return app


def _params(prompt: str, source: TakeRef | None = None) -> GenerationParams:
    return GenerationParams(
        backend="animatic",
        prompt=prompt,
        seed=0,
        steps=1,
        guidance=1.0,
        width=64,
        height=48,
        num_frames=12,
        fps=8,
        continuity_source=source,
    )


def _write_take(story_dir, scene_id: str, index: int, shade: int) -> TakeFiles:
    frames = np.full((12, 48, 64, 3), shade, np.uint8)
    frames[:, :, : 8 + index * 4] = 250  # a bar that differs per take
    rel = f"scenes/{scene_id}/take-{index}.mp4"
    (story_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(story_dir / rel, frames, fps=8, codec="libx264")
    return TakeFiles(video=rel)


@pytest.fixture
def story_dir(tmp_path):
    story = example_story()
    first, second = story.scenes[0], story.scenes[1]
    assert any(
        e.source == first.id and e.target == second.id and e.transition == "continuous"
        for e in story.edges
    )
    first.takes = [
        Take(
            index=i,
            params=_params("a harbour"),
            files=_write_take(tmp_path, first.id, i, 60),
        )
        for i in (1, 2)
    ]
    first.selected_take = 2
    second.takes = [
        Take(
            index=1,
            params=_params("a lighthouse", TakeRef(scene_id=first.id, take=2)),
            files=_write_take(tmp_path, second.id, 1, 120),
        )
    ]
    second.selected_take = 1
    save_story(story, tmp_path)
    return tmp_path


@pytest.fixture
def tiny_default(monkeypatch, encoders_pair):
    clip, dino = encoders_pair
    monkeypatch.setattr(
        Observer, "default", classmethod(lambda cls, **kw: cls(clip, dino))
    )


def _scored(story_dir):
    story = load_story(story_dir)
    return {
        (s.id, t.index): t
        for s in story.scenes
        for t in s.takes
        if t.scores is not None
    }


def test_score_selected_takes_writes_scores_and_embeddings(
    app, story_dir, tiny_default
):
    result = runner.invoke(app, ["score", str(story_dir)])
    assert result.exit_code == 0, result.output
    scored = _scored(story_dir)
    story = load_story(story_dir)
    first, second = story.scenes[0].id, story.scenes[1].id
    assert set(scored) == {(first, 2), (second, 1)}
    for take in scored.values():
        assert take.scores.clip_score is not None
        assert take.scores.temporal_flicker is not None
        assert (story_dir / take.files.embeddings).is_file()
    # the second scene continues from take 2 of the first: it has a seam
    seam = scored[(second, 1)].scores
    assert seam.seam_dino_cosine is not None
    # bars 16 and 12 wide at 250 over 60 and 120: (4 * 130 + 48 * 60) / 64
    assert seam.seam_pixel_mae == pytest.approx(53.1, abs=2.0)
    assert scored[(first, 2)].scores.seam_pixel_mae is None
    assert "scores" in result.output


def test_scored_takes_are_skipped_unless_forced(app, story_dir, tiny_default):
    assert runner.invoke(app, ["score", str(story_dir)]).exit_code == 0
    before = {k: t.scores.scored_at for k, t in _scored(story_dir).items()}
    again = runner.invoke(app, ["score", str(story_dir)])
    assert again.exit_code == 0 and "Nothing to score" in again.output
    forced = runner.invoke(app, ["score", str(story_dir), "--takes", "all", "--force"])
    assert forced.exit_code == 0, forced.output
    after = _scored(story_dir)
    assert len(after) == 3  # every take, the unselected one included
    assert set(before) < set(after)


def test_score_without_weights_reports_why(app, story_dir, monkeypatch):
    monkeypatch.setattr(scoring.held, "_loaded", {})
    monkeypatch.setattr(enc, "DEFAULT_CLIP", str(story_dir / "no-clip"))
    monkeypatch.setattr(enc, "DEFAULT_DINO", str(story_dir / "no-dino"))
    monkeypatch.delenv(enc.CLIP_ENV, raising=False)
    monkeypatch.delenv(enc.DINO_ENV, raising=False)
    result = runner.invoke(app, ["score", str(story_dir)])
    assert result.exit_code == 0, result.output
    assert FETCH_COMMAND in result.output.replace("\n", "")
    for take in _scored(story_dir).values():
        assert take.scores.clip_score is None
        assert take.scores.temporal_flicker is not None
        assert take.files.embeddings is None


def test_missing_clip_fails_the_command_but_scores_the_rest(
    app, story_dir, tiny_default
):
    story = load_story(story_dir)
    (story_dir / story.scenes[1].selected.files.video).unlink()
    result = runner.invoke(app, ["score", str(story_dir)])
    assert result.exit_code == 1
    assert "cannot read" in result.output
    assert set(_scored(story_dir)) == {(story.scenes[0].id, 2)}


def test_score_is_a_storygraph_command():
    from studio.cli import app as storygraph

    names = {c.name or c.callback.__name__ for c in storygraph.registered_commands}
    assert "score" in names


def test_show_lists_the_scores(app, story_dir, tiny_default, monkeypatch):
    from kg.metrics import headline_metrics
    from studio.cli import output
    from studio.cli import story as story_cli

    story_cli.register(app)
    assert runner.invoke(app, ["score", str(story_dir)]).exit_code == 0
    monkeypatch.setattr(output.console, "width", 200)  # labels on one line
    shown = runner.invoke(app, ["show", str(story_dir), "--width", "20"])
    assert shown.exit_code == 0, shown.output
    # the headline metrics of the table, under their short labels
    for m in headline_metrics():
        assert m.short in shown.output, m.name
