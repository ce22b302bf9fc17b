"""`kg.memory.story_memory` (vectorised) equals the plain formula.

On random stories (branches, cuts, merges, scenes without entities, random
importance and decay settings), every row of `story_memory` equals the
salience computed one appearance at a time along `kg.graph.ancestor_path`
(``importance * rate ** distance``, reinforced and capped), ranked by
``(-salience, key)`` (salience to the last bits of ``pow``); and it equals,
bit for bit, the row-wise `memory_by_scene` walk.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg.errors import StoryError
from kg.graph import DynamicSceneGraph, ancestor_path
from kg.memory import (
    RANK_DECIMALS,
    EntityMemory,
    memory_by_scene,
    scene_entities,
    story_memory,
)
from kg.schema import Character, DecaySettings, Environment, SceneNode, Story

_ids = st.sampled_from(["a", "b", "0", "a1", "ab", "z", "a-", "x_2", "m-3", "q"])


@st.composite
def _stories(draw: st.DrawFn) -> DynamicSceneGraph:
    char_ids = draw(st.lists(_ids, unique=True, max_size=8))
    env_ids = draw(st.lists(_ids, unique=True, max_size=4))
    weight = st.sampled_from([0.5, 1.0, 1.0, 2.0, 2.5, 10.0])
    decay = DecaySettings(
        rate=draw(st.sampled_from([0.1, 0.5, 0.8, 0.9, 1.0])),
        threshold=draw(st.sampled_from([0.0, 0.3, 1.0])),
        reinforcement=draw(st.sampled_from([0.0, 0.25, 1.0])),
        max_importance=draw(st.sampled_from([1.0, 3.0, 10.0])),
    )
    story = Story(
        title="decay",
        characters=[
            Character(id=i, name=f"N{i}", importance=draw(weight)) for i in char_ids
        ],
        environments=[
            Environment(id=i, name=f"E{i}", importance=draw(weight)) for i in env_ids
        ],
    )
    story.settings.decay = decay
    graph = DynamicSceneGraph(story)
    for j in range(draw(st.integers(1, 14))):
        cast = draw(st.lists(st.sampled_from(char_ids), max_size=3)) if char_ids else []
        env = draw(st.sampled_from([None, *env_ids]))
        after = draw(st.sampled_from([None, *[f"s{k}" for k in range(j)]]))
        transition = draw(st.sampled_from(["continuous", "cut"]))
        if (
            after is not None
            and transition == "continuous"
            and any(
                graph.g.edges[after, t]["transition"] == "continuous"
                for t in graph.g.successors(after)
            )
        ):
            transition = "cut"  # ``after`` has its continuous successor already
        graph.add_scene(
            SceneNode(
                id=f"s{j}",
                title=f"S{j}",
                character_ids=list(dict.fromkeys(cast)),
                environment_id=env,
            ),
            after=after,
            transition=transition,
        )
    if j >= 2 and draw(st.booleans()):  # a merge: a second input by a cut
        with contextlib.suppress(StoryError):  # the edge exists already
            graph.connect("s0", f"s{j}", "cut")
    return graph


def _plain(graph: DynamicSceneGraph, scene_id: str) -> list[EntityMemory]:
    story = graph.story
    decay = story.settings.decay
    entities = {f"character:{c.id}": ("character", c) for c in story.characters}
    entities.update(
        (f"environment:{e.id}", ("environment", e)) for e in story.environments
    )
    last: dict[str, int] = {}
    count: dict[str, int] = {}
    path = ancestor_path(graph, scene_id)
    for pos, sid in enumerate(path):
        for key in scene_entities(graph.scene(sid)):
            last[key] = pos
            count[key] = count.get(key, 0) + 1
    rows = []
    for key, seen in last.items():
        kind, entity = entities[key]
        importance = min(
            decay.max_importance,
            entity.importance + decay.reinforcement * (count[key] - 1),
        )
        distance = len(path) - 1 - seen
        salience = importance * decay.rate**distance
        rows.append(
            EntityMemory(
                key,
                kind,
                entity.id,
                entity.name,
                importance,
                distance,
                count[key],
                salience,
                salience >= decay.threshold,
            )
        )
    return sorted(rows, key=lambda m: (-round(m.salience, RANK_DECIMALS), m.key))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stories())
def test_story_memory_equals_the_plain_formula(graph: DynamicSceneGraph) -> None:
    by_scene = memory_by_scene(graph)
    for scene_id in graph.g.nodes:
        fast, plain = story_memory(graph, scene_id), _plain(graph, scene_id)
        # the same rows; salience to the last bits of ``pow`` (numpy squares
        # where C's ``pow`` rounds once), the order and the threshold exact
        assert [m[:7] for m in fast] == [m[:7] for m in plain]
        assert [m.salience for m in fast] == pytest.approx(
            [m.salience for m in plain], rel=1e-12
        )
        threshold = graph.story.settings.decay.threshold
        assert [m.remembered for m in fast] == [m.salience >= threshold for m in fast]
        assert fast == by_scene[scene_id]
        assert [list(map(type, m)) for m in fast] == [list(map(type, m)) for m in plain]
        assert all(type(m) is EntityMemory for m in fast)


def test_story_memory_without_entities_is_empty() -> None:
    graph = DynamicSceneGraph(Story(title="t"))
    graph.add_scene(SceneNode(id="s1", title="1"))
    assert story_memory(graph, "s1") == []


def test_story_memory_sees_in_place_edits() -> None:
    story = Story(
        title="t",
        characters=[Character(id="ana", name="Ana"), Character(id="bo", name="Bo")],
    )
    graph = DynamicSceneGraph(story)
    graph.add_scene(SceneNode(id="s1", title="1", character_ids=["ana"]))
    graph.add_scene(SceneNode(id="s2", title="2"), after="s1")
    assert [m.key for m in story_memory(graph, "s2")] == ["character:ana"]
    graph.scene("s2").character_ids.append("bo")  # list edits skip validation
    story.characters[0].importance = 3.0
    memory = story_memory(graph, "s2")
    assert [(m.key, m.distance) for m in memory] == [
        ("character:ana", 1),
        ("character:bo", 0),
    ]
    assert memory[0].salience == 3.0 * story.settings.decay.rate


def test_equal_saliences_rank_by_key_whatever_pow_rounds() -> None:
    """2.5 x 0.8^2 and 2.0 x 0.8 are both 1.6, to the last bit or not."""
    story = Story(
        title="ties",
        settings={"decay": DecaySettings(rate=0.8)},
        characters=[Character(id="zed", name="Zed", importance=2.0)],
        environments=[Environment(id="cove", name="Cove", importance=2.5)],
    )
    graph = DynamicSceneGraph(story)
    graph.add_scene(SceneNode(id="s0", title="0", environment_id="cove"))
    graph.add_scene(SceneNode(id="s1", title="1", character_ids=["zed"]), after="s0")
    graph.add_scene(SceneNode(id="s2", title="2"), after="s1")
    ranked = story_memory(graph, "s2")
    assert [m.salience for m in ranked] == pytest.approx([1.6, 1.6])
    assert [m.key for m in ranked] == ["character:zed", "environment:cove"]
    assert [m[:7] for m in ranked] == [m[:7] for m in _plain(graph, "s2")]
