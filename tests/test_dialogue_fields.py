"""Dialogue and sound fields of a scene: validation names the field and what to
change; they reach the prompt of backends with sound, in order, within the
token budget (lines dropped last); silent backends leave them out."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kg.errors import StoryValidationError
from kg.graph import DynamicSceneGraph
from kg.prompt import build_prompt
from kg.schema import (
    MAX_DIALOGUE_LINES,
    Character,
    DialogueLine,
    SceneNode,
    SceneSound,
    Story,
)
from kg.store import parse_story


def _story(**scene: object) -> Story:
    return Story(
        title="T",
        characters=[Character(id="mara", name="Mara"), Character(id="tom", name="Tom")],
        scenes=[SceneNode(id="s1", title="Kitchen", motion="Mara pours tea", **scene)],
    )


def test_unknown_speaker_is_named_with_its_path() -> None:
    story = _story(dialogue=[DialogueLine(character_id="mara", text="Tea?")])
    doc = story.model_dump_json().replace(
        '"character_id":"mara"', '"character_id":"ann"'
    )
    with pytest.raises(StoryValidationError) as info:
        parse_story(doc)
    message = str(info.value)
    assert "scenes[0].dialogue[0].character_id: unknown character 'ann'" in message


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: DialogueLine(character_id="mara", text="x" * 301), "text"),
        (lambda: DialogueLine(character_id="mara", text=""), "text"),
        (
            lambda: DialogueLine(character_id="mara", text="hi", delivery="d" * 81),
            "delivery",
        ),
        (lambda: SceneSound(ambience="a" * 201), "ambience"),
        (lambda: SceneSound(effects=["boom"] * 9), "effects"),
        (
            lambda: SceneNode(
                id="s",
                title="t",
                dialogue=[DialogueLine(character_id="mara", text="hi")]
                * (MAX_DIALOGUE_LINES + 1),
            ),
            "dialogue",
        ),
    ],
)
def test_length_limits_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        make()  # type: ignore[operator]
    assert field in str(info.value)


def test_lines_and_sound_in_order_for_audio_backends_only() -> None:
    story = _story(
        character_ids=["mara", "tom"],
        dialogue=[
            DialogueLine(character_id="tom", text="Is it ready?", delivery="softly"),
            DialogueLine(character_id="mara", text='Say "please".'),
        ],
        sound=SceneSound(ambience="a kettle whistling", effects=["cups clinking"]),
    )
    graph = DynamicSceneGraph(story)
    text = build_prompt(graph, "s1", audio=True).text
    parts = [
        "Mara pours tea",
        "Sound: a kettle whistling, cups clinking.",
        'Tom says softly: "Is it ready?"',
        "Mara says: \"Say 'please'.\"",
    ]
    at = [text.index(p) for p in parts]
    assert at == sorted(at), text
    silent = build_prompt(graph, "s1").text
    assert "kettle" not in silent and "Is it ready" not in silent


def test_dialogue_is_kept_when_the_budget_forces_drops() -> None:
    story = _story(
        character_ids=["mara"],
        dialogue=[DialogueLine(character_id="mara", text="Tea is ready.")],
        sound=SceneSound(ambience="a kettle whistling"),
    )
    prompt = build_prompt(DynamicSceneGraph(story), "s1", audio=True, budget=16)
    kinds = [p.kind for p in prompt.parts]
    assert "dialogue" in kinds and prompt.tokens <= 16
    dropped = [p.kind for p in prompt.dropped]
    assert "style" in dropped and "dialogue" not in dropped
