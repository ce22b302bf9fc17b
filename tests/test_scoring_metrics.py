"""Metrics against hand-computed values, VBench edge cases, frame sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring import metrics
from scoring.sampling import sample_frames, sample_indices


def _angle(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def _vbench_reference(features: np.ndarray) -> float:
    """VBench's subject_consistency loop, transcribed (torch replaced by numpy)."""
    video_sim, cnt = 0.0, 0
    former = first = None
    for i, feat in enumerate(features):
        feat = feat / np.linalg.norm(feat)
        if i == 0:
            first = feat
        else:
            sim_pre = max(0.0, float(former @ feat))
            sim_fir = max(0.0, float(first @ feat))
            video_sim += (sim_pre + sim_fir) / 2
            cnt += 1
        former = feat
    return video_sim / cnt


# CLIPScore -----------------------------------------------------------------------


def test_clip_score_is_w_times_clamped_cosine_averaged_over_frames():
    images = [[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]]  # cosines 1, 0.6, -1 with [1, 0]
    assert metrics.clip_score(images, [1.0, 0.0]) == pytest.approx(2.5 * 1.6 / 3)


def test_clip_score_ignores_feature_scale_and_takes_a_custom_weight():
    images = np.array([[3.0, 4.0]])  # cosine 0.6 with [2, 0]
    assert metrics.clip_score(images, [2.0, 0.0]) == pytest.approx(1.5)
    assert metrics.clip_score(images, [2.0, 0.0], w=1.0) == pytest.approx(0.6)


def test_clip_score_of_only_negative_cosines_is_zero():
    assert metrics.clip_score([[-1.0, 0.2], [-0.5, -0.5]], [1.0, 0.0]) == 0.0


def test_clip_score_needs_a_frame():
    with pytest.raises(ValueError, match="at least one"):
        metrics.clip_score(np.zeros((0, 4)), np.ones(4))


# VBench consistency --------------------------------------------------------------


def test_vbench_consistency_on_known_angles():
    # 0, 60, 120 degrees: cos(prev) = 0.5, 0.5; cos(first) = 0.5, -0.5 -> 0
    feats = [_angle(0), _angle(60), _angle(120)]
    assert metrics.vbench_consistency(feats) == pytest.approx((0.5 + 0.25) / 2)


def test_vbench_consistency_identical_frames_is_one():
    feats = np.tile([[0.3, -2.0, 1.0]], (5, 1))
    assert metrics.vbench_consistency(feats) == pytest.approx(1.0)


def test_vbench_consistency_one_frame_is_undefined():
    assert metrics.vbench_consistency([[1.0, 2.0]]) is None


def test_vbench_consistency_clamps_negative_cosines():
    assert metrics.vbench_consistency([[1.0, 0.0], [-1.0, 0.0]]) == 0.0
    # frame 2 is opposite to frame 1 and equal to frame 0: (0 + 1) / 2
    assert metrics.vbench_consistency(
        [[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]]
    ) == pytest.approx((0.0 + 0.5) / 2)


def test_vbench_consistency_matches_the_vbench_loop():
    feats = np.random.default_rng(3).normal(size=(16, 24))
    assert metrics.vbench_consistency(feats) == pytest.approx(_vbench_reference(feats))


def test_subject_and_background_are_the_same_formula():
    feats = np.random.default_rng(4).normal(size=(6, 8))
    expected = metrics.vbench_consistency(feats)
    assert metrics.subject_consistency(feats) == expected
    assert metrics.background_consistency(feats) == expected


# Temporal flicker ----------------------------------------------------------------


def test_temporal_flicker_on_known_frame_differences():
    frames = np.zeros((3, 4, 5, 3), np.uint8)
    frames[1] = 10
    frames[2] = 30  # differences 10 and 20
    assert metrics.temporal_flicker(frames) == pytest.approx((255 - 15) / 255)


