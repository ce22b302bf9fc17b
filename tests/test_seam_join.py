"""Seam scores measure the join the film shows, not the frames it skips.

A take's first ``overlap_frames`` repeat its predecessor and the film skips
them (`engine.film`), so ``seam_pixel_mae`` and ``seam_dino_cosine`` compare
the previous take's last frame with frame ``overlap_frames``: in the observer
and when ``storygraph score --force`` recomputes stored scores.
"""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from kg.example import example_story
from kg.observation import ObservationRequest
from kg.schema import GenerationParams, Scores, Story, Take, TakeFiles, TakeRef
from kg.store import load_story, save_story
from scoring import metrics
from scoring.observer import Observer
from scoring.recording import NO_NEW_FRAME, join_frame_index
from scoring.testing import tiny_clip, tiny_dino
from studio.cli import score as scoring_cli

H, W, N = 48, 64, 12


@pytest.fixture(scope="module")
def encoders():
    return tiny_clip(device="cpu"), tiny_dino(device="cpu")


def _params(source: TakeRef | None = None) -> GenerationParams:
    return GenerationParams(
        backend="animatic",
        prompt="the keeper climbs the stairs",
        seed=0,
        steps=1,
        guidance=1.0,
        width=W,
        height=H,
        num_frames=N,
        fps=8,
        continuity_source=source,
    )


def _clips() -> tuple[np.ndarray, np.ndarray]:
    """The predecessor (grey 60) and a take whose first ``overlap`` frames
    repeat its last frame while the frames the film shows are grey 140."""
    previous = np.full((N, H, W, 3), 60, np.uint8)
    take = np.full((N, H, W, 3), 140, np.uint8)
    return previous, take


def _request(
    story_dir, story: Story, frames: np.ndarray, previous_last: np.ndarray, overlap: int
) -> ObservationRequest:
    scene = story.scenes[1]
    take = Take(
        index=1,
        params=_params(TakeRef(scene_id=story.scenes[0].id, take=1)),
        files=TakeFiles(video=f"scenes/{scene.id}/take-1.mp4"),
        overlap_frames=overlap,
    )
    return ObservationRequest.of_take(
        story_dir=story_dir, story=story, scene_id=scene.id, take=take,
        frames=frames, previous_last_frame=previous_last,
    )  # fmt: skip


@pytest.mark.parametrize("overlap", [1, 5])
def test_frame_zero_repeats_the_predecessor_and_the_score_is_the_joins(
    encoders, tmp_path, overlap
):
    clip, dino = encoders
    previous, frames = _clips()
    frames[:overlap] = previous[-1]  # the repeated frames the film skips
    story = example_story()
    request = _request(tmp_path, story, frames, previous[-1], overlap)
    scores = Observer(clip, dino).observe(request).scores

    # frame 0 equals the predecessor: the old rule scored a perfect seam
    assert metrics.seam_pixel_mae(previous[-1], frames[0]) == 0.0
    # the stored score is the join the film shows: 60 against 140
    assert scores.seam_pixel_mae == pytest.approx(80.0)
    shown = frames[overlap]
    pair = dino.encode_images(np.stack([previous[-1], shown])).numpy()
    assert scores.seam_dino_cosine == pytest.approx(
        metrics.seam_cosine(pair[0], pair[1])
    )
    same = dino.encode_images(np.stack([previous[-1], frames[0]])).numpy()
    assert metrics.seam_cosine(same[0], same[1]) == pytest.approx(1.0)


def test_a_take_of_repeated_frames_only_has_no_seam_score(encoders, tmp_path):
    clip, dino = encoders
    previous, frames = _clips()
    request = _request(tmp_path, example_story(), frames[:3], previous[-1], overlap=3)
    scores = Observer(clip, dino).observe(request).scores
    assert scores.seam_pixel_mae is None and scores.seam_dino_cosine is None
    assert scores.unavailable["seam_pixel_mae"] == NO_NEW_FRAME
    assert scores.unavailable["seam_dino_cosine"] == NO_NEW_FRAME


def test_join_frame_index_refuses_a_negative_overlap():
    with pytest.raises(ValueError, match="overlap_frames must be 0 or more"):
        join_frame_index(10, -1)


def _write(story_dir, rel: str, frames: np.ndarray) -> TakeFiles:
    path = story_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, frames, fps=8, codec="libx264")
    return TakeFiles(video=rel)


def test_score_force_recomputes_stored_seam_scores_on_the_join(
    encoders, tmp_path, monkeypatch
):
    clip, dino = encoders
    monkeypatch.setattr(
        Observer, "default", classmethod(lambda cls, **kw: cls(clip, dino))
    )
    story = example_story()
    first, second = story.scenes[0], story.scenes[1]
    previous, frames = _clips()
    frames[:1] = previous[-1]
    first.takes = [
        Take(
            index=1,
            params=_params(),
            files=_write(tmp_path, f"scenes/{first.id}/take-1.mp4", previous),
        )
    ]
    first.selected_take = 1
    # a take scored by the old rule (frame 0 against the predecessor): 0.0
    old = Scores(seam_pixel_mae=0.0, scored_at="2026-01-01T00:00:00Z")
    second.takes = [
        Take(
            index=1,
            params=_params(TakeRef(scene_id=first.id, take=1)),
            files=_write(tmp_path, f"scenes/{second.id}/take-1.mp4", frames),
            overlap_frames=1,
            scores=old,
        )
    ]
    second.selected_take = 1
    save_story(story, tmp_path)

    app = typer.Typer()
    app.callback()(lambda: None)
    scoring_cli.register(app)
    runner = CliRunner()
    assert runner.invoke(app, ["score", str(tmp_path)]).exit_code == 0
    kept = load_story(tmp_path).scene(second.id).take(1).scores
    assert kept.seam_pixel_mae == 0.0  # scored takes are left alone...
    forced = runner.invoke(app, ["score", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    again = load_story(tmp_path).scene(second.id).take(1).scores
    # ...until --force recomputes them on the join (H.264 keeps flat greys
    # within a step or two)
    assert again.seam_pixel_mae == pytest.approx(80.0, abs=3.0)
    assert again.seam_dino_cosine is not None
