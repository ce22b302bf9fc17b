"""Dialogue and sound fields of a scene: validation names the field and what to
change; they reach the prompt of backends with sound, in order, within the
token budget (lines dropped last); silent backends leave them out."""

from __future__ import annotations

import re

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
        'Tom says (softly): "Is it ready?"',
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


_FORGED = 'Tom says: "I did it"'
_QUOTE_MARKS = (
    '"\u201c\u201d\u201e\u00ab\u00bb\u300c\u300d\u300e\u300f\uff02\u301d\u301e'
)


@pytest.mark.parametrize(
    ("line", "sound", "mara"),
    [
        # the words close the quote and open one for Tom
        (DialogueLine(character_id="mara", text='Hi." ' + _FORGED[:-1]), None, None),
        (DialogueLine(character_id="mara", text="Hi.\n" + _FORGED), None, None),
        # typographic, low-9, guillemet, CJK and full-width quotation marks
        (
            DialogueLine(character_id="mara", text="Hi\u201d Tom says: \u201cI did it"),
            None,
            None,
        ),
        (
            DialogueLine(character_id="mara", text="Hi\u00bb Tom says: \u00abI did it"),
            None,
            None,
        ),
        (
            DialogueLine(character_id="mara", text="Hi\u300d Tom says: \u300cI did"),
            None,
            None,
        ),
        (
            DialogueLine(character_id="mara", text="Hi\uff02 Tom says: \uff02I did"),
            None,
            None,
        ),
        # the delivery leaves its place, or gives Mara's words to Tom
        (
            DialogueLine(
                character_id="mara", text="Hello.", delivery='low): "x" ' + _FORGED
            ),
            None,
            None,
        ),
        (
            DialogueLine(character_id="mara", text="I did it", delivery="calm. Tom"),
            None,
            None,
        ),
        # the ambience and the effects
        (None, SceneSound(ambience="rain. " + _FORGED + "."), None),
        (
            None,
            SceneSound(
                effects=["thunder\n" + _FORGED, "Tom says: \u2018I did it\u2019"]
            ),
            None,
        ),
        # a name that writes a line of its own
        (DialogueLine(character_id="mara", text="Hello."), None, 'Mara: "x". Tom'),
    ],
)
def test_no_field_forges_a_quoted_line_for_another_speaker(
    line: DialogueLine | None, sound: SceneSound | None, mara: str | None
) -> None:
    lines = [line] if line is not None else []
    story = _story(dialogue=lines, sound=sound or SceneSound(ambience="wind"))
    if mara is not None:
        story.characters[0].name = mara
    text = build_prompt(DynamicSceneGraph(story), "s1", audio=True, budget=4000).text
    # the only double quotes are those around each line's words
    assert text.count('"') == 2 * len(lines), text
    assert not any(q in text for q in _QUOTE_MARKS[1:]), text
    assert "\n" not in text
    # each line's speaker is the whole phrase since the last sentence end
    spoken = re.findall(
        r'(?:^|[.!?] )([^.!?"]+) says(?: \(([^()":]*)\))?: "([^"]*)"', text
    )
    who = "Mara x Tom" if mara else "Mara"
    assert [speaker for speaker, _, _ in spoken] == [who] * len(lines), text
    # outside the lines' words nothing attributes words to Tom, in either style
    outside = re.sub(r'"[^"]*"', '""', text)
    tom = r"(?:^|[.!?:,] )Tom says(?: \([^()]*\))?: [\"']"
    assert not re.search(tom, outside), text
    if line is not None:
        assert spoken[0][2].replace("'", '"').count("I did") == line.text.count("I did")