def test_temporal_flicker_has_no_uint8_wraparound():
    frames = np.zeros((2, 2, 2, 3), np.uint8)
    frames[0] = 200
    frames[1] = 10  # |10 - 200| = 190, not (10 - 200) % 256 = 66
    assert metrics.temporal_flicker(frames) == pytest.approx((255 - 190) / 255)


def test_temporal_flicker_partial_change():
    frames = np.zeros((2, 2, 2, 3), np.uint8)
    frames[1, 0, 0, 0] = 255  # one value of 12 changes by 255
    assert metrics.temporal_flicker(frames) == pytest.approx((255 - 255 / 12) / 255)


def test_temporal_flicker_edge_cases():
    still = np.full((4, 3, 3, 3), 77, np.uint8)
    assert metrics.temporal_flicker(still) == 1.0
    assert metrics.temporal_flicker(still[:1]) is None
    with pytest.raises(ValueError, match="uint8"):
        metrics.temporal_flicker(still.astype(np.float32))


# Seam, characters ----------------------------------------------------------------


def test_seam_metrics():
    a = np.zeros((2, 3, 3), np.uint8)
    b = np.zeros((2, 3, 3), np.uint8)
    b[0] = 60  # half the values differ by 60
    assert metrics.seam_pixel_mae(a, b) == pytest.approx(30.0)
    assert metrics.seam_pixel_mae(b, a) == pytest.approx(30.0)
    with pytest.raises(ValueError, match="resize"):
        metrics.seam_pixel_mae(a, np.zeros((3, 3, 3), np.uint8))
    # the seam cosine is not clamped: a reversal shows as -1
    assert metrics.seam_cosine([1.0, 0.0], [-2.0, 0.0]) == pytest.approx(-1.0)
    assert metrics.seam_cosine(_angle(0), _angle(60)) == pytest.approx(0.5)


def test_character_consistency_best_reference_per_frame():
    frames = [_angle(0), _angle(60), _angle(180)]
    refs = [_angle(0), _angle(90)]
    # best per frame: 1, max(0.5, cos 30) = 0.866, max(-1, 0) -> 0
    expected = (1.0 + math.cos(math.radians(30)) + 0.0) / 3
    assert metrics.character_consistency(frames, refs) == pytest.approx(expected)
    assert metrics.character_consistency(frames, np.zeros((0, 2))) is None


def test_cosine_matrix_shape_and_values():
    m = metrics.cosine_matrix(np.eye(3), np.eye(3)[:2] * 5)
    assert m.shape == (3, 2)
    np.testing.assert_allclose(m, np.eye(3)[:, :2])


# Sampling ------------------------------------------------------------------------


def test_sixteen_uniform_samples_with_first_and_last():
    idx = sample_indices(121)
    assert len(idx) == 16
    assert idx[0] == 0 and idx[-1] == 120
    np.testing.assert_allclose(np.diff(idx), 8, atol=1)


def test_short_takes_use_every_frame():
    assert sample_indices(1).tolist() == [0]
    assert sample_indices(16).tolist() == list(range(16))


def test_sample_frames_returns_the_indexed_frames():
    frames = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1).repeat(3, -1)
    idx, sampled = sample_frames(frames, 4)
    assert idx.tolist() == [0, 13, 26, 39]
    assert sampled[:, 0, 0, 0].tolist() == [0, 13, 26, 39]


@pytest.mark.parametrize("bad", [(0, 16), (5, 0)])
def test_sampling_rejects_bad_counts(bad):
    with pytest.raises(ValueError):
        sample_indices(*bad)


@given(st.integers(1, 3000), st.integers(1, 64))
def test_samples_are_distinct_sorted_and_span_the_take(n, count):
    idx = sample_indices(n, count)
    assert len(idx) == min(n, count)
    assert len(set(idx.tolist())) == len(idx)
    assert (np.diff(idx) > 0).all()
    assert idx[0] == 0
    if count > 1 or n == 1:
        assert idx[-1] == n - 1
