"""The take comparison view: takes side by side, best values highlighted, the
deciding metrics marked, unavailable-scorer notes once."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.schema import GenerationParams, Scores, Take
from studio import services
from studio.components.compare import (
    DECIDING,
    best_takes,
    compare_table,
    default_compared,
    synced_player_html,
)
from studio.testing import page_test, shown_text
from studio.views.storyboard import SELECTED_KEY

NO_CLIP = "no CLIP weights; run storygraph fetch-models clip-vit-b-32"


def _take(index: int, flicker: float, seam_mae: float) -> Take:
    params = GenerationParams(
        backend="animatic",
        prompt="p",
        seed=index,
        steps=1,
        guidance=1.0,
        width=64,
        height=64,
        num_frames=9,
        fps=8,
    )
    scores = Scores(
        temporal_flicker=flicker,
        seam_pixel_mae=seam_mae,
        unavailable={"clip_score": NO_CLIP},
    )
    return Take(index=index, params=params, scores=scores)


@pytest.fixture
def story(outputs: Path) -> Path:
    folder = services.create_story("lighthouse", "", example=True)

    def three_takes(s) -> None:  # noqa: ANN001 - kg.schema.Story
        scene = s.scene("arrival")
        scene.takes = [_take(1, 0.90, 4.0), _take(2, 0.95, 6.0), _take(3, 0.80, 2.0)]
        scene.selected_take, scene.status = 1, "done"

    services.edit_story(folder, three_takes)
    return folder


def test_best_values_follow_each_metrics_direction(story: Path) -> None:
    takes = services.story_view(story).scene("arrival").takes
    best = best_takes(takes)
    assert best["temporal_flicker"] == [2]  # higher is better
    assert best["seam_pixel_mae"] == [3]  # lower is better
    assert "clip_score" not in best  # no value anywhere


def test_table_marks_deciding_rows_and_names_missing_scorers_once(story: Path) -> None:
    takes = services.story_view(story).scene("arrival").takes
    table, missing = compare_table(takes, ["seam_pixel_mae"])
    frame = table.data
    assert list(frame.columns) == ["take 1", "take 2", "take 3"]
    rows = list(frame.index)
    assert any(r.startswith(DECIDING) and "seam MAE" in r for r in rows)
    assert not any(r.startswith(DECIDING) and "flicker" in r for r in rows)
    assert missing[NO_CLIP] == ["CLIP"]  # said once for all three takes
    css = table.to_html().split("</style>")[0]
    flicker = rows.index(next(r for r in rows if "flicker" in r))
    seam = rows.index(next(r for r in rows if "seam MAE" in r))
    highlighted = css.split("{")[0]  # the cells styled as best
    assert f"row{flicker}_col1" in highlighted  # take 2: the highest flicker
    assert f"row{seam}_col2" in highlighted  # take 3: the lowest seam MAE
    assert f"row{flicker}_col0" not in highlighted


def test_storyboard_compares_the_selected_and_newest_takes(story: Path) -> None:
    scene = services.story_view(story).scene("arrival")
    assert default_compared(scene) == [1, 3, 2]
    at = page_test("storyboard", story).run()
    assert not at.exception
    assert at.selectbox(key=SELECTED_KEY).value == "arrival"
    assert at.multiselect(key="storyboard.compare.arrival").value == [1, 3, 2]
    (table,) = at.table
    assert list(table.value.columns) == ["take 1", "take 2", "take 3"]
    text = shown_text(at)
    assert text.count(NO_CLIP) == 1  # not once per take
    assert {b.label for b in at.button if b.label.startswith("Select take")} == {
        "Select take 2",
        "Select take 3",
    }
    at.multiselect(key="storyboard.compare.arrival").set_value([2, 3]).run()
    assert list(at.table[0].value.columns) == ["take 2", "take 3"]
    at.button(key="storyboard.select_take.3").click().run()
    assert services.story_view(story).scene("arrival").selected_take == 3


def test_cards_are_still_one_click_away(story: Path) -> None:
    at = page_test("storyboard", story).run()
    at.segmented_control(key="storyboard.takes_view").set_value("Cards").run()
    assert not at.exception
    assert len(at.table) == 3  # a score table per card
    assert shown_text(at).count(NO_CLIP) == 1


def test_player_plays_every_clip_and_escapes_labels() -> None:
    page = synced_player_html(
        [("Take 1", "video/mp4", b"a"), ("<b>Take 2</b>", "video/mp4", b"b")]
    )
    assert page.count("<video") == 2
    assert "&lt;b&gt;Take 2&lt;/b&gt;" in page and "<b>Take 2" not in page
    assert "Play together" in page
