"""Takes side by side in the browser: played together, one score table.

Two animatic takes of the example's first scene (different seeds, so other
pixels) are compared on the Storyboard: both clips play at once from "Play
together", stay at the same time, pause and seek together. The selected
scene is in the URL and survives a page change. Screenshots land in
``test-results/e2e/``.
"""

from __future__ import annotations

import pytest

from engine.generate import generate_scene
from kg.example import example_story
from kg.store import save_story, update_story
from studio.wiring import default_observer
from tests.e2e.helpers import UI_TIMEOUT_MS, expect, go, pick, shot

pytestmark = pytest.mark.e2e

SLUG = "compare"
# every clip playing, at most a frame or two apart
PLAYING_TOGETHER = """
() => {
  const v = [...document.querySelectorAll('video')];
  return v.length === 2 && v.every(x => !x.paused && x.currentTime > 0.3)
    && Math.abs(v[0].currentTime - v[1].currentTime) < 0.25;
}
"""


@pytest.fixture(scope="module")
def story(studio):  # noqa: ANN001, ANN201 - the conftest's Studio
    folder = studio.outputs / SLUG
    story = example_story("Compare takes")
    story.settings.width, story.settings.height, story.settings.fps = 192, 128, 8
    story.scene("arrival").weather = "rain"  # drawn from the seed: new pixels
    story.scene("arrival").duration_s = 4.0  # long enough to watch it play
    save_story(story, folder)
    observer = default_observer()  # pixel metrics; CLIP/DINO where fetched
    generate_scene(folder, "arrival", backend="animatic", observer=observer)
    update_story(folder, lambda s: setattr(s.scene("arrival"), "seed", 99))
    generate_scene(
        folder, "arrival", backend="animatic", force=True, observer=observer
    )
    return folder


def test_two_takes_play_together_and_compare(page, server: str, story) -> None:  # noqa: ANN001
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"{server}/storyboard?story={SLUG}&scene=arrival")
    expect(page.get_by_role("heading", name="Scene · arrival")).to_be_visible()
    player = page.frame_locator("iframe[srcdoc]").first
    expect(player.locator("video")).to_have_count(2)
    table = page.get_by_test_id("stTable")
    expect(table.get_by_text("take 1", exact=True)).to_be_visible()
    expect(table.get_by_text("take 2", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Select take 1")).to_be_visible()

    player.get_by_role("button", name="Play together").click()
    frame = page.locator("iframe[srcdoc]").first.element_handle().content_frame()
    frame.wait_for_function(PLAYING_TOGETHER, timeout=UI_TIMEOUT_MS)
    shot(page, "compare-takes-playing")
    player.get_by_role("button", name="Pause").click()
    frame.wait_for_function(
        "() => [...document.querySelectorAll('video')].every(v => v.paused)"
    )
    player.get_by_label("Position of every clip").fill("500")  # halfway
    frame.wait_for_function(
        """() => { const v = [...document.querySelectorAll('video')];
                   return v.every(x => x.currentTime > 1)
                     && Math.abs(v[0].currentTime - v[1].currentTime) < 0.05; }"""
    )
    shot(page, "compare-takes")


def test_selected_scene_survives_a_page_change(page, server: str, story) -> None:  # noqa: ANN001
    page.goto(f"{server}/storyboard?story={SLUG}")
    pick(page, "Scene", "The keeper waits (meeting)")
    expect(page.get_by_role("heading", name="Scene · meeting")).to_be_visible()
    assert "scene=meeting" in page.url
    go(page, "Cast")
    assert "scene=meeting" in page.url
    go(page, "Storyboard", "Compare takes")
    expect(page.get_by_role("heading", name="Scene · meeting")).to_be_visible()
    page.get_by_text("Structure: add, branch, connect, delete").click()
    expect(page.get_by_role("button", name="Disconnect").first).to_be_visible()
    shot(page, "storyboard-structure-1280")


def test_model_chooser_fills_the_model_field(page, server: str, story) -> None:  # noqa: ANN001
    page.goto(f"{server}/settings?story={SLUG}")
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    box = page.get_by_role("combobox", name="Choose the model from the catalog")
    box.click()
    expect(page.get_by_role("option", name="tiny-random ·").first).to_be_visible()
    shot(page, "settings-model-chooser-open")
    page.get_by_role("option", name="tiny-random · ltx").first.click()
    model = page.get_by_label("Model", exact=True).first  # Generation, not Drafting
    expect(model).to_have_value("tiny-random")
    shot(page, "settings-model-chooser")
