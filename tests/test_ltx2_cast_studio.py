"""The cast on LTX-2 in the studio: LoRAs per story (Settings) and per
character (Cast) with weights, a dialogue track on the scene editor with the
warning when the dialogue needs more time than the scene has, and take cards
that say which references, LoRAs and sound a take was made with."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from kg.schema import (
    GenerationParams,
    LoraRef,
    SuppliedSound,
    Take,
    UsedReference,
)
from kg.store import load_story, update_story
from kg.take import LoraUse, SamplingRecipe


def _wav(seconds: float, rate: int = 16_000) -> bytes:
    import io

    t = np.arange(round(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(pcm.tobytes())
    return buf.getvalue()


def test_settings_and_cast_save_lora_stacks_with_weights(outputs: Path) -> None:
    from studio import services
    from studio.testing import page_test, shown_text
    from studio.views.cast import cast_key

    folder = services.create_story("loras", "", example=True)
    at = page_test("settings", folder).run()
    at.text_area(key="settings.loras").set_value(
        "/models/dolly-in.safetensors = 0.6\nloras/sheet.safetensors = 1 in context"
    )
    at.button[0].click().run()
    assert not at.exception
    assert load_story(folder).settings.loras == [
        LoraRef(file="/models/dolly-in.safetensors", weight=0.6),
        LoraRef(file="loras/sheet.safetensors", in_context=True),
    ]
    at.text_area(key="settings.loras").set_value("../outside.safetensors = 1")
    at.button[0].click().run()
    assert "leaves the story folder" in shown_text(at)
    assert len(load_story(folder).settings.loras) == 2  # not saved

    cast = page_test("cast", folder).run()
    who = load_story(folder).characters[0].id
    cast.text_area(key=cast_key("character", who, "loras")).set_value(
        f"loras/{who}.safetensors = 0.75"
    )
    cast.button(key=f"cast.save.character.{who}").click().run()
    assert not cast.exception
    assert load_story(folder).characters[0].loras == [
        LoraRef(file=f"loras/{who}.safetensors", weight=0.75)
    ]


def test_the_scene_editor_stores_a_dialogue_track_and_warns_of_rushed_lines(
    outputs: Path,
) -> None:
    from studio import services
    from studio.components.scene_editor import editor_key
    from studio.testing import page_test, shown_text

    folder = services.create_story("voice", "", example=True)

    def ltx2(story) -> None:  # noqa: ANN001
        story.settings.backend = "ltx2"
        story.settings.model = "tiny-random-2.3"
        story.settings.width = story.settings.height = 64

    update_story(folder, ltx2)
    story = load_story(folder)
    scene = story.scenes[0]
    speaker = story.characters[0]
    board = page_test("storyboard", folder).run()
    assert not board.exception
    board.number_input(key=editor_key(scene.id, "duration_s")).set_value(2.0)
    board.text_area(key=editor_key(scene.id, "dialogue")).set_value(
        f"{speaker.name}: " + " ".join(["word"] * 12)
    )
    board.run()
    text = shown_text(board)
    assert "The dialogue has 12 words: about 4.8 s at 2.5 words a second" in text
    assert "lengthen it to 5.0 s" in text
    board.file_uploader(key=f"storyboard.voice.upload.{scene.id}").upload(
        "line one.wav", _wav(3.2), "audio/wav"
    )
    board.run()
    board.button(key=f"storyboard.voice.store.{scene.id}").click().run()
    assert not board.exception
    stored = load_story(folder).scene(scene.id).dialogue_audio
    assert stored == f"voices/{scene.id}/line-one.wav"
    assert (folder / stored).read_bytes() == _wav(3.2)
    text = shown_text(board)
    assert f"{stored}: 3.2 s" in text
    assert "The dialogue track lasts 3.2 s but the scene" in text
    board.button(key=f"storyboard.voice.remove.{scene.id}").click().run()
    assert load_story(folder).scene(scene.id).dialogue_audio is None


def test_a_take_card_names_its_references_loras_and_supplied_sound(
    outputs: Path,
) -> None:
    from studio import services
    from studio.testing import page_test, shown_text

    folder = services.create_story("card", "", example=True)
    story = load_story(folder)
    scene = story.scenes[0]
    who = story.characters[0].id
    take = Take(
        index=1,
        status="done",
        params=GenerationParams(
            backend="ltx2", model="tiny-random-2.3", prompt="p", seed=1, steps=2,
            guidance=1.0, width=64, height=64, num_frames=17, fps=24,
            references=[UsedReference(path=f"references/{who}/a.png", entity=who,
                                      strength=0.8)],
            dialogue_audio=SuppliedSound(path="voices/s/line.wav", seconds=0.7),
            audio_continuity="none",
            recipe=SamplingRecipe(
                checkpoint_kind="tiny",
                loras=[LoraUse(name="mara", file="loras/mara.safetensors",
                               weight=0.8, scope=f"character {who}")],
            ),
        ),
    )  # fmt: skip

    def add(s) -> None:  # noqa: ANN001
        s.scene(scene.id).takes.append(take)

    update_story(folder, add)
    board = page_test("storyboard", folder).run()
    assert not board.exception
    text = shown_text(board)
    assert f"references before the clip (0.8): {who} a.png" in text
    assert f"LoRAs: mara 0.8 (character {who})" in text
    assert "sound supplied: voices/s/line.wav (0.7 s)" in text
