"""Fountain screenplays in and out (kg.fountain, kg.fountain_export).

The sample screenplays (tests/data/fountain) import with the expected
scenes, characters, environments and dialogue lines; what has no place in a
story is listed with its line; a story written out reads back as the same
story (round trip), whatever its text holds; a malformed file names the
line it could not read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.example import example_story
from kg.fountain import (
    ScriptError,
    authored_content,
    read_script,
    read_script_bytes,
)
from kg.fountain_export import write_script
from kg.schema import Character, Environment, SceneEdge, SceneNode, Story

DATA = Path(__file__).parent / "data" / "fountain"


def _read(name: str):  # noqa: ANN202 - ScriptImport
    return read_script_bytes((DATA / name).read_bytes(), name)


def _dialogue_lines(story: Story) -> int:
    return sum(len(s.dialogue) for s in story.scenes)


def test_spec_features_sample_imports_with_expected_counts() -> None:
    result = _read("spec_features.fountain")
    story = result.story
    assert story.title == "The Lighthouse Keeper"
    assert len(story.scenes) == 6
    assert sorted(c.name for c in story.characters) == ["Jonas", "Mara", "McCLANE"]
    assert [e.name for e in story.environments] == [
        "Lighthouse",
        "Lamp Room",
        "Beach",
        "Lighthouse Kitchen",
        "Mara's Truck",
    ]
    assert _dialogue_lines(story) == 9
    first, second = story.scenes[0], story.scenes[1]
    assert first.title == "The storm"  # the section above it
    assert first.lighting == "night" and second.lighting == "night"  # CONTINUOUS
    assert story.environment(first.environment_id).description == "Exterior"
    assert [(d.text, d.delivery) for d in second.dialogue] == [
        ("Father said the light never goes out.", "voice-over"),
        ("He said a lot of things.", "voice-over, beat"),
    ]
    assert story.scenes[4].environment_id is None  # .FLASHBACK: no place
    assert story.scenes[4].title == "Flashback"
    assert [e.transition for e in story.edges] == [
        "continuous",
        "cut",
        "continuous",
        "cut",
        "cut",
    ]
    listed = [(u.line, u.what) for u in result.unplaced]
    assert listed == [
        (30, "note"),
        (68, "dual dialogue, read as one line after the other"),
        (76, "lyrics"),
        (77, "lyrics"),
        (93, "centred text"),
    ]
    assert "Mara keeps the lighthouse alone" in story.description


def test_recurring_places_and_characters_become_one_entity() -> None:
    result = _read("the_crossing.fountain")
    story = result.story
    assert len(story.scenes) == 4
    assert [c.id for c in story.characters] == ["tom", "ines"]
    assert [e.id for e in story.environments] == ["harbour", "ferry-cabin", "open-sea"]
    assert story.scenes[0].environment_id == story.scenes[3].environment_id
    assert _dialogue_lines(story) == 8
    assert story.scenes[0].title == "Ines readies the ferry."
    assert story.scenes[1].dialogue[1].delivery == "off screen"
    assert [str(u) for u in result.unplaced] == [
        "line 4: transition before the first scene: FADE IN:",
        "line 56: transition after the last scene: FADE OUT.",
    ]


@pytest.mark.parametrize("name", ["spec_features.fountain", "the_crossing.fountain"])
def test_import_export_import_gives_the_same_graph(name: str) -> None:
    story = _read(name).story
    text = write_script(story)
    again = read_script(text, "written").story
    assert authored_content(again) == authored_content(story)
    assert write_script(again) == text  # and writing is stable


def test_example_story_round_trips_with_its_branch() -> None:
    story = example_story()
    again = read_script(write_script(story)).story
    assert authored_content(again) == authored_content(story)
    assert len({e.source for e in story.edges}) < len(story.edges)  # it branches


def _hostile_story() -> Story:
    cast = [
        Character(id="mara", name="Mara"),
        Character(id="mara-2", name="Mara", description="the other Mara"),
        Character(id="dr", name="Dr. (Who)", visual_attributes=["a [[note]]"]),
        Character(id="unused", name="Nobody", importance=2.0),
    ]
    places = [
        Environment(id="beach", name="Beach - North"),
        Environment(id="cave", name="cave", description="Dark, wet", lighting="dim"),
    ]
    scenes = [
        SceneNode(
            id="s1",
            title="INT. not a heading",
            environment_id="beach",
            character_ids=["mara", "mara-2"],
            lighting="Warm, golden",
            motion="INT. FAKE - DAY\n\nShe *shouts* _loudly_ \\ [[no]] /* x */\n"
            "THE END\n\n  indented\nCUT TO:",
            dialogue=[
                {
                    "character_id": "mara-2",
                    "text": "(not a paren)\n\nOk",
                    "delivery": "a (b)",
                },
                {"character_id": "dr", "text": "~la la", "delivery": ""},
            ],
            camera="tilt_up",
            seed=7,
            duration_s=3.5,
        ),
        SceneNode(id="s2", title="Nowhere", motion="", weather="snow"),
        SceneNode(
            id="s3",
            title="=Synopsis?",
            environment_id="cave",
            motion="!forced\n@cue\n.dot\n>gt<\n#hash",
        ),
    ]
    edges = [
        SceneEdge(source="s1", target="s2", transition="cut", strength=0.5),
        SceneEdge(source="s1", target="s3", transition="continuous"),
    ]
    return Story(
        title="A *bold* title",
        description="line one\nline two",
        characters=cast,
        environments=places,
        scenes=scenes,
        edges=edges,
    )


def test_any_text_round_trips() -> None:
    story = _hostile_story()
    text = write_script(story)
    again = read_script(text).story
    assert authored_content(again) == authored_content(story)


def test_a_story_line_is_written_alone() -> None:
    story = example_story()
    text = write_script(story, leaf="lamp-room")
    again = read_script(text).story
    assert [s.id for s in again.scenes] == ["arrival", "meeting", "climb", "lamp-room"]
    assert [(e.source, e.target) for e in again.edges] == [
        ("arrival", "meeting"),
        ("meeting", "climb"),
        ("climb", "lamp-room"),
    ]


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (b"INT. A - DAY\n\nx\n\n/* never closed\n\nMARA\nHi\n", 5, "Boneyard"),
        (b"INT. A - DAY\n\nHe waits. [[ an open note\n\nMARA\nHi\n", 3, "Note"),
        (b"INT. A - DAY\n\nCaf\xe9\n", 3, "not UTF-8"),
        (b"INT. A - DAY\n\nok\n\nbad \x1b[31m\n", 5, "control character"),
        (b"INT. A - DAY\n\n[[storygraph {oops}]]\n", 3, "not valid JSON"),
        (b'INT. A - DAY\n\n[[storygraph {"colour": 1}]]\n', 3, "'colour'"),
        (b'INT. A - DAY\n\n[[storygraph {"camera": "dolly"}]]\n', 3, "camera"),
        (b"Just some words.\n\nNo scenes here.\n", 1, "no scene heading"),
    ],
)
def test_a_malformed_file_names_the_line(data: bytes, line: int, message: str) -> None:
    with pytest.raises(ScriptError, match=message) as error:
        read_script_bytes(data, "bad.fountain")
    assert error.value.line == line
    assert f"bad.fountain, line {line}:" in str(error.value)
