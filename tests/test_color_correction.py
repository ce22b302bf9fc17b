"""Colour correction where drift starts: the pixel path (`engine.color`).

A backend that drifts by a fixed CIELAB step per scene
(`engine.color.testing.DriftingBackend`) over a 20-scene line: without
correction ``line_color_drift`` grows linearly (a straight line through
the scenes, R^2 above 0.999); with correction toward the line's anchor it
stays under 2.5 ΔE00 at every scene. Undoing a correction restores the
backend's clip and frames byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from engine.best_of import choose
from engine.color.correct import CorrectionError, undo_correction
from engine.color.testing import DriftingBackend, base_frame, line_story
from engine.color.transfer import lab_stats, transfer
from engine.generate import generate_scene
from kg.paths import resolve_asset
from kg.schema import Scores, Settings
from kg.store import load_story, save_story
from scoring.observer import Observer
from studio.cli import app

BOUND = 2.5  # ΔE00: a corrected 20-scene line stays under this at every scene


def _run_line(folder: Path, scenes: int, correction: str, **color: object) -> list:
    story = line_story(scenes, correction=correction, size=96)
    for key, value in color.items():
        setattr(story.settings.color, key, value)
    save_story(story, folder)
    observer = Observer(None, None, motion=False)
    backend = DriftingBackend()
    for i in range(1, scenes + 1):
        take = generate_scene(folder, f"s{i}", backend=backend, observer=observer)
        assert take.status == "done", take.error
    return [s.selected for s in load_story(folder).scenes]


@pytest.mark.parametrize("method", ["reinhard", "mkl"])
def test_transfer_gives_the_frames_the_targets_statistics(method: str) -> None:
    frames = np.repeat(base_frame(64, 48)[None], 3, axis=0)
    target = lab_stats(np.clip(frames.astype(int) + [25, -10, 5], 0, 255))
    moved = transfer(frames, target, method=method)  # type: ignore[arg-type]
    got = lab_stats(moved)
    assert np.abs(got.mean - target.mean).max() < 1.0
    assert np.abs(got.std - target.std).max() < 1.0
    half = transfer(frames, target, method=method, strength=0.5)  # type: ignore[arg-type]
    middle = (lab_stats(frames).mean + target.mean) / 2
    assert np.abs(lab_stats(half).mean - middle).max() < 1.0
    assert np.array_equal(transfer(frames, target, strength=0.0), frames)
    with pytest.raises(ValueError, match="strength must be in"):
        transfer(frames, target, strength=1.5)


def test_a_drifting_line_grows_linearly_and_correction_holds_it(
    tmp_path: Path,
) -> None:
    plain = _run_line(tmp_path / "off", 20, "off")
    drift = np.array([t.scores.line_color_drift for t in plain])
    scene = np.arange(20)
    slope, intercept = np.polyfit(scene, drift, 1)
    fitted = slope * scene + intercept
    r2 = 1 - ((drift - fitted) ** 2).sum() / ((drift - drift.mean()) ** 2).sum()
    assert slope > 0.8 and r2 > 0.999, (slope, r2, drift.round(2).tolist())
    assert drift[-1] > 15.0
    assert all(t.color_correction is None for t in plain)

    held = _run_line(tmp_path / "line", 20, "line", strength=1.0)
    corrected = np.array([t.scores.line_color_drift for t in held])
    assert corrected.max() < BOUND, corrected.round(2).tolist()
    record = held[-1].color_correction
    assert record is not None and record.method == "reinhard"
    assert record.mode == "line" and record.anchor_take.scene_id == "s1"
    assert held[0].color_correction is None  # the anchor itself


def test_per_scene_correction_holds_each_join(tmp_path: Path) -> None:
    plain = _run_line(tmp_path / "off", 5, "off")
    held = _run_line(tmp_path / "scene", 5, "scene", strength=1.0, method="mkl")
    assert held[1].color_correction.anchor_take.scene_id == "s1"
    assert held[4].color_correction.anchor_take.scene_id == "s4"
    assert held[4].color_correction.method == "mkl"
    for before, after in zip(plain[1:], held[1:], strict=True):
        assert after.scores.join_color_shift < before.scores.join_color_shift / 2


def test_undo_restores_the_original_bytes(tmp_path: Path) -> None:
    _run_line(tmp_path, 3, "line", strength=1.0)
    take = load_story(tmp_path).scene("s2").selected
    record = take.color_correction
    assert record is not None
    pairs = {
        take.files.video: record.original_video,
        take.files.first_frame: record.original_first_frame,
        take.files.last_frame: record.original_last_frame,
    }
    original = {k: resolve_asset(tmp_path, v).read_bytes() for k, v in pairs.items()}
    corrected = {k: resolve_asset(tmp_path, k).read_bytes() for k in pairs}
    assert all(original[k] != corrected[k] for k in pairs)

    undone = undo_correction(tmp_path, "s2", take.index)
    assert undone.color_correction is None and undone.scores is None
    for rel, data in original.items():
        assert resolve_asset(tmp_path, rel).read_bytes() == data
    for rel in pairs.values():
        assert not resolve_asset(tmp_path, rel).exists()
    story = load_story(tmp_path)
    assert story.scene("s3").status == "stale"  # it continued the corrected frame
    with pytest.raises(CorrectionError, match="no colour correction to undo"):
        undo_correction(tmp_path, "s2", take.index)
    # the command line: the selected take of s3, then nothing left to undo
    cli = CliRunner()
    video = story.scene("s3").selected.color_correction.original_video
    kept = resolve_asset(tmp_path, video).read_bytes()
    done = cli.invoke(app, ["undo-color", str(tmp_path), "s3"])
    assert done.exit_code == 0 and "original colours restored" in done.output
    restored = load_story(tmp_path).scene("s3").selected.files.video
    assert resolve_asset(tmp_path, restored).read_bytes() == kept
    again = cli.invoke(app, ["undo-color", str(tmp_path), "s3"])
    assert again.exit_code == 2 and "no colour correction to undo" in again.output


def test_correction_settings_change_the_take_cache_key(tmp_path: Path) -> None:
    plain = _run_line(tmp_path / "off", 2, "off")
    held = _run_line(tmp_path / "line", 2, "line")
    assert plain[0].params.cache_key == held[0].params.cache_key  # the anchor
    assert plain[1].params.cache_key != held[1].params.cache_key


def test_best_of_ranks_on_join_color_shift() -> None:
    candidates = [
        (1, Scores(join_color_shift=3.2)),
        (2, Scores(join_color_shift=1.1)),
        (3, Scores(join_color_shift=1.3)),
    ]
    choice = choose(candidates, ["join_color_shift", "clip_score"])
    assert choice.best == 2 and choice.runner_up == 3
    assert Settings(best_of={"objective": ["join_color_shift"]}).best_of.objective


def test_bad_colour_settings_name_the_field() -> None:
    with pytest.raises(ValidationError, match="color.correction"):
        Settings(color={"correction": "sometimes"})
    with pytest.raises(ValidationError, match="color.threshold"):
        Settings(color={"threshold": 0})


def test_films_play_the_corrected_clips_and_datasets_choose(tmp_path: Path) -> None:
    from engine.dataset import ExportOptions, plan_export
    from engine.film import plan_film

    held = _run_line(tmp_path, 3, "line", strength=1.0)
    story = load_story(tmp_path)
    film = plan_film(story, tmp_path, "s3")
    assert [shot.video for shot in film.shots] == [t.files.video for t in held]
    options = dict(format="ltxv", pairing="none", bucket=None)
    corrected = plan_export(tmp_path, ExportOptions(**options))
    original = plan_export(tmp_path, ExportOptions(**options, original_colors=True))
    assert [r.target.source for r in corrected.rows] == [t.files.video for t in held]
    assert [r.target.source for r in original.rows] == [
        held[0].files.video,
        *(t.color_correction.original_video for t in held[1:]),
    ]
