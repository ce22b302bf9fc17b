"""The studio with sound: the scene editor's dialogue and sound fields (saved,
previewed in the prompt of a backend with sound, a bad speaker named by line),
an ltx2 take's card playing its sound, and the Settings' memory modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.backend import available_backends, get_backend
from engine.catalog import CATALOG
from engine.generate import generate_scene
from kg.schema import MEMORY_MODES, DialogueLine, SceneSound
from kg.store import load_story, update_story
from studio import services
from studio.testing import page_test, shown_text
from studio.views.storyboard import SELECTED_KEY, editor_key


@pytest.fixture
def example(outputs: Path) -> Path:
    folder = services.create_story("lighthouse", "", example=True)

    def ltx2(story) -> None:  # noqa: ANN001
        story.settings.backend = "ltx2"
        story.settings.model = "tiny-random"
        story.settings.width = story.settings.height = 64
        story.settings.quality_preset = "fast"

    update_story(folder, ltx2)
    return folder


def test_audio_backends_are_those_that_make_sound() -> None:
    local = {n for n in available_backends() if not CATALOG[n].hosted}
    expected = {n for n in local if CATALOG[n].makes_audio}
    assert expected == {"ltx2"}
    assert {n for n in local if get_backend(n).makes_audio} == expected


def test_edit_dialogue_and_sound_preview_and_save(example: Path) -> None:
    story = load_story(example)
    keeper = story.characters[0]
    at = page_test("storyboard", example).run()
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    at.text_area(key=editor_key("meeting", "dialogue")).input(
        f"{keeper.name} (shouting): Storm's coming!\n{keeper.id}: Get inside."
    ).run()
    at.text_input(key=editor_key("meeting", "ambience")).input("howling wind").run()
    at.text_area(key=editor_key("meeting", "effects")).input("a door bangs").run()
    preview = " ".join(c.value for c in at.code)
    assert f'{keeper.name} says (shouting): "Storm\'s coming!"' in preview
    assert "Sound: howling wind, a door bangs." in preview
    at.button(key="storyboard.save").click().run()
    assert not at.exception
    scene = load_story(example).scene("meeting")
    assert scene.dialogue == [
        DialogueLine(
            character_id=keeper.id, text="Storm's coming!", delivery="shouting"
        ),
        DialogueLine(character_id=keeper.id, text="Get inside."),
    ]
    assert scene.sound == SceneSound(ambience="howling wind", effects=["a door bangs"])
    # the editor shows the saved lines the way they were typed
    at = page_test("storyboard", example).run()
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    typed = at.text_area(key=editor_key("meeting", "dialogue")).value
    assert (
        typed
        == f"{keeper.name} (shouting): Storm's coming!\n{keeper.name}: Get inside."
    )


def test_unknown_speaker_is_named_and_nothing_is_saved(example: Path) -> None:
    at = page_test("storyboard", example).run()
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    at.text_area(key=editor_key("meeting", "dialogue")).input(
        "Nobody: hello\nno colon here"
    ).run()
    at.button(key="storyboard.save").click().run()
    text = shown_text(at)
    assert "dialogue line 1" in text and "unknown speaker 'Nobody'" in text
    assert "dialogue line 2" in text and "Name: words" in text
    assert load_story(example).scene("meeting").dialogue == []
    assert at.text_area(key=editor_key("meeting", "dialogue")).value.startswith(
        "Nobody"
    )


def test_ltx2_take_card_plays_its_sound(example: Path) -> None:
    take = generate_scene(example, "arrival")
    assert take.status == "done", take.error
    at = page_test("storyboard", example).run()
    at.selectbox(key=SELECTED_KEY).set_value("arrival").run()
    assert not at.exception
    players = at.get("audio")
    assert players, "the take's .wav has a player"
    text = shown_text(at)
    assert "with sound" in text and "random weights" in text


def test_settings_list_memory_modes_and_take_a_gguf_file(example: Path) -> None:
    at = page_test("settings", example).run()
    assert not at.exception
    shown = " ".join(str(t.value) for t in at.table)
    for mode in MEMORY_MODES:
        assert mode in shown
    at.text_input(key="settings.transformer_file").input("/models/t.safetensors")
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    assert "not a .gguf file" in shown_text(at)
    at.text_input(key="settings.transformer_file").input("/models/ltx2-Q8_0.gguf")
    at.selectbox(key="settings.memory_mode").set_value("fp8")
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    saved = load_story(example).settings
    assert saved.transformer_file == "/models/ltx2-Q8_0.gguf"
    assert saved.memory_mode == "fp8"


def test_prompt_preview_counts_against_the_backends_encoder_budget(
    example: Path,
) -> None:
    at = page_test("storyboard", example).run()
    assert "/ 1024 tokens" in shown_text(at)  # LTX-2's Gemma reads 1024
