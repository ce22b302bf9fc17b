"""One queue for the whole studio: every story's scenes in one order, one at a
time, each removable and movable, cancel per item and for all, in the sidebar
of every page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kg.store import load_story
from studio import services, wiring
from tests.everyday_fakes import GATES, example_story, finish_everything, install

pytest.importorskip("engine.runner")


def _sidebar_script() -> None:
    import streamlit as st

    from studio.components.jobs import queue_sidebar

    with st.sidebar:
        queue_sidebar()


@pytest.fixture
def stories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    install(monkeypatch)
    monkeypatch.setattr(wiring, "default_observer", lambda: None)
    GATES.arm("load")  # the first scene holds the studio's turn while loading
    first = example_story("harbour", title="The harbour")
    second = example_story("lantern", title="The lantern")
    yield first, second
    finish_everything(first, second)


def _rows(at: AppTest) -> list[str]:
    return [str(m.value) for m in at.sidebar.markdown if "**" in str(m.value)]


def test_the_queue_lists_two_stories_and_removes_an_item(stories) -> None:  # noqa: ANN001
    first, second = stories
    services.submit_generation(first, ["arrival"])
    assert GATES.reached["load"].wait(60)
    services.submit_generation(second, ["arrival", "cliff-edge"])
    # one scene at a time across the studio: the second story waits its turn
    assert services.job_status(second).current is None
    assert load_story(second).scene("arrival").status == "queued"

    at = AppTest.from_function(_sidebar_script, default_timeout=60).run()
    assert not at.exception
    rows = _rows(at)
    assert len(rows) == 4, rows  # the title and three scenes
    assert "▶ **arrival** · The harbour" in rows[1] and "load" in rows[1]
    assert rows[2] == "1. **arrival** · The lantern"
    assert rows[3] == "2. **cliff-edge** · The lantern"

    at.button(key="queue.up.lantern.cliff-edge").click().run()  # sooner
    assert _rows(at)[2:] == [
        "1. **cliff-edge** · The lantern",
        "2. **arrival** · The lantern",
    ]
    at.button(key="queue.remove.lantern.arrival").click().run()
    assert _rows(at)[2:] == ["1. **cliff-edge** · The lantern"]
    assert load_story(second).scene("arrival").status == "draft"
    assert services.job_status(second).queued == ("cliff-edge",)

    at.button(key="queue.cancel_all").click().run()
    GATES.open("load")
    assert services.wait_for_jobs(first, timeout=60)
    assert services.wait_for_jobs(second, timeout=60)
    assert load_story(first).scene("arrival").takes == []
    assert {s.status for s in load_story(second).scenes} == {"draft"}
    at.run()
    assert "Queue: nothing generating." in [str(c.value) for c in at.sidebar.caption]


def test_the_queue_runs_scenes_in_its_order_across_stories(stories) -> None:  # noqa: ANN001
    first, second = stories
    services.edit_story(second, lambda s: setattr(s.scene("cliff-edge"), "seed", 99))
    GATES.calls.clear()
    services.submit_generation(first, ["arrival"])
    assert GATES.reached["load"].wait(60)
    services.submit_generation(first, ["cliff-edge"])
    services.submit_generation(second, ["cliff-edge"])
    # the second story's scene goes before the first story's second one
    assert services.move_in_queue(second, "cliff-edge", -1)
    GATES.open("load")
    assert services.wait_for_jobs(first, timeout=120)
    assert services.wait_for_jobs(second, timeout=120)
    assert GATES.calls == [11, 99, 15]  # the seeds, in the order they were made


def test_the_sidebar_queue_is_on_every_page(stories) -> None:  # noqa: ANN001
    from studio.testing import app_test

    first, _ = stories
    services.submit_generation(first, ["arrival"])
    assert GATES.reached["load"].wait(60)
    at = app_test().run()  # the Stories page, no story open
    assert not at.exception
    assert any("▶ **arrival** · The harbour" in row for row in _rows(at))
