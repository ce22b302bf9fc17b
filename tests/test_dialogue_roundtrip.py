"""The dialogue box is a faithful round trip: whatever the names (shared, equal
after case folding, with ``:``, parentheses, backslashes, line breaks), the
words (line breaks, quotes, white space at the ends) and the deliveries hold,
the text the editor shows reads back as exactly the same lines, and saving an
untouched scene (or one where only another field changed) moves no line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kg.dialogue import MAX_DIALOGUE_TEXT, dialogue_text, parse_dialogue
from kg.schema import MAX_DIALOGUE_LINES, Character, DialogueLine
from kg.store import load_story, update_story
from studio import services
from studio.testing import page_test, shown_text
from studio.views.storyboard import SELECTED_KEY, editor_key

# What makes the format hard, drawn often; then any text the schema takes.
_HARD = list(":()\\ \t\n\r\u2028\u2029\u00a0\u3000nr\"'") + ["\r\n", "\\n", "\\:"]
_ANY = st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\t\n\r")
_TEXT = st.lists(st.sampled_from(_HARD) | _ANY, max_size=12).map("".join)
_NAMES = st.sampled_from(
    [
        "Mara",
        "mara",
        "MARA",
        " Mara ",
        "Ma:ra",
        "Mara (old)",
        "Mara (",
        ")",
        "A\\B",
        "x\\",
        "Ann\nLee",
        "Straße",
        "STRASSE",
        "tom",
        "Tom",
        "Ωμέγα",
        "\\n",
        "  ",
    ]
)
_IDS = st.sampled_from(["mara", "mara-2", "tom", "a", "strasse", "0", "x_1"])


def _valid(make, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    try:
        return make(*args, **kwargs)
    except ValidationError:
        return None


@st.composite
def casts(draw: st.DrawFn) -> tuple[list[Character], list[DialogueLine]]:
    ids = draw(st.lists(_IDS, min_size=1, max_size=5, unique=True))
    characters = []
    for cid in ids:
        name = draw(_NAMES | _TEXT.filter(lambda t: t.strip() != ""))
        character = _valid(Character, id=cid, name=name[:80])
        characters.append(character or Character(id=cid, name=cid.upper()))
    lines = []
    for _ in range(draw(st.integers(0, MAX_DIALOGUE_LINES))):
        line = _valid(
            DialogueLine,
            character_id=draw(st.sampled_from(ids)),
            text=draw(_TEXT | _NAMES),
            delivery=draw(st.just("") | _TEXT | _NAMES)[:80],
        )
        if line is not None:
            lines.append(line)
    return characters, lines


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(casts())
def test_format_then_parse_is_the_same_lines(
    cast: tuple[list[Character], list[DialogueLine]],
) -> None:
    characters, lines = cast
    text = dialogue_text(lines, characters)
    assert len(text) <= MAX_DIALOGUE_TEXT
    parsed, problems = parse_dialogue(text, characters)
    assert problems == []
    assert [DialogueLine(**p) for p in parsed] == lines, text


def test_shared_and_case_folded_names_are_written_by_id() -> None:
    cast = [
        Character(id="mara", name="Mara"),
        Character(id="mara-2", name="MARA"),
        Character(id="tom", name="Tom"),
    ]
    lines = [
        DialogueLine(character_id="mara-2", text="Me?"),
        DialogueLine(character_id="mara", text="You.", delivery="softly"),
        DialogueLine(character_id="tom", text="Both."),
    ]
    assert dialogue_text(lines, cast) == "mara-2: Me?\nmara (softly): You.\nTom: Both."
    # a shared name typed is a problem naming the ids, never a guess
    parsed, problems = parse_dialogue("Mara: hi\nmara: hi\ntom: hi", cast)
    assert [p["character_id"] for p in parsed] == ["mara", "tom"]
    assert problems == [
        (
            "dialogue line 1",
            "'Mara' is the name of 2 characters; write the id of the one who "
            "speaks: mara, mara-2",
        )
    ]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Mara: hi", ("mara", "hi", "")),
        ("  Mara (quietly) :   hi  there  ", ("mara", "hi  there", "quietly")),
        ("Dr\\: Who (a \\(b\\)): x: y", ("doc", "x: y", "a (b)")),
        ("Dr\\: Who: C:\\temp\\new", ("doc", "C:\\temp\new", "")),
        ("Mara: line\\nbreak \\\\n", ("mara", "line\nbreak \\n", "")),
        ("Mara: \\  padded\\ ", ("mara", "  padded ", "")),
        ("Mara (): plain", ("mara", "plain", "")),
    ],
)
def test_typed_rows(typed: str, expected: tuple[str, str, str]) -> None:
    cast = [Character(id="mara", name="Mara"), Character(id="doc", name="Dr: Who")]
    parsed, problems = parse_dialogue(typed, cast)
    assert problems == []
    assert [(p["character_id"], p["text"], p["delivery"]) for p in parsed] == [expected]


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("no colon", "Name: words"),
        (": words", "no speaker"),
        ("Mara:   ", "no words after 'Mara'"),
        ("Mara quietly): hi", "')' without its '('"),
        ("Nobody: hi", "unknown speaker 'Nobody'; use one of: Mara, Tom"),
    ],
)
def test_rows_that_cannot_be_read_name_the_row(typed: str, why: str) -> None:
    cast = [Character(id="mara", name="Mara"), Character(id="tom", name="Tom")]
    parsed, problems = parse_dialogue(f"Tom: first\n\n{typed}", cast)
    assert len(parsed) == 1 and len(problems) == 1
    assert problems[0][0] == "dialogue line 3" and why in problems[0][1]


HOSTILE_CAST = [
    Character(id="mara", name="Mara"),
    Character(id="mara-2", name="mara"),
    Character(id="doc", name="Dr. (Ret.) Smith: MD"),
    Character(id="nl", name="Ann\nLee"),
]
HOSTILE_LINES = [
    DialogueLine(character_id="mara-2", text="Who's there?"),
    DialogueLine(character_id="mara", text="Me.\nOnly me.", delivery="whisper (low)"),
    DialogueLine(character_id="doc", text='Say "ah": wide', delivery="a) b"),
    DialogueLine(character_id="nl", text=" C:\\new ", delivery=" "),
]


@pytest.fixture
def hostile(outputs: Path) -> Path:
    folder = services.create_story("lighthouse", "", example=True)

    def cast(story) -> None:  # noqa: ANN001 - kg.schema.Story
        story.characters = HOSTILE_CAST
        for scene in story.scenes:
            scene.character_ids = []
        story.scene("meeting").dialogue = HOSTILE_LINES

    update_story(folder, cast)
    return folder


def test_saving_an_untouched_scene_in_the_editor_moves_no_line(hostile: Path) -> None:
    at = page_test("storyboard", hostile).run()
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    assert not at.exception and not at.error, shown_text(at)
    shown = at.text_area(key=editor_key("meeting", "dialogue")).value
    assert shown.startswith("mara-2: Who's there?\nmara (whisper \\(low\\)): Me.\\n")
    at.button(key="storyboard.save").click().run()
    assert not at.exception and not at.error
    assert load_story(hostile).scene("meeting").dialogue == HOSTILE_LINES
    # another field changed: the dialogue goes through the box and stays the same
    at.text_input(key=editor_key("meeting", "title")).input("Renamed").run()
    at.button(key="storyboard.save").click().run()
    assert not at.exception and not at.error, shown_text(at)
    scene = load_story(hostile).scene("meeting")
    assert scene.title == "Renamed" and scene.dialogue == HOSTILE_LINES
    # and the box shows the same text again
    again = page_test("storyboard", hostile).run()
    again.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    assert again.text_area(key=editor_key("meeting", "dialogue")).value == shown
