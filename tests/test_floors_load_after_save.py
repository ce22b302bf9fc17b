"""A load of the bytes a save just wrote takes the story the save validated.

`kg.store.save_story` validates its text (`kg.parse.check_dump`); the next
`load_story` of exactly those bytes is handed that story instead of parsing
and validating again. It must be what the careful load builds, be handed out
once, never be handed out for other bytes, and never for a text the careful
loader refuses (`kg.parse.loads_as_dumped`).
"""

from __future__ import annotations

import warnings

import pytest

from kg.errors import StoryValidationError
from kg.parse import check_dump, dump_story, loads_as_dumped, parse_story_bytes
from kg.schema import (
    Character,
    GenerationParams,
    SceneEdge,
    SceneNode,
    Story,
    Take,
    TakeFiles,
)
from kg.store import load_story, save_story, state_path
from kg.strict_json import MAX_DEPTH, may_hold_escapes_or_long_numbers


def _story() -> Story:
    take = Take(
        index=1,
        params=GenerationParams(
            backend="animatic",
            prompt="a pier at dusk",
            seed=3,
            steps=1,
            guidance=1.0,
            width=96,
            height=64,
            num_frames=9,
            fps=8,
        ),
        files=TakeFiles(video="scenes/s1/take-1.mp4"),
        timings={"backend": 1.5},
    )
    return Story(
        title="floors",
        characters=[Character(id="ana", name="Ana", importance=2.0)],
        scenes=[
            SceneNode(
                id="s1",
                title="One",
                character_ids=["ana"],
                takes=[take],
                selected_take=1,
            ),
            SceneNode(id="s2", title="Two ✓"),
        ],
        edges=[SceneEdge(source="s1", target="s2")],
    )


def test_a_load_after_a_save_equals_the_careful_load(tmp_path) -> None:  # noqa: ANN001
    story = _story()
    save_story(story, tmp_path)
    data = state_path(tmp_path).read_bytes()
    loaded = load_story(tmp_path)
    careful = parse_story_bytes(data)
    assert loaded is not story
    assert loaded == careful
    assert dump_story(loaded) == dump_story(careful) == data.decode()
    assert loaded.revision == story.revision == 1


def test_the_saved_story_is_handed_out_once(tmp_path) -> None:  # noqa: ANN001
    save_story(_story(), tmp_path)
    first, second = load_story(tmp_path), load_story(tmp_path)
    assert first is not second
    assert first == second
    first.title = "changed by its holder"
    assert load_story(tmp_path).title == "floors"


def test_bytes_changed_on_disk_are_parsed(tmp_path) -> None:  # noqa: ANN001
    save_story(_story(), tmp_path)
    file = state_path(tmp_path)
    file.write_text(file.read_text().replace('"floors"', '"edited elsewhere"'))
    assert load_story(tmp_path).title == "edited elsewhere"


def test_a_saved_duplicate_key_is_still_refused_on_load(tmp_path) -> None:  # noqa: ANN001
    story = _story()
    timings = story.scenes[0].takes[0].timings
    timings[1] = 0.5  # type: ignore[index]  # dict edits skip validation
    timings["1"] = 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic warns about the int key
        save_story(story, tmp_path)
    assert state_path(tmp_path).read_text().count('"1": ') == 2
    with pytest.raises(StoryValidationError, match="duplicate key"):
        load_story(tmp_path)


def test_loads_as_dumped_doubts_what_the_json_layer_may_refuse() -> None:
    story = _story()
    text = dump_story(story)
    validated = check_dump(text)
    assert validated is not None
    assert loads_as_dumped(text, validated)
    # not the story's own dump (here: another title)
    assert not loads_as_dumped(text.replace('"floors"', '"other"'), validated)
    # an escape, a long number, a deep line, a long line: the careful way
    assert not loads_as_dumped(text[:-2] + '"\\ud800"}\n', validated)
    assert not loads_as_dumped(text.replace('"floors"', '"NaN floors"'), validated)
    assert not loads_as_dumped(text[:-2] + " 1234567890123456789012}\n", validated)
    deep = "\n" + " " * (2 * MAX_DEPTH) + "1"
    assert not loads_as_dumped(text[:-2] + deep + "}\n", validated)
    assert not loads_as_dumped(text[:-2] + '"' + "x" * 100_000 + '"}\n', validated)


def test_the_escape_and_number_scan() -> None:
    assert not may_hold_escapes_or_long_numbers('{"a": 12345678901234567890}')
    assert may_hold_escapes_or_long_numbers('{"a": 123456789012345678901}')
    assert may_hold_escapes_or_long_numbers('{"a": "-123456789012345678901"}')
    assert may_hold_escapes_or_long_numbers('{"a": "\\udc00"}')
    assert not may_hold_escapes_or_long_numbers('{"a": "\\u00e9 é"}')
