"""The Screening page in a real browser: a generated story's line plays as one
film whose length is the plan's to within a frame, and every download works.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.film import plan_film
from engine.generate import generate_scene
from kg.example import example_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.store import load_story, save_story
from tests.e2e.conftest import Studio
from tests.e2e.helpers import UI_TIMEOUT_MS, click, expect, pick, shot

pytestmark = pytest.mark.e2e

FILM_DURATION = """
() => [...document.querySelectorAll('video')]
    .filter(v => v.readyState >= 2 && v.duration > 0)
    .map(v => v.duration)
"""


def test_screening_plays_the_line_and_offers_the_downloads(
    page, studio: Studio
) -> None:  # noqa: ANN001
    folder = studio.outputs / "screening"
    story = example_story()
    story.settings.width, story.settings.height, story.settings.fps = 160, 96, 24
    for scene in story.scenes:
        scene.duration_s = 0.5
    save_story(story, folder)
    for sid in generation_order(DynamicSceneGraph(story)):
        assert generate_scene(folder, sid, backend="animatic").status == "done"
    plan = plan_film(load_story(folder), folder, "dawn", crossfade=4)

    page.goto(f"{studio.url}/screening?story=screening")
    expect(page.get_by_role("heading", name="Screening")).to_be_visible()
    pick(page, "Story line ending at", "Dawn over the harbour (5 scenes)")
    crossfade = page.get_by_label("Crossfade at cuts (frames)", exact=True)
    crossfade.fill("4")
    crossfade.press("Enter")
    expect(page.get_by_text(f"{plan.frames} frames", exact=False).first).to_be_visible()
    click(page, "Assemble film")
    expect(page.locator("video")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    page.wait_for_function(f"({FILM_DURATION})().length > 0", timeout=UI_TIMEOUT_MS)
    duration = page.evaluate(FILM_DURATION)[0]
    assert abs(duration - plan.seconds) <= 1 / plan.fps, (duration, plan.seconds)
    expect(page.get_by_text("first", exact=True)).to_have_count(5)
    shot(page, "6-screening")

    for label in ("Download film (mp4)", "OpenTimelineIO", "Final Cut Pro X XML",
                  "FCP 7 XML", "CMX 3600 EDL"):  # fmt: skip
        expect(page.get_by_role("button", name=label)).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("button", name="OpenTimelineIO").click()
    timeline = json.loads(Path(info.value.path()).read_text())
    assert timeline["OTIO_SCHEMA"].startswith("Timeline")
    assert info.value.suggested_filename == "screening-dawn.otio"
    with page.expect_download() as info:
        page.get_by_role("button", name="Download film (mp4)").click()
    assert Path(info.value.path()).read_bytes()[4:8] == b"ftyp"
