"""Structure edits say which successor the main line follows; the save bar
confirms beside its button."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.graph import DynamicSceneGraph
from kg.lines import main_line
from kg.store import load_story
from studio import services
from studio.components.structure import OPEN_KEY
from studio.testing import page_test, shown_text
from studio.views.storyboard import SELECTED_KEY, editor_key


@pytest.fixture
def example(outputs: Path) -> Path:
    return services.create_story("lighthouse", "", example=True)


def test_a_second_continuous_successor_is_made_explicit(example: Path) -> None:
    at = page_test("storyboard", example).run()
    radios = [r.key for r in at.get("radio")]
    assert "storyboard.connect_transition" not in radios  # closed: nothing drawn
    at.session_state[OPEN_KEY] = True
    at.selectbox(key=SELECTED_KEY).set_value("climb").run()
    assert "flows on into" not in shown_text(at)  # one continuous, one cut
    at.button(key="storyboard.edge.cliff-edge.toggle").click().run()
    assert not at.exception
    story = load_story(example)
    follows = main_line(DynamicSceneGraph(story)).scenes
    assert "lamp-room" in follows and "cliff-edge" not in follows
    text = shown_text(at)
    assert "flows on into 2 scenes" in text
    assert "The main line (the first film on Screening) follows" in text
    assert "The light goes out (lamp-room)" in text  # the one it follows
    assert "· main line" in text  # marked in the list of successors
    at.session_state[OPEN_KEY] = False
    at.run()
    assert "flows on into 2 scenes" in shown_text(at)  # said with the panel closed


def test_the_save_confirmation_sits_beside_the_button(example: Path) -> None:
    at = page_test("storyboard", example).run()
    at.text_input(key=editor_key("arrival", "pose")).input("kneeling").run()
    at.button(key="storyboard.save").click().run()
    assert not at.exception
    bar = at.main.get("caption")
    assert any("Saved arrival." in c.value for c in bar)
    assert not at.success  # not a notice at the top of the page, out of view
