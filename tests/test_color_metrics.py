"""Colour drift metrics (`scoring.color`) against the colour-science package.

Synthetic clips with a known lightness and hue shift: the metrics recover
the shift, and their CIEDE2000 agrees with colour-science's
(``colour.delta_E(..., method="CIE 2000")``) on the same working images.
Stated tolerances: CIELAB within 1e-6 of colour-science's sRGB to Lab,
CIEDE2000 within 1e-9 on any pair, the recovered lightness shift within
0.3 L*, the hue turn within 1 degree (8-bit rounding of the clips).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.color.testing import DriftingBackend, line_story
from engine.color.transfer import from_lab, to_lab
from engine.generate import generate_scene
from kg.store import load_story, save_story
from scoring.color import (
    ciede2000,
    color_difference,
    srgb_to_lab,
    working_lab,
)
from scoring.observer import Observer
from studio.cli import app


def _import_colour():  # noqa: ANN202 - the colour module
    """colour-science, without the stand-ins it leaves in ``sys.modules`` for
    an absent SciPy (other packages, diffusers among them, probe for SciPy
    and fail on a module without a spec)."""
    before = {m for m in sys.modules if m.split(".")[0] == "scipy"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # colour warns that SciPy is absent
        import colour
    for name in [m for m in sys.modules if m.split(".")[0] == "scipy"]:
        if name not in before:
            del sys.modules[name]
    return colour


colour = _import_colour()

# Sharma, Wu and Dalal (2005), Table 1: pairs and their CIEDE2000
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((22.7233, 20.0904, -46.694), (23.0331, 14.973, -42.5619), 2.0373),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
]


def _clip(frames: int = 6, size: int = 80) -> np.ndarray:
    rng = np.random.default_rng(7)
    # colour blocks around a warm tone (a dusk street): a hue worth naming
    warm = np.array([170, 120, 80])
    base = np.clip(warm + rng.integers(-40, 41, (size // 8, size // 8, 3)), 0, 255)
    image = np.kron(base.astype(np.uint8), np.ones((8, 8, 1), np.uint8))
    return np.repeat(image[None], frames, axis=0)


def _shifted(clip: np.ndarray, lightness: float, hue_deg: float) -> np.ndarray:
    lab = to_lab(clip)
    turn = np.radians(hue_deg)
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    lab[..., 1] = a * np.cos(turn) - b * np.sin(turn)
    lab[..., 2] = a * np.sin(turn) + b * np.cos(turn)
    lab[..., 0] += lightness
    return from_lab(lab)


@pytest.mark.parametrize(("lab1", "lab2", "expected"), SHARMA)
def test_ciede2000_matches_sharma_test_data(lab1, lab2, expected) -> None:  # noqa: ANN001
    assert float(ciede2000(np.array(lab1), np.array(lab2))) == pytest.approx(
        expected, abs=1e-4
    )


def test_lab_and_ciede2000_match_colour_science_on_random_colours() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (4000, 3), dtype=np.uint8)
    reference = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb / 255.0))
    lab = srgb_to_lab(rgb)
    assert np.abs(lab - reference).max() < 1e-6
    other = np.roll(lab, 1, axis=0)
    expected = colour.delta_E(lab, other, method="CIE 2000")
    assert np.abs(ciede2000(lab, other) - expected).max() < 1e-9


@pytest.mark.parametrize(("lightness", "hue"), [(3.0, 0.0), (-4.0, 12.0), (0.0, -8.0)])
def test_known_lightness_and_hue_shift_is_recovered(lightness: float, hue: float):
    clip = _clip()
    moved = _shifted(clip, lightness, hue)
    d = color_difference(clip, moved)
    # the same working images through colour-science's CIEDE2000
    expected = colour.delta_E(working_lab(clip), working_lab(moved), "CIE 2000")
    assert d.delta_e == pytest.approx(float(expected.mean()), abs=1e-9)
    assert d.delta_e > 1.0
    assert d.lightness == pytest.approx(lightness, abs=0.3)
    assert d.hue is not None and d.hue == pytest.approx(hue, abs=1.0)
    same = color_difference(clip, clip)
    assert same.delta_e == 0.0 and same.lightness == 0.0


def test_words_say_which_way_the_colour_went() -> None:
    clip = _clip()
    lab = to_lab(clip)
    lab[..., 0] += 4.0
    lab[..., 1:] *= 0.7  # less saturated
    shift = color_difference(clip, from_lab(lab)).shift()
    assert shift.words() == "brighter, less saturated"


def test_observer_scores_the_join_and_the_line(tmp_path: Path) -> None:
    story = line_story(3, size=96)
    save_story(story, tmp_path)
    observer = Observer(None, None, motion=False)
    for sid in ("s1", "s2", "s3"):
        generate_scene(tmp_path, sid, backend=DriftingBackend(), observer=observer)
    scenes = {s.id: s.selected.scores for s in load_story(tmp_path).scenes}
    first, third = scenes["s1"], scenes["s3"]
    assert first.join_color_shift is None
    assert "no previous take" in first.unavailable["join_color_shift"]
    assert first.line_color_drift == pytest.approx(0.0, abs=1e-9)  # its own anchor
    assert third.join_color_shift == pytest.approx(scenes["s2"].join_color_shift, 0.1)
    assert third.line_color_drift == pytest.approx(
        2 * scenes["s2"].line_color_drift, 0.1
    )
    assert third.color_shifts["line_color_drift"].lightness == pytest.approx(2.0, 0.2)
    assert third.color_shifts["line_color_drift"].words().startswith("brighter")


def test_recomputing_from_stored_takes_gives_the_stored_values(tmp_path: Path):
    """``storygraph score --force`` reads the clips back from disk (H.264):
    the values agree with those scored at generation within 0.25 ΔE00, half
    the metrics' best-of tolerance."""
    save_story(line_story(4, size=96), tmp_path)
    observer = Observer(None, None, motion=False)
    for i in range(1, 5):
        generate_scene(tmp_path, f"s{i}", backend=DriftingBackend(), observer=observer)
    stored = {s.id: s.selected.scores for s in load_story(tmp_path).scenes}
    done = CliRunner().invoke(app, ["score", str(tmp_path), "--force"])
    assert done.exit_code == 0, done.output
    again = {s.id: s.selected.scores for s in load_story(tmp_path).scenes}
    for sid, before in stored.items():
        after = again[sid]
        for name in ("join_color_shift", "line_color_drift"):
            a, b = getattr(before, name), getattr(after, name)
            assert (a is None) == (b is None), (sid, name)
            if a is not None:
                assert b == pytest.approx(a, abs=0.25), (sid, name)
