"""The Storyboard's graph canvas in Chromium: its hover tooltip never sticks.

vis-network (inside streamlit-agraph's iframe) hides a node's tooltip only
when the pointer moves over the canvas again; the studio hides it when the
pointer leaves the canvas, on a click, when the canvas loses focus and when a
rerun redraws the graph (`studio.components.graph`).
"""

from __future__ import annotations

import pytest

from kg.example import synthetic_story
from kg.store import save_story
from tests.e2e.conftest import Studio
from tests.e2e.helpers import expect, settled

pytestmark = pytest.mark.e2e

GRAPH_FRAME = 'iframe[title="streamlit_agraph.agraph"]'


def _hover_the_node(page):  # noqa: ANN001, ANN202 - playwright Page, Locator
    """Point at the only scene (the fitted view centres it); its tooltip shows."""
    graph = page.frame_locator(GRAPH_FRAME)
    canvas = graph.locator("canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 40, y)
    page.mouse.move(x, y, steps=4)
    tooltip = graph.locator(".vis-tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("Scene s00000")
    return tooltip, (x, y), box


def test_tooltip_hides_when_the_pointer_leaves_or_clicks(studio: Studio, page) -> None:  # noqa: ANN001
    save_story(synthetic_story(1), studio.outputs / "one")
    page.goto(f"{studio.url}/storyboard?story=one")
    settled(page)
    expect(page.get_by_role("heading", name="Scene · s00000")).to_be_visible()

    # out of the iframe in one move: the canvas never sees the pointer go
    tooltip, _, box = _hover_the_node(page)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] + 120)
    expect(tooltip).to_be_hidden()

    # a click on the node (a rerun redraws the graph) leaves no tooltip behind
    tooltip, (x, y), _ = _hover_the_node(page)
    page.mouse.click(x, y)
    settled(page)
    expect(tooltip).to_be_hidden()
    expect(page.get_by_role("heading", name="Scene · s00000")).to_be_visible()

    # focus moving elsewhere (a keyboard user tabs away) hides it too
    tooltip, _, _ = _hover_the_node(page)
    page.get_by_label("Pose", exact=True).focus()
    expect(tooltip).to_be_hidden()
