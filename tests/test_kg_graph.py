"""Scene graph edits and queries, memory decay, prompt order and budget."""

from __future__ import annotations

import pytest

from kg.errors import CycleError, StoryError
from kg.example import example_story
from kg.graph import (
    DynamicSceneGraph,
    ancestor_path,
    continuity_predecessor,
    continuous_descendants,
    generation_order,
    mark_stale_descendants,
)
from kg.memory import remembered, salience_timeline, scene_salience, story_memory
from kg.prompt import build_prompt, count_tokens
from kg.schema import Character, DecaySettings, Environment, SceneNode, Settings, Story


def chain(n: int, **decay: float) -> DynamicSceneGraph:
    story = Story(
        title="chain",
        settings=Settings(decay=DecaySettings(**decay)),
        characters=[
            Character(id="ana", name="Ana", visual_attributes=["red scarf"]),
            Character(id="bo", name="Bo", importance=2.0),
        ],
        environments=[Environment(id="pier", name="the pier")],
    )
    g = DynamicSceneGraph(story)
    for i in range(n):
        g.add_scene(
            SceneNode(id=f"s{i}", title=f"S{i}"), after=f"s{i - 1}" if i else None
        )
    return g


def test_example_order_branch_and_paths() -> None:
    g = DynamicSceneGraph(example_story())
    assert generation_order(g) == [
        "arrival",
        "meeting",
        "climb",
        "lamp-room",
        "cliff-edge",
        "dawn",
    ]
    assert ancestor_path(g, "dawn") == [
        "arrival",
        "meeting",
        "climb",
        "cliff-edge",
        "dawn",
    ]
    assert continuity_predecessor(g, "cliff-edge") is None  # a cut
    assert continuity_predecessor(g, "dawn") == "cliff-edge"
    assert continuous_descendants(g, "meeting") == ["climb", "lamp-room"]


def test_cycles_and_second_continuous_input_refused() -> None:
    g = DynamicSceneGraph(example_story())
    with pytest.raises(CycleError, match="loop back"):
        g.connect("dawn", "arrival")
    with pytest.raises(CycleError):
        g.connect("dawn", "dawn")
    with pytest.raises(StoryError, match="already continues"):
        g.connect("arrival", "climb", "continuous")
    g.connect("arrival", "climb", "cut")
    assert len(g.story.edges) == 6


def test_insert_remove_and_reorder_keep_story_in_step() -> None:
    g = chain(4)
    g.insert_after(SceneNode(id="new", title="New"), after="s1")
    assert ancestor_path(g, "s3") == ["s0", "s1", "new", "s2", "s3"]
    g.remove_scene("new")
    assert ancestor_path(g, "s3") == ["s0", "s1", "s2", "s3"]
    g.move_after("s1", "s3")
    assert ancestor_path(g, "s1") == ["s0", "s2", "s3", "s1"]
    # the graph and the story agree after every edit
    assert {(e.source, e.target) for e in g.story.edges} == set(g.g.edges)
    assert [s.id for s in g.story.scenes] and set(g.g.nodes) == {
        s.id for s in g.story.scenes
    }
    Story.model_validate(g.story.model_dump())  # still a valid story


def test_stale_propagates_along_continuous_edges_only() -> None:
    g = DynamicSceneGraph(example_story())
    for s in g.story.scenes:
        s.status = "done"
    assert mark_stale_descendants(g, "arrival") == ["meeting", "climb", "lamp-room"]
    assert g.scene("cliff-edge").status == "done"  # behind a cut
    assert g.scene("dawn").status == "done"


def test_decay_matches_hand_computed_values() -> None:
    g = chain(6, rate=0.5, threshold=0.3, reinforcement=0.5, max_importance=3.0)
    g.scene("s0").character_ids = ["ana", "bo"]
    g.scene("s1").character_ids = ["ana"]
    g.scene("s1").environment_id = "pier"
    mem = {m.key: m for m in story_memory(g, "s4")}
    # ana: importance 1 + 0.5 (seen twice), last at s1 -> distance 3
    assert mem["character:ana"].salience == pytest.approx(1.5 * 0.5**3)
    # bo: importance 2, last at s0 -> distance 4
    assert mem["character:bo"].salience == pytest.approx(2.0 * 0.5**4)
    assert mem["environment:pier"].salience == pytest.approx(1.0 * 0.5**3)
    assert not mem["character:ana"].remembered  # 0.1875 < 0.3
    at_s2 = {m.key: m for m in story_memory(g, "s2")}
    assert at_s2["character:ana"].salience == pytest.approx(0.75)
    assert at_s2["character:ana"].remembered
    # bo (2 * 0.5**2) and pier (1 * 0.5) tie at 0.5: ties sort by key
    assert [m.key for m in remembered(g, "s2")] == [
        "character:ana",
        "character:bo",
        "environment:pier",
    ]


def test_reinforcement_is_capped() -> None:
    g = chain(10, rate=0.9, reinforcement=1.0, max_importance=2.5)
    for i in range(10):
        g.scene(f"s{i}").character_ids = ["ana"]
    (ana,) = story_memory(g, "s9")
    assert ana.importance == 2.5 and ana.distance == 0 and ana.appearances == 10


def test_memory_follows_the_branch() -> None:
    g = DynamicSceneGraph(example_story())
    # lamp-room's path never visits cliff-edge or dawn
    keys = {m.key for m in story_memory(g, "lamp-room")}
    assert keys == {
        "character:mara",
        "character:keeper",
        "environment:harbour",
        "environment:lighthouse",
    }
    timeline = salience_timeline(g, "dawn")
    assert [sid for sid, _ in timeline] == ancestor_path(g, "dawn")
    values = scene_salience(g)
    assert set(values) == set(g.g.nodes) and all(0 <= v <= 1 for v in values.values())


def test_prompt_order_motion_first_and_deterministic() -> None:
    g = DynamicSceneGraph(example_story())
    p = build_prompt(g, "meeting")
    kinds = [part.kind for part in p.parts]
    assert kinds[0] == "motion"
    assert kinds.index("character") < kinds.index("environment") < kinds.index("style")
    assert p.text.startswith("The keeper raises his lantern")
    assert "falling rain" in p.text and "slowly pushes in" in p.text
    assert build_prompt(g, "meeting") == p
    # remembered entities come last
    lamp = build_prompt(g, "lamp-room")
    memory = [part.text for part in lamp.parts if part.kind == "memory"]
    assert [part.kind for part in lamp.parts[-2:]] == ["memory", "memory"]
    assert memory[0].startswith("Mara") and "harbour" in memory[1]


def test_prompt_budget_drops_least_salient_first() -> None:
    g = DynamicSceneGraph(example_story())
    full = build_prompt(g, "lamp-room", budget=1000)
    assert not full.dropped
    tight = build_prompt(g, "lamp-room", budget=full.tokens - 5)
    assert tight.tokens <= full.tokens - 5
    assert tight.dropped[0].kind == "memory"
    assert min(p.priority for p in tight.dropped) <= min(
        p.priority for p in tight.parts
    )
    tiny = build_prompt(g, "lamp-room", budget=8)
    assert tiny.tokens <= 8 and tiny.parts[0].kind == "motion"
    assert tiny.text.startswith("The old keeper")


def test_prompt_override_used_verbatim() -> None:
    g = DynamicSceneGraph(example_story())
    g.scene("dawn").prompt_override = "A custom shot of boats."
    p = build_prompt(g, "dawn")
    assert p.text == "A custom shot of boats." and p.parts[0].kind == "override"
    assert count_tokens(p.text) == p.tokens
