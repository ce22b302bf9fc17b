"""The selected scene survives a page change, a new session and a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from studio import services
from studio.session import STORY_KEY
from studio.testing import page_test
from studio.views.storyboard import SELECTED_KEY

PAGE_KEY = "test.page"


def _two_pages() -> None:
    """Storyboard or Cast, as the navigation would run them in one session."""
    import streamlit as st

    from studio.views.cast import cast_page
    from studio.views.storyboard import storyboard_page

    page = st.session_state.get("test.page", "storyboard")
    (storyboard_page if page == "storyboard" else cast_page)()


@pytest.fixture
def example(outputs: Path) -> Path:
    return services.create_story("lighthouse", "", example=True)


def test_the_selection_survives_a_page_change(example: Path) -> None:
    at = AppTest.from_function(_two_pages, default_timeout=60)
    at.session_state[STORY_KEY] = str(example)
    at.run()
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    assert at.query_params["scene"] == "meeting"
    at.session_state[PAGE_KEY] = "cast"
    at.run()
    assert not at.exception
    assert SELECTED_KEY not in at.session_state  # Streamlit dropped the widget
    assert at.query_params["scene"] == "meeting"  # the URL keeps the scene
    at.session_state[PAGE_KEY] = "storyboard"
    at.run()
    assert at.selectbox(key=SELECTED_KEY).value == "meeting"
    assert at.subheader[0].value == "Scene · meeting"


def test_a_new_session_opens_the_scene_in_its_url(example: Path) -> None:
    # a reload, a bookmark or a restarted studio: only the URL is left
    at = page_test("storyboard")
    at.query_params["story"] = example.name
    at.query_params["scene"] = "climb"
    at.run()
    assert not at.exception
    assert at.selectbox(key=SELECTED_KEY).value == "climb"


def test_an_unknown_scene_in_the_url_falls_back_to_the_first(example: Path) -> None:
    at = page_test("storyboard")
    at.query_params["story"] = example.name
    at.query_params["scene"] = "no-such-scene"
    at.run()
    assert at.selectbox(key=SELECTED_KEY).value == "arrival"
    assert at.query_params["scene"] == "arrival"
