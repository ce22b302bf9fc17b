"""The metric table (`kg.metrics`) is the one home of a metric.

The central test adds a row to a copy of the table and checks, in a fresh
interpreter that imports that copy, that the new metric reaches every reader
without another file changing: the schema's `Scores` and `ObjectiveMetric`
(best-of settings and choices), best of N, the observer's encoder needs,
Insights, take cards, Screening and the CLI (`storygraph score`'s summary,
`storygraph show`). A reader that lists metrics itself fails it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import get_args

import pytest

from kg.metrics import METRICS, Metric, metric, metric_names, needing, table_problems
from kg.schema import METRIC_NAMES, BestOfSettings, ObjectiveMetric, Scores

ROOT = Path(__file__).resolve().parents[1]

# Appended to the copied kg/metrics.py: one row, nothing else.
NEW_ROW = """

METRICS = (
    *METRICS,
    Metric(
        name="sharpness",
        label="edge sharpness",
        short="sharp",
        low=0.0,
        high=None,
        unit="grey levels",
        better="lower",
        tolerance=0.5,
        needs=("clip",),
        definition="A metric the metric-table test adds to the table.",
        headline=True,
    ),
)
"""

# Runs in the fresh interpreter, the copy of kg first on sys.path.
READERS = """
import sys

sys.path.insert(0, sys.argv[1])

import kg.metrics

assert kg.metrics.__file__.startswith(sys.argv[1]), kg.metrics.__file__
assert kg.metrics.metric_names()[-1] == "sharpness"

from typing import get_args

from kg.schema import BestOfChoice, BestOfSettings, ObjectiveMetric, Scores, Take

# the schema: a Scores field and an objective metric
assert Scores.model_fields["sharpness"].default is None
assert Scores.model_validate_json('{"sharpness": 1.5}').sharpness == 1.5
assert "sharpness" in get_args(ObjectiveMetric)
every = list(kg.metrics.metric_names())
assert len(every) == 12  # the 11 rows of the table and the new one
assert BestOfSettings(objective=every).objective[-1] == "sharpness"
BestOfChoice(candidates=[1, 2], objective=every, deciding_metric="sharpness")

# best of N: lower is better, in its units
from engine.best_of import choose

c = choose([(1, Scores(sharpness=3.0)), (2, Scores(sharpness=1.0))], ["sharpness"])
assert (c.best, c.deciding_metric, c.margin) == (2, "sharpness", 2.0), c
tied = choose([(1, Scores(sharpness=1.3)), (2, Scores(sharpness=1.0))], ["sharpness"])
assert (tied.best, tied.deciding_metric) == (1, None), tied  # within 0.5

# the observer: a CLIP metric without a CLIP encoder says why
from pathlib import Path

import numpy as np

from kg.observation import ObservationRequest
from scoring.observer import CLIP_METRICS, Observer

assert "sharpness" in CLIP_METRICS
request = ObservationRequest(
    story_dir=Path("."),
    scene_id="s",
    take_index=1,
    prompt="p",
    frames=np.zeros((2, 8, 8, 3), np.uint8),
    previous_last_frame=None,
    character_ids=(),
    references={},
    embeddings_path="scenes/s/take-1.embeddings.safetensors",
)
scores, _, _ = Observer(None, None, motion=False).score(request)
assert "CLIP" in scores.unavailable["sharpness"], scores.unavailable

# a story whose selected takes have the new metric
from studio import services

folder = services.create_story("lighthouse", "", example=True)
params = dict(
    backend="animatic", prompt="p", seed=1, steps=1, guidance=1.0,
    width=64, height=64, num_frames=9, fps=8,
)


def scored(story):
    for i, sid in enumerate(("arrival", "meeting")):
        scene = story.scene(sid)
        scene.takes = [
            Take(index=1, params=params, scores=Scores(sharpness=1.5 + i))
        ]
        scene.selected_take, scene.status = 1, "done"


services.edit_story(folder, scored)
view = services.story_view(folder)
take = view.scene("arrival").selected

# Insights: its rows, its chart and the definitions on the page
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from studio.testing import page_test, shown_text
from studio.views import insights

rows, _ = insights.score_rows(view)
assert {r["value"] for r in rows if r["metric"] == "sharpness"} == {1.5, 2.5}
at = page_test("insights", folder).run()
assert not at.exception, at.exception
charted = set()
for chart in at.get("vega_lite_chart"):
    for dataset in chart.proto.datasets:
        df = convert_arrow_bytes_to_pandas_df(dataset.data.data)
        if "label" in df:
            charted |= set(df["label"])
assert "edge sharpness" in charted, charted
assert "the metric-table test adds" in shown_text(at)

# take cards and Screening's filmstrip
from studio.components import takes
from studio.views import screening

card, _ = takes.score_rows(take)
assert {"metric": "sharp", "value": "1.500"} in card, card
assert "sharp 1.50" in screening._score_text(take)

