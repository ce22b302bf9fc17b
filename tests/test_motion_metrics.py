"""Optical-flow motion metrics on synthetic clips with known motion: a still,
a constant pan of k pixels per frame, and a hard jump at a join; through the
observer; and recomputed from stored takes by ``storygraph score``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from kg.observation import ObservationRequest
from kg.store import load_story
from scoring import motion
from scoring.observer import Observer
from studio.cli import app
from tests.conftest import generate_small_example

H, W = 256, 384  # short side 256: flow pixels are clip pixels


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (H + 400, W + 800), dtype=np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), 3)
    return cv2.normalize(blurred, None, 0, 255, cv2.NORM_MINMAX)


def view(texture: np.ndarray, x: int, y: int = 0) -> np.ndarray:
    return np.repeat(texture[y : y + H, x : x + W, None], 3, axis=2)


def pan(texture: np.ndarray, k: int, n: int, start: int = 0) -> np.ndarray:
    return np.stack([view(texture, start + i * k) for i in range(n)])


def test_a_still_clip_is_static_and_not_dynamic(texture: np.ndarray) -> None:
    clip = np.stack([view(texture, 0)] * 17)
    pairs = motion.pair_motion(clip, 8)
    assert len(pairs) == 16 and max(pairs) < 0.05
    assert motion.is_static(pairs) is True
    assert motion.dynamic_degree(pairs, 17, 8) == 0.0


@pytest.mark.parametrize(("k", "dynamic"), [(2, 0.0), (4, 0.0), (8, 1.0)])
def test_a_pan_moves_k_pixels_per_frame(
    texture: np.ndarray, k: int, dynamic: float
) -> None:
    pairs = motion.pair_motion(pan(texture, k, 17), 8)
    assert motion.motion(pairs) == pytest.approx(k, abs=0.6)
    assert motion.is_static(pairs) is False
    # VBench: dynamic when enough pairs move more than 6 px at 8 fps
    assert motion.dynamic_degree(pairs, 17, 8) == dynamic


def test_sampling_at_24_fps_takes_every_third_frame(texture: np.ndarray) -> None:
    pairs = motion.pair_motion(pan(texture, 2, 25), 24)
    assert len(pairs) == 8  # frames 0, 3, ..., 24
    assert motion.motion(pairs) == pytest.approx(6, abs=0.6)
    # at 24 fps the threshold stays 6 px per sampled pair: 6 px is borderline,
    # a 3 px pan (9 px per pair) is dynamic
    fast = motion.pair_motion(pan(texture, 3, 25), 24)
    assert motion.dynamic_degree(fast, 9, 24) == 1.0


def test_seam_flow_is_about_one_when_the_cut_flows_and_large_when_it_jumps(
    texture: np.ndarray,
) -> None:
    clip = pan(texture, 4, 8)
    assert motion.seam_flow(clip[2:4], clip[4:6]) == pytest.approx(1.0, abs=0.1)
    still = np.stack([view(texture, 0)] * 4)
    assert motion.seam_flow(still[:2], still[2:]) == pytest.approx(1.0, abs=0.05)
    jump = pan(texture, 4, 2, start=12 + 40)  # 40 px further than the pan goes
    # DIS sees about half of a 40 px jump (the module docstring says why)
    assert motion.seam_flow(clip[2:4], jump) > 3
    assert motion.seam_flow(clip[3:4], clip[4:6]) is None


def _request(frames: np.ndarray, tail: np.ndarray | None, overlap: int = 0):  # noqa: ANN202
    return ObservationRequest(
        story_dir=Path("."),
        scene_id="s",
        take_index=1,
        prompt="",
        frames=frames,
        previous_last_frame=None if tail is None else tail[-1],
        character_ids=(),
        references={},
        embeddings_path="scenes/s/take-1.embeddings.safetensors",
        fps=8,
        overlap_frames=overlap,
        previous_tail=tail,
    )


def test_the_observer_scores_motion_and_skips_repeated_frames(
    texture: np.ndarray,
) -> None:
    observer = Observer(None, None)
    clip = pan(texture, 8, 12)
    # the take repeats the previous take's last frame (overlap 1), then pans on
    tail = clip[:2]
    take = np.concatenate([clip[1:2], clip[2:]])
    s, _, _ = observer.score(_request(take, tail, overlap=1))
    assert s.dynamic_degree == 1.0 and s.static is False
    assert s.motion == pytest.approx(8, abs=1.0)
    assert s.seam_flow == pytest.approx(1.0, abs=0.1)
    # the same take read as if nothing repeated: the join looks frozen
    frozen, _, _ = observer.score(_request(take, tail, overlap=0))
    assert frozen.seam_flow < 0.5
    alone, _, _ = observer.score(_request(take, None))
    assert (
        alone.seam_flow is None and "no previous take" in alone.unavailable["seam_flow"]
    )
    off, _, _ = Observer(None, None, motion=False).score(_request(take, tail, 1))
    assert off.motion is None and off.seam_flow is None


def test_storygraph_score_recomputes_motion_from_stored_takes(tmp_path: Path) -> None:
    folder = generate_small_example(tmp_path / "story")
    done = CliRunner().invoke(app, ["score", str(folder), "--force"])
    assert done.exit_code == 0, done.output
    story = load_story(folder)
    for scene in story.scenes:
        scores = scene.selected.scores
        assert scores is not None and scores.motion is not None, scene.id
        assert scores.static is not None and scores.dynamic_degree in (0.0, 1.0)
        continuous = scene.selected.params.continuity_source is not None
        assert (scores.seam_flow is not None) == continuous, scene.id


def test_insights_charts_motion_and_lists_frozen_clips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kg.store import update_story
    from studio import services
    from studio.testing import page_test, shown_text

    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    folder = generate_small_example(tmp_path / "story")

    def scores(story) -> None:  # noqa: ANN001
        from kg.schema import Scores

        for i, scene in enumerate(story.scenes):
            scene.selected.scores = Scores(
                motion=0.1 if scene.id == "climb" else 3.0 + i,
                static=scene.id == "climb",
                dynamic_degree=0.0,
                seam_flow=None if scene.id == "arrival" else 1.0 + i / 10,
            )

    update_story(folder, scores)
    at = page_test("insights", folder).run()
    assert not at.exception
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("motion (px)" in s for s in specs)
    assert any("seam flow (ratio)" in s for s in specs)
    assert "Frozen clips (1)" in shown_text(at)
    frozen = [df.value for df in at.dataframe if "motion (px)" in df.value.columns]
    assert list(frozen[0]["scene"]) == ["The climb (climb)"]
