"""The studio in a real browser against the real server.

Playwright drives Debian's Chromium (``/usr/bin/chromium``; nothing is
downloaded): open a page by its link on the fresh server, create the example
story, change the settings, edit a scene, generate two scenes with the
animatic backend, check that a clip plays (``readyState >= 2``,
``duration > 0``), reload and find the same state, and find a chart on
Insights. A screenshot of every page lands in ``test-results/e2e/``.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import (
    GENERATE_TIMEOUT_MS,
    UI_TIMEOUT_MS,
    VIDEO_PLAYABLE,
    click,
    expect,
    go,
    pick,
    shot,
)

pytestmark = pytest.mark.e2e


def test_story_from_creation_to_insights(page, server: str) -> None:  # noqa: ANN001
    # a link straight to a page works on a freshly started server
    page.goto(f"{server}/settings")
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    expect(page.get_by_text("No story is open")).to_be_visible()
    page.goto(server)
    expect(page.get_by_role("heading", name="StoryGraph Studio")).to_be_visible()
    # users get the studio, not Streamlit's developer toolbar (.streamlit/config.toml)
    expect(page.get_by_test_id("stAppDeployButton")).to_have_count(0)
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
    shot(page, "1-stories")

    page.get_by_label("Title").fill("Browser story")
    page.get_by_text("Example story").click()
    click(page, "Create story")
    heading = page.get_by_role("heading", name="Browser story")
    expect(heading).to_be_visible()

    # small clips keep the animatic quick
    go(page, "Settings")
    for label, value in (("Width", "192"), ("Height", "128"), ("FPS", "8")):
        page.get_by_label(label, exact=True).fill(value)
    click(page, "Save settings")
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    shot(page, "5-settings")

    go(page, "Storyboard", "Browser story")
    motion = page.get_by_label("Motion", exact=True)
    motion.fill("Mara jumps from the ferry onto the wet quay")
    motion.press("Enter")
    preview = page.locator("code").filter(has_text="Mara jumps from the ferry")
    expect(preview).to_be_visible()  # the prompt preview follows the typing
    click(page, "Save scene")
    expect(page.get_by_text("Saved arrival.")).to_be_visible()

    click(page, "Generate scene")
    expect(page.get_by_text("Take 1", exact=False).first).to_be_visible(
        timeout=GENERATE_TIMEOUT_MS
    )
    expect(page.get_by_role("button", name="Generate a new take")).to_have_count(1)
    pick(page, "Scene", "The keeper waits (meeting)")
    expect(page.get_by_role("heading", name="Scene · meeting")).to_be_visible()
    click(page, "Generate scene")
    expect(page.get_by_text("Takes of The keeper waits")).to_be_visible()
    expect(page.locator("video")).to_have_count(1, timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function(VIDEO_PLAYABLE, timeout=UI_TIMEOUT_MS)
    shot(page, "2-storyboard")

    page.reload()  # the selected scene is kept (it is in the URL)
    expect(heading).to_be_visible()
    expect(page.get_by_role("heading", name="Scene · meeting")).to_be_visible()
    expect(page.get_by_text("Status: done").first).to_be_visible()
    pick(page, "Scene", "Arrival at the harbour (arrival)")
    expect(page.get_by_role("heading", name="Scene · arrival")).to_be_visible()
    expect(page.get_by_label("Motion", exact=True)).to_have_count(1)  # rerun over
    expect(page.get_by_label("Motion", exact=True)).to_have_value(
        "Mara jumps from the ferry onto the wet quay"
    )
    expect(page.locator("video")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    page.wait_for_function(VIDEO_PLAYABLE, timeout=UI_TIMEOUT_MS)

    go(page, "Cast")
    expect(page.get_by_text("Mara", exact=False).first).to_be_visible()
    shot(page, "3-cast")

    go(page, "Insights")
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts.first).to_be_visible()
    expect(charts.first.locator("canvas, svg").first).to_be_visible()
    shot(page, "4-insights")
