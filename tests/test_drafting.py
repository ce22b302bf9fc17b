"""Drafting with a language model against a local fake OpenAI-compatible server.

A good answer becomes a proposal and changes nothing until a field is
accepted; an answer that breaks the schema, names unknown characters, or
holds markup or control characters is refused with a message and changes
nothing; accepting one field changes only that field; the budget refuses a
call that would go over it; every call's tokens and cost are recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.budget import spent
from engine.drafting import (
    AnswerRefused,
    DraftingError,
    accept_fields,
    draft_story,
    propose_next_scene,
    propose_rewrite,
)
from engine.errors import BudgetExceededError
from kg.edits import save_scene
from kg.example import example_story
from kg.fountain import authored_content
from kg.settings import DraftingSettings, TokenPrice
from kg.store import load_story, save_story, update_story
from tests.llm_fake import ChatScript, FakeChatServer

NEXT = {
    "title": "The ship comes in",
    "characters": ["Mara", "the old keeper"],
    "environment": "the harbour",
    "motion": "A battered trawler glides into the harbour as Mara runs down the quay.",
    "camera": "pan_left",
    "lighting": "grey morning light",
    "weather": "overcast",
    "pose": "Mara waving both arms",
    "dialogue": [{"speaker": "Mara", "text": "They made it!", "delivery": "shouting"}],
}
REWRITE = {
    "motion": "Mara steps off the ferry onto the wet quay, suitcase in hand.",
    "camera": "zoom_in",
    "lighting": "soft afternoon light",
}


def _story(tmp_path: Path, url: str, **drafting: object) -> Path:
    story = example_story()
    story.settings.drafting = DraftingSettings(
        endpoint=url, model="llama3.1", **drafting
    )
    folder = tmp_path / "story"
    save_story(story, folder)
    return folder


def _content(folder: Path) -> dict:
    return authored_content(load_story(folder))


def test_next_scene_becomes_a_proposal_and_changes_nothing(tmp_path: Path) -> None:
    script = ChatScript(contents=[json.dumps(NEXT)])
    with FakeChatServer(script) as server:
        folder = _story(tmp_path, server.url)
        before = _content(folder)
        proposal = propose_next_scene(folder, "dawn")
    assert _content(folder) == before  # nothing written but the call's record
    fields = {c.field: c.after for c in proposal.changes}
    assert fields["character_ids"] == ["mara", "keeper"]
    assert fields["environment_id"] == "harbour"
    assert fields["dialogue"] == [
        {"character_id": "mara", "text": "They made it!", "delivery": "shouting"}
    ]
    body = script.bodies[0]
    assert body["model"] == "llama3.1"
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]["schema"]
    assert set(schema["required"]) >= {"title", "motion", "camera", "characters"}
    calls = load_story(folder).model_calls
    assert [
        (c.purpose, c.prompt_tokens, c.completion_tokens, c.outcome) for c in calls
    ] == [("next_scene", 1000, 200, "proposed")]


def test_accepting_one_field_changes_only_that_field(tmp_path: Path) -> None:
    with FakeChatServer(ChatScript(contents=[json.dumps(REWRITE)])) as server:
        folder = _story(tmp_path, server.url)
        proposal = propose_rewrite(folder, "arrival")
    before = load_story(folder).scene("arrival")
    rest = accept_fields(folder, proposal, ["camera"])
    after = load_story(folder).scene("arrival")
    assert after.camera == "zoom_in"
    assert after.model_dump(exclude={"camera"}) == before.model_dump(exclude={"camera"})
    assert {c.field for c in rest.changes} == {"motion", "lighting"}
    # the user edits the motion meanwhile: accepting it is refused, the edit kept
    save_scene(folder, "arrival", {"motion": "my own words"})
    with pytest.raises(ValueError, match="motion changed since the proposal"):
        accept_fields(folder, rest, ["motion"])
    assert load_story(folder).scene("arrival").motion == "my own words"


def test_next_scene_is_added_on_the_first_accepted_field(tmp_path: Path) -> None:
    with FakeChatServer(ChatScript(contents=[json.dumps(NEXT)])) as server:
        folder = _story(tmp_path, server.url)
        proposal = propose_next_scene(folder, "dawn")
    rest = accept_fields(folder, proposal, ["title", "motion"])
    story = load_story(folder)
    new = story.scene(rest.new_scene_id)
    assert (new.title, new.motion) == (NEXT["title"], NEXT["motion"])
    assert new.camera == "static" and new.dialogue == []  # not accepted
    assert any(e.source == "dawn" and e.target == new.id for e in story.edges)
    rest = accept_fields(folder, rest, ["camera"])
    assert load_story(folder).scene(new.id).camera == "pan_left"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("not json at all", "not valid JSON"),
        (json.dumps({**NEXT, "camera": "dolly_zoom"}), "camera"),
        (json.dumps({k: v for k, v in NEXT.items() if k != "motion"}), "motion"),
        (json.dumps({**NEXT, "extra": 1}), "extra"),
        (json.dumps({**NEXT, "characters": ["Mara", "Zed"]}), "unknown characters"),
        (
            json.dumps(
                {
                    **NEXT,
                    "dialogue": [{"speaker": "Ghost", "text": "Boo", "delivery": ""}],
                }
            ),
            "'Ghost'",
        ),
        (json.dumps({**NEXT, "environment": "the moon"}), "unknown environments"),
        (
            json.dumps({**NEXT, "motion": "Mara <script>alert(1)</script> runs"}),
            "markup",
        ),
        (json.dumps({**NEXT, "title": "[click](http://x.test)"}), "markup"),
        (json.dumps({**NEXT, "motion": "Mara runs\u001b[31m"}), "control character"),
        (json.dumps({**NEXT, "title": "Tab\there"}), "control character"),
        (json.dumps({**NEXT, "title": "evil\u202eeman"}), "direction-changing"),
    ],
)
def test_bad_or_unsafe_answers_are_refused_and_change_nothing(
    tmp_path: Path, answer: str, message: str
) -> None:
    with FakeChatServer(ChatScript(contents=[answer])) as server:
        folder = _story(tmp_path, server.url)
        before = _content(folder)
        with pytest.raises(AnswerRefused, match=message) as refused:
            propose_next_scene(folder, "dawn")
    assert "nothing was changed" in str(refused.value).lower()
    assert _content(folder) == before
    calls = load_story(folder).model_calls
    assert [c.outcome for c in calls] == ["refused"]  # its tokens were spent


def test_an_answer_cut_at_max_tokens_is_refused(tmp_path: Path) -> None:
    script = ChatScript(contents=[json.dumps(REWRITE)[:20]], finish_reason="length")
    with FakeChatServer(script) as server:
        folder = _story(tmp_path, server.url)
        with pytest.raises(AnswerRefused, match="cut at 2048 tokens"):
            propose_rewrite(folder, "arrival")


def test_a_server_without_structured_output_is_asked_again(tmp_path: Path) -> None:
    fenced = "```json\n" + json.dumps(REWRITE) + "\n```"
    script = ChatScript(contents=[fenced], statuses=[400])
    with FakeChatServer(script) as server:
        folder = _story(tmp_path, server.url)
        proposal = propose_rewrite(folder, "arrival")
    assert "response_format" not in script.bodies[1]
    assert "JSON schema" in script.bodies[1]["messages"][0]["content"]
    assert {c.field for c in proposal.changes} == {"motion", "camera", "lighting"}


def test_cost_is_recorded_and_the_budget_refuses_before_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORY_LLM_KEY", "sk-test-secret")
    script = ChatScript(contents=[json.dumps(REWRITE)], usage=(10_000, 1_000))
    price = {"llama3.1": TokenPrice(input=1.0, output=3.0)}
    with FakeChatServer(script) as server:
        folder = _story(tmp_path, server.url, prices=price, api_key_env="STORY_LLM_KEY")
        propose_rewrite(folder, "arrival")
        story = load_story(folder)
        assert story.model_calls[0].cost.usd == pytest.approx(0.013)
        assert spent(story) == pytest.approx(0.013)
        assert script.auth[0] == "Bearer sk-test-secret"

        def tight(s):  # noqa: ANN001, ANN202
            s.settings.hosted.budget_usd = 0.015

        update_story(folder, tight)
        with pytest.raises(BudgetExceededError, match="budget"):
            propose_rewrite(folder, "arrival")
    assert len(script.bodies) == 1  # refused before anything was sent
    assert len(load_story(folder).model_calls) == 1


def test_no_price_for_a_remote_model_is_refused_under_a_budget(tmp_path: Path) -> None:
    folder = tmp_path / "story"
    story = example_story()
    story.settings.drafting = DraftingSettings(
        endpoint="https://llm.example.invalid/v1", model="big-model"
    )
    story.settings.hosted.budget_usd = 5.0
    save_story(story, folder)
    with pytest.raises(BudgetExceededError, match="no price"):
        propose_rewrite(folder, "arrival")


def test_unreachable_server_and_missing_model_say_what_to_do(tmp_path: Path) -> None:
    with FakeChatServer(ChatScript()) as server:
        url = server.url
    folder = _story(tmp_path, url, timeout_s=5)
    with pytest.raises(DraftingError, match="could not reach"):
        propose_rewrite(folder, "arrival")
    story = example_story()
    story.settings.drafting = DraftingSettings(endpoint=url)
    save_story(story, tmp_path / "other")
    with pytest.raises(DraftingError, match="Drafting model"):
        propose_rewrite(tmp_path / "other", "arrival")


def test_a_story_is_drafted_from_a_logline(tmp_path: Path) -> None:
    answer = {
        "title": "Night Ferry",
        "description": "Two strangers cross a dark sea.",
        "characters": [
            {"name": "Ines", "description": "a sailor", "visual_attributes": ["cap"]},
            {"name": "Tom", "description": "a boy", "visual_attributes": []},
        ],
        "environments": [
            {
                "name": "Deck",
                "description": "wet planks",
                "lighting": "moonlight",
                "default_weather": "fog",
            }
        ],
        "scenes": [
            {
                **NEXT,
                "title": "Boarding",
                "characters": ["Ines"],
                "environment": "Deck",
                "dialogue": [],
                "transition": "cut",
            },
            {
                **NEXT,
                "title": "Crossing",
                "characters": ["Ines", "Tom"],
                "environment": "Deck",
                "dialogue": [{"speaker": "Tom", "text": "Look!", "delivery": ""}],
                "transition": "continuous",
            },
        ],
    }
    settings_url = None
    with FakeChatServer(ChatScript(contents=[json.dumps(answer)])) as server:
        settings_url = server.url
        draft = draft_story(
            "A sailor and a boy cross at night.",
            DraftingSettings(endpoint=settings_url, model="m"),
        )
        bad = {**answer, "scenes": [{**answer["scenes"][0], "characters": ["Zed"]}]}
        server.script.contents = [json.dumps(bad)]
        with pytest.raises(AnswerRefused, match="unknown characters"):
            draft_story("x", DraftingSettings(endpoint=settings_url, model="m"))
    story = draft.story
    assert [s.title for s in story.scenes] == ["Boarding", "Crossing"]
    assert [(e.source, e.target, e.transition) for e in story.edges] == [
        ("scene-1", "scene-2", "continuous")
    ]
    assert story.scenes[1].character_ids == ["ines", "tom"]
    assert story.model_calls[0].purpose == "logline"
