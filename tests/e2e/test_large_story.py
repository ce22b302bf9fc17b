"""A 10,000-scene story stays usable in the browser.

The Storyboard draws a window of the scenes nearest the selected one (with
positions computed on the server, no layout in the browser), so the graph
appears, the page answers, and choosing another scene moves the window.
"""

from __future__ import annotations

import pytest

from kg.example import synthetic_story
from kg.store import save_story
from tests.e2e.conftest import Studio
from tests.e2e.helpers import expect, settled, shot

pytestmark = pytest.mark.e2e

SCENES = 10_000


def test_ten_thousand_scenes_open_in_a_window(studio: Studio, page) -> None:  # noqa: ANN001
    save_story(synthetic_story(SCENES), studio.outputs / "long")
    (studio.outputs / ".studio-last-story").write_text("long")
    page.goto(studio.url)
    settled(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Storyboard").click()
    settled(page)
    expect(page.get_by_text("of 10,000").first).to_be_visible()
    expect(page.get_by_role("combobox", name="Scene")).to_be_visible()
    graph = page.frame_locator("iframe").first
    expect(graph.locator("canvas").first).to_be_visible()
    expect(page.get_by_role("heading", name="Scene · s00000")).to_be_visible()
    shot(page, "large-storyboard")

    box = page.get_by_role("combobox", name="Scene")
    box.click()
    box.fill("Scene 5000 ")
    page.get_by_role("option", name="Scene 5000 (s05000)").click()
    settled(page)
    expect(page.get_by_role("heading", name="Scene · s05000")).to_be_visible()
    expect(graph.locator("canvas").first).to_be_visible()
    shot(page, "large-storyboard-moved")