# the CLI: storygraph score's summary and storygraph show
from rich.console import Console

from studio.cli import score as score_cli
from studio.cli import story as story_cli

console = Console(width=300, record=True)
console.print(score_cli._summary([("arrival", 1, take.scores)]))
summary = console.export_text()
assert "sharp" in summary and "1.500" in summary, summary
assert "sharp 1.50" in story_cli._score_cell(view.scene("arrival"))
print("every reader has it")
"""


def test_a_row_added_to_the_table_reaches_every_reader(tmp_path: Path) -> None:
    copy = tmp_path / "with-row"
    shutil.copytree(
        ROOT / "kg", copy / "kg", ignore=shutil.ignore_patterns("__pycache__")
    )
    with (copy / "kg" / "metrics.py").open("a", encoding="utf-8") as table:
        table.write(NEW_ROW)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    script = tmp_path / "readers.py"
    script.write_text(textwrap.dedent(READERS), encoding="utf-8")
    from studio.services import OUTPUTS_ENV

    env = {**os.environ, OUTPUTS_ENV: str(outputs), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(script), str(copy)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "every reader has it" in done.stdout


def test_a_metric_named_like_another_scores_field_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "clash"
    shutil.copytree(
        ROOT / "kg", copy / "kg", ignore=shutil.ignore_patterns("__pycache__")
    )
    with (copy / "kg" / "metrics.py").open("a", encoding="utf-8") as table:
        table.write(NEW_ROW.replace('"sharpness"', '"static"'))
    done = subprocess.run(
        [sys.executable, "-c", "import kg.schema"],
        capture_output=True,
        text=True,
        cwd=copy,
        timeout=120,
    )
    assert done.returncode != 0
    assert "static is already a field of Scores" in done.stderr


def test_the_schema_is_built_from_the_table() -> None:
    fields = Scores.model_fields
    for m in METRICS:
        assert fields[m.name].annotation == float | None, m.name
        assert fields[m.name].default is None, m.name
    assert METRIC_NAMES == metric_names() == get_args(ObjectiveMetric)
    # the other fields of Scores stay what they were
    assert [f for f in fields if f not in METRIC_NAMES] == [
        "static",
        "character_consistency",
        "unavailable",
        "encoders",
        "scored_at",
        "color_shifts",
    ]
    # an objective may name every metric once, and only metrics
    assert BestOfSettings(objective=list(METRIC_NAMES)).objective == list(METRIC_NAMES)
    default = BestOfSettings().objective
    assert set(default) <= set(METRIC_NAMES)


def test_stored_scores_read_as_before() -> None:
    stored = (
        '{"clip_score": 0.31, "subject_consistency": 0.95, "seam_pixel_mae": 12.5,'
        ' "motion": 7.0, "static": false, "character_consistency": {"mara": 0.8},'
        ' "unavailable": {"seam_flow": "no previous take"}, "encoders": {},'
        ' "scored_at": "2026-01-01T00:00:00Z"}'
    )
    s = Scores.model_validate_json(stored)
    assert (s.clip_score, s.seam_pixel_mae, s.static) == (0.31, 12.5, False)
    assert s.seam_flow is None and s.character_consistency == {"mara": 0.8}
    with pytest.raises(ValueError, match="sharpness"):
        Scores.model_validate_json('{"sharpness": 1.0}')


def test_every_reader_uses_the_tables_facts() -> None:
    from engine.best_of import goal
    from scoring.observer import CLIP_METRICS, DINO_FRAME_METRICS, LABELS

    for m in METRICS:
        g = goal(m.name)
        assert (g.tolerance, g.better) == (m.tolerance, m.better)
    assert tuple(m.name for m in needing("clip")) == CLIP_METRICS
    assert tuple(m.name for m in needing("dino")) == DINO_FRAME_METRICS
    assert set(LABELS.values()) == {"CLIP", "DINOv2"}


def test_one_label_and_one_short_label_per_metric() -> None:
    assert table_problems(METRICS) == []
    assert len({m.label for m in METRICS}) == len(METRICS)
    assert len({m.short for m in METRICS}) == len(METRICS)


def test_a_bad_row_is_described() -> None:
    bad = Metric(
        name="Bad Name",
        label="",
        short="a very long short label",
        low=1.0,
        high=0.0,
        better="up",  # type: ignore[arg-type]
        tolerance=-1.0,
        needs=("x-ray",),  # type: ignore[arg-type]
        definition="two\nlines",
    )
    problems = "\n".join(table_problems((bad,)))
    for expected in (
        "lower-case letters",
        "needs a label",
        "longer than",
        "better is one of",
        "tolerance must be 0 or more",
        "needs is some of",
        "must be above low",
        "one-line definition",
    ):
        assert expected in problems
    with pytest.raises(KeyError, match="no metric 'bad'"):
        metric("bad")
