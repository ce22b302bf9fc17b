"""Sound in a real browser: an ltx2 take on the Storyboard plays its clip with
sound and its .wav; the dialogue typed in the scene editor is saved."""

from __future__ import annotations

import pytest

from engine.generate import generate_scene
from kg.schema import (
    Character,
    DialogueLine,
    SceneNode,
    SceneSound,
    Settings,
    Story,
)
from kg.store import load_story, save_story
from tests.e2e.conftest import Studio
from tests.e2e.helpers import UI_TIMEOUT_MS, expect, shot

pytestmark = pytest.mark.e2e

MEDIA = """
(tag) => [...document.querySelectorAll(tag)]
    .filter(m => m.readyState >= 1 && m.duration > 0)
    .map(m => m.duration)
"""


def test_ltx2_take_plays_with_sound(page, studio: Studio) -> None:  # noqa: ANN001
    folder = studio.outputs / "talk"
    story = Story(
        title="Talk",
        settings=Settings(
            backend="ltx2", model="tiny-random", width=64, height=64, fps=24,
            quality_preset="fast",
        ),
        characters=[Character(id="mara", name="Mara")],
        scenes=[
            SceneNode(
                id="door", title="Door", character_ids=["mara"],
                motion="Mara opens the door", num_frames=33,
                dialogue=[DialogueLine(character_id="mara", text="Anyone here?")],
                sound=SceneSound(ambience="rain on the roof"),
            )
        ],
    )  # fmt: skip
    save_story(story, folder)
    take = generate_scene(folder, "door")
    assert take.status == "done", take.error

    page.goto(f"{studio.url}/storyboard?story=talk")
    expect(page.locator("audio")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    page.wait_for_function(f"({MEDIA})('audio').length > 0", timeout=UI_TIMEOUT_MS)
    page.wait_for_function(f"({MEDIA})('video').length > 0", timeout=UI_TIMEOUT_MS)
    seconds = 33 / 24
    assert abs(page.evaluate(MEDIA, "audio")[0] - seconds) <= 1 / 24
    expect(page.get_by_text("with sound", exact=False).first).to_be_visible()
    dialogue = page.get_by_label("Dialogue", exact=True)
    expect(dialogue).to_have_value("Mara: Anyone here?")
    shot(page, "7-sound")
    assert load_story(folder).scene("door").dialogue[0].text == "Anyone here?"
