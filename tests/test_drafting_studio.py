"""AppTest of the studio's screenplay and drafting buttons.

Stories: "New from script" (a Fountain upload; a malformed file names its
line) and "New from logline". Storyboard: "Rewrite for the model" and
"Propose next scene" against a local fake OpenAI-compatible server, each
field accepted on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

from kg.settings import DraftingSettings
from kg.store import load_story, update_story
from studio import services
from studio.testing import page_test, shown_text
from tests.llm_fake import ChatScript, FakeChatServer
from tests.test_drafting import NEXT, REWRITE

DATA = Path(__file__).parent / "data" / "fountain"


def _upload(at, name: str, data: bytes) -> None:  # noqa: ANN001 - AppTest
    at.file_uploader(key="stories.script.file").upload(name, data, "text/plain")
    at.button(key="FormSubmitter:stories.script-Create from script").click().run()


def test_new_from_script_creates_the_story(outputs: Path) -> None:
    at = page_test("stories").run()
    at.text_input(key="stories.script.slug").input("crossing")
    data = (DATA / "the_crossing.fountain").read_bytes()
    _upload(at, "the_crossing.fountain", data)
    assert not at.exception
    story = load_story(outputs / "crossing")
    assert (len(story.scenes), len(story.characters)) == (4, 2)
    assert "line 4: transition before the first scene" in shown_text(at)


def test_new_from_script_names_the_line_of_a_malformed_file(outputs: Path) -> None:
    at = page_test("stories").run()
    _upload(at, "broken.fountain", b"INT. A - DAY\n\nx\n\n/* never closed\n")
    assert not at.exception
    assert "broken.fountain, line 5" in shown_text(at)
    assert not (outputs / "broken").exists()


def test_new_from_logline_drafts_then_creates(outputs: Path) -> None:
    answer = {
        "title": "Night Ferry",
        "description": "A crossing.",
        "characters": [{"name": "Ines", "description": "", "visual_attributes": []}],
        "environments": [
            {
                "name": "Deck",
                "description": "",
                "lighting": "",
                "default_weather": "fog",
            }
        ],
        "scenes": [
            {
                **NEXT,
                "characters": ["Ines"],
                "environment": "Deck",
                "dialogue": [],
                "transition": "cut",
            }
        ],
    }
    with FakeChatServer(ChatScript(contents=[json.dumps(answer)])) as server:
        at = page_test("stories").run()
        at.text_area(key="stories.logline.text").input("A sailor crosses at night.")
        at.text_input(key="stories.logline.endpoint").input(server.url)
        at.text_input(key="stories.logline.model").input("llama3.1")
        at.button(key="FormSubmitter:stories.logline-Draft a story").click().run()
    assert not at.exception
    assert "Night Ferry" in shown_text(at)
    assert not (outputs / "night-ferry").exists()  # nothing before Create
    at.button(key="stories.logline.create").click().run()
    assert not at.exception
    story = load_story(outputs / "night-ferry")
    assert [s.title for s in story.scenes] == [NEXT["title"]]
    assert story.model_calls[0].purpose == "logline"


def _example(outputs: Path, url: str) -> Path:
    folder = services.create_story("lighthouse", "", example=True)

    def point(story):  # noqa: ANN001, ANN202
        story.settings.drafting = DraftingSettings(endpoint=url, model="llama3.1")

    update_story(folder, point)
    return folder


def test_rewrite_for_the_model_accepts_one_field(outputs: Path) -> None:
    with FakeChatServer(ChatScript(contents=[json.dumps(REWRITE)])) as server:
        folder = _example(outputs, server.url)
        at = page_test("storyboard", folder).run()
        before = load_story(folder).scene("arrival")
        at.button(key="storyboard.rewrite").click().run()
    assert not at.exception
    assert "Proposal: Rewrite of arrival" in shown_text(at)
    assert load_story(folder).scene("arrival").camera == before.camera
    at.button(key="storyboard.proposal.accept.camera").click().run()
    assert not at.exception
    after = load_story(folder).scene("arrival")
    assert after.camera == "zoom_in"
    assert after.model_dump(exclude={"camera"}) == before.model_dump(exclude={"camera"})
    assert at.button(key="storyboard.proposal.accept.motion")  # still proposed


def test_propose_next_scene_adds_it_on_accept(outputs: Path) -> None:
    with FakeChatServer(ChatScript(contents=[json.dumps(NEXT)])) as server:
        folder = _example(outputs, server.url)
        at = page_test("storyboard", folder).run()
        at.button(key="storyboard.propose_next").click().run()
    assert not at.exception
    scenes = len(load_story(folder).scenes)
    at.button(key="storyboard.proposal.accept.title").click().run()
    assert not at.exception
    story = load_story(folder)
    assert len(story.scenes) == scenes + 1
    assert any(s.title == NEXT["title"] for s in story.scenes)


def test_a_refused_answer_shows_why_and_changes_nothing(outputs: Path) -> None:
    bad = json.dumps({**REWRITE, "motion": "<img src=x onerror=alert(1)>"})
    with FakeChatServer(ChatScript(contents=[bad])) as server:
        folder = _example(outputs, server.url)
        at = page_test("storyboard", folder).run()
        at.button(key="storyboard.rewrite").click().run()
    assert not at.exception
    assert "Nothing was changed" in shown_text(at)
    assert "markup" in shown_text(at)


def test_the_open_story_downloads_as_fountain(outputs: Path) -> None:
    folder = services.create_story("lighthouse", "", example=True)
    at = page_test("stories", folder).run()
    assert not at.exception
    assert at.get("download_button")  # the open story as a screenplay
