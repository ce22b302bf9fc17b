"""Colour drift in the studio: Insights' curve per line and Screening's flags.

A drifting 5-scene line (`engine.color.testing`) with a threshold of 1 ΔE00:
every join is over it, so each is marked on the curve, listed with which way
the colour went, and flagged on the filmstrip.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.color.testing import DriftingBackend, line_story
from engine.generate import generate_scene
from kg.store import save_story
from scoring.observer import Observer
from studio import services
from studio.testing import page_test, shown_text
from studio.views import insights


def _drifted(outputs: Path) -> Path:
    folder = outputs / "drift"
    story = line_story(5, size=96)
    story.settings.color.threshold = 1.0
    save_story(story, folder)
    observer = Observer(None, None, motion=False)
    for i in range(1, 6):
        generate_scene(folder, f"s{i}", backend=DriftingBackend(), observer=observer)
    return folder


def test_insights_charts_the_drift_of_each_line(outputs: Path) -> None:
    folder = _drifted(outputs)
    view = services.story_view(folder)
    rows = insights.drift_rows(view)
    assert [r["position"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["slipped"] for r in rows] == [False, True, True, True, True]
    drift = [r["drift"] for r in rows]
    assert drift == sorted(drift) and drift[-1] > 4.0
    joins = insights.slipped_joins(view)
    assert len(joins) == 4
    assert joins[0]["join"] == "Scene 1 (s1) → Scene 2 (s2)"
    assert joins[0]["which way"].startswith("brighter")

    at = page_test("insights", folder).run()
    assert not at.exception, at.exception
    text = shown_text(at)
    assert "Colour drift along each line" in [h.value for h in at.subheader]
    assert "Joins over 1 ΔE00 (4)" in text
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    drift = [s for s in specs if "layer" in s and len(s["layer"]) == 2]
    curve, marks = drift[0]["layer"]
    assert curve["encoding"]["y"]["title"] == "line colour drift (ΔE00)"
    assert marks["mark"]["shape"] == "triangle-up"


def test_screening_flags_joins_over_the_threshold(outputs: Path) -> None:
    folder = _drifted(outputs)
    at = page_test("screening", folder).run()
    assert not at.exception, at.exception
    flags = [w.value for w in at.warning if "colour slipped at the join" in w.value]
    assert len(flags) == 4
    assert "brighter" in flags[0]
