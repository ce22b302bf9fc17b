"""The Screening page (AppTest), the graph's thumbnails, and the Storyboard
keeping its layout while notices come and go."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from studio import film_jobs, services
from studio.testing import page_test, shown_text
from studio.views.storyboard import SELECTED_KEY
from tests.conftest import generate_small_example


@pytest.fixture
def generated(outputs: Path) -> Path:
    return generate_small_example(outputs / "lighthouse")


def _downloads(at) -> list[str]:  # noqa: ANN001 - AppTest
    return [e.proto.label for e in at.get("download_button")]


def test_undone_line_lists_its_scenes_and_offers_no_film(outputs: Path) -> None:
    folder = services.create_story("lighthouse", "", example=True)
    at = page_test("screening", folder).run()
    assert not at.exception
    text = shown_text(at)
    assert "cannot play yet; 4 of its 4 scenes have no finished take" in text
    assert "Arrival at the harbour (arrival): not generated yet" in text
    assert not at.button  # nothing to assemble
    assert "no frames yet" in text
    # the main line first, then the other, by their last scenes
    line = at.selectbox(key="screening.line")
    assert line.options == [
        "The light goes out (4 scenes) · main line",
        "Dawn over the harbour (5 scenes)",
    ]


def _assemble(at: Any) -> None:
    """Click Assemble, wait for the assembly's thread, and look again."""
    at.button(key="screening.assemble").click().run()
    for job in list(film_jobs._ASSEMBLIES.values()):
        assert job.thread is not None
        job.thread.join(120)
    at.run()


def test_assemble_play_and_download_a_line(generated: Path) -> None:
    at = page_test("screening", generated).run()
    assert not at.exception
    assert "not assembled yet" in shown_text(at)
    _assemble(at)
    assert not at.exception
    films = list((generated / "films").glob("lamp-room-*.mp4"))
    assert len(films) == 1
    assert len(at.get("video")) == 1
    # 8 fps has no SMPTE timecode: EDL and FCP 7 XML say what they need
    assert _downloads(at) == [
        "Download film (mp4)",
        "OpenTimelineIO",
        "Final Cut Pro X XML",
    ]
    assert "needs 24, 25, 30, 48, 50 or 60 fps" in shown_text(at)
    # the filmstrip: both frames of each of the line's 4 scenes
    assert len(at.get("image")) == 8

    at.selectbox(key="screening.line").set_value("dawn").run()
    at.number_input(key="screening.crossfade").set_value(3).run()
    assert not at.exception
    assert "5 scenes" in shown_text(at)
    _assemble(at)
    assert len(list((generated / "films").glob("dawn-*.mp4"))) == 1
    # a second visit plays the assembled film at once
    again = page_test("screening", generated)
    again.session_state["screening.line"] = "dawn"
    again.session_state["screening.crossfade"] = 3
    again.run()
    assert len(again.get("video")) == 1 and not again.button


def test_graph_nodes_show_the_selected_takes_last_frame(generated: Path) -> None:
    from studio.components.graph import graph_data

    data = graph_data(services.story_view(generated), "climb")
    nodes = {n["id"]: n for n in data["nodes"]}
    assert all(n["shape"] == "image" for n in nodes.values())
    assert all(n["image"].startswith("data:image/jpeg;base64,") for n in nodes.values())
    assert nodes["climb"]["color"]["border"] != nodes["arrival"]["color"]["border"]


def test_graph_nodes_without_a_take_stay_dots(outputs: Path) -> None:
    from studio.components.graph import graph_data

    folder = services.create_story("plain", "", example=True)
    nodes = graph_data(services.story_view(folder), "climb")["nodes"]
    assert {n["shape"] for n in nodes} == {"dot"}


def test_storyboard_keeps_its_layout_when_notices_come_and_go(generated: Path) -> None:
    """Blocks keep their place in the layout tree: when they shift, the browser
    shows the previous run's blocks in the wrong columns until the run ends."""
    from kg.store import update_story
    from studio.session import FLASH_KEY

    def where(at) -> int:  # noqa: ANN001 - AppTest
        for index, child in at.main.children.items():
            if not hasattr(child, "children"):
                continue  # an element, not a block
            if any(sb.key == SELECTED_KEY for sb in child.get("selectbox")):
                return index
        raise AssertionError("no scene select box")

    at = page_test("storyboard", generated).run()
    plain = where(at)

    def interrupt(story) -> None:  # noqa: ANN001
        story.scene("dawn").status = "interrupted"

    update_story(generated, interrupt)
    at = page_test("storyboard", generated)
    at.session_state[FLASH_KEY] = [("info", "Queued arrival."), ("success", "x")]
    at.run()
    assert "Interrupted before they finished" in shown_text(at)
    assert "Queued arrival." in shown_text(at)
    assert where(at) == plain


def test_take_scores_keep_their_values_in_view(generated: Path) -> None:
    from kg.metrics import metric
    from kg.schema import Scores
    from kg.store import update_story

    why = "no CLIP weights; run storygraph fetch-models clip-vit-b-32 " * 3

    def score(story) -> None:  # noqa: ANN001
        story.scene("arrival").selected.scores = Scores(
            subject_consistency=0.91,
            temporal_flicker=0.97,
            unavailable={"clip_score": why, "background_consistency": why},
        )

    update_story(generated, score)
    at = page_test("storyboard", generated).run()
    table = at.table[0].value
    # a static metric -> value table sized to its content: no column hidden
    # behind a scroll bar, no long reason pushing the values out of view
    assert list(table.columns) == ["value"]
    values = dict(zip(table.index, table["value"], strict=True))
    # each metric under its short label (kg.metrics)
    subject, clip, background = (
        metric(name).short
        for name in ("subject_consistency", "clip_score", "background_consistency")
    )
    assert values[subject] == "0.910" and values[clip] == "–"
    # the reason once, under the table, for every metric it applies to
    text = shown_text(at)
    assert text.count("no CLIP weights") == 3  # one caption holding it
    assert f"Unavailable ({clip}, {background}" in text


def test_a_long_assembly_can_be_stopped_and_leaves_nothing(
    generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    real = film_jobs.assemble_film

    def gated(folder: Path, plan: Any, *, progress: Any, cancelled: Any) -> Any:
        def held(done: int, total: int) -> None:
            progress(done, total)
            gate.wait(60)  # the test lets the encoder go on

        return real(folder, plan, progress=held, cancelled=cancelled)

    monkeypatch.setattr(film_jobs, "assemble_film", gated)
    at = page_test("screening", generated).run()
    at.button(key="screening.assemble").click().run()
    assert len(at.get("progress")) == 1
    assert not at.button(key="screening.stop").disabled
    at.button(key="screening.stop").click().run()
    assert at.button(key="screening.stop").disabled  # stopping after this shot
    gate.set()
    for job in list(film_jobs._ASSEMBLIES.values()):
        job.thread.join(120)
    at.run()
    assert not at.exception
    assert "Assembly stopped; no film was written." in shown_text(at)
    films = generated / "films"
    assert not films.exists() or not any(films.iterdir())
    assert at.button(key="screening.assemble")  # it can be started again
