"""Property tests: random valid stories round-trip; random corruptions of a
valid file give a validation error that names a JSON path, never a crash."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kg.errors import StoryValidationError
from kg.schema import (
    CAMERA_MOVES,
    WEATHERS,
    Character,
    Environment,
    SceneEdge,
    SceneNode,
    Story,
)
from kg.store import dump_story, parse_story
from tests.conftest import json_paths, set_at

ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True)
# Any text a story may hold: no control characters but tab and line breaks, no
# lone surrogates (kg.schema refuses both).
letters = st.characters(exclude_categories=("Cs", "Cc"), include_characters="\t\n\r")
text = st.text(letters, max_size=30)
name = st.text(letters, min_size=1, max_size=20)


@st.composite
def stories(draw: st.DrawFn) -> Story:
    char_ids = draw(st.lists(ids, max_size=4, unique=True))
    env_ids = draw(st.lists(ids, max_size=3, unique=True))
    scene_ids = draw(st.lists(ids, min_size=0, max_size=8, unique=True))
    characters = [
        Character(
            id=c,
            name=draw(name),
            description=draw(text),
            visual_attributes=draw(st.lists(text, max_size=2)),
            importance=draw(st.floats(0.1, 10)),
        )
        for c in char_ids
    ]
    environments = [
        Environment(
            id=e,
            name=draw(name),
            lighting=draw(text),
            default_weather=draw(st.sampled_from(WEATHERS)),
        )
        for e in env_ids
    ]
    scenes = [
        SceneNode(
            id=s,
            title=draw(name),
            character_ids=draw(st.lists(st.sampled_from(char_ids), unique=True))
            if char_ids
            else [],
            environment_id=draw(st.sampled_from([None, *env_ids])),
            motion=draw(text),
            camera=draw(st.sampled_from(CAMERA_MOVES)),
            weather=draw(st.sampled_from([None, *WEATHERS])),
            seed=draw(st.integers(0, 2**32 - 1)),
            duration_s=draw(st.floats(0.1, 60)),
        )
        for s in scene_ids
    ]
    edges = []
    has_continuous_in: set[str] = set()
    for j in range(1, len(scene_ids)):
        for i in draw(st.sets(st.integers(0, j - 1), max_size=2)):
            transition = draw(st.sampled_from(["continuous", "cut"]))
            if transition == "continuous" and scene_ids[j] in has_continuous_in:
                transition = "cut"
            if transition == "continuous":
                has_continuous_in.add(scene_ids[j])
            edges.append(
                SceneEdge(
                    source=scene_ids[i],
                    target=scene_ids[j],
                    transition=transition,
                    strength=draw(st.floats(0, 1)),
                )
            )
    return Story(
        title=draw(name),
        description=draw(text),
        characters=characters,
        environments=environments,
        scenes=scenes,
        edges=edges,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stories())
def test_random_valid_stories_round_trip(story: Story) -> None:
    text_ = dump_story(story)
    again = parse_story(text_)
    assert again == story
    assert dump_story(again) == text_


def _delete(doc: dict, path: tuple) -> None:
    node = doc
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]


_BASE = None


def _base_doc() -> dict:
    global _BASE
    if _BASE is None:
        from kg.example import example_story

        _BASE = dump_story(example_story())
    return json.loads(_BASE)


@settings(max_examples=300, deadline=None)
@given(
    st.data(),
    st.sampled_from(["wrong_type", "unknown_key", "delete", "truncate", "bad_ref"]),
)
def test_random_corruptions_give_path_named_errors(
    data: st.DataObject, kind: str
) -> None:
    doc = _base_doc()
    paths = [p for p in json_paths(doc) if p]
    if kind == "truncate":
        text_ = json.dumps(doc)
        cut = data.draw(st.integers(0, len(text_) - 1))
        corrupted = text_[:cut]
    else:
        if kind == "wrong_type":
            path = data.draw(st.sampled_from(paths))
            value = data.draw(st.sampled_from([{"x": 1}, [1, 2], -7.5, None]))
            set_at(doc, path, value)
        elif kind == "unknown_key":
            dicts = [p for p in [(), *paths] if isinstance(_get(doc, p), dict)]
            path = data.draw(st.sampled_from(dicts))
            _get(doc, path)["surprise_field"] = 1
        elif kind == "delete":
            path = data.draw(st.sampled_from(paths))
            _delete(doc, path)
        else:
            refs = [p for p in paths if p[-1] in ("environment_id", "source", "target")]
            path = data.draw(st.sampled_from(refs))
            set_at(doc, path, "nobody-here")
        corrupted = json.dumps(doc)
    try:
        story = parse_story(corrupted)
    except StoryValidationError as exc:
        assert exc.problems, "an error must list at least one problem"
        for json_path, message in exc.problems:
            assert json_path and message
        return
    # Some edits are still valid (e.g. deleting an optional field, None where
    # null is allowed): then the story must be complete and re-serialisable.
    assert isinstance(story, Story)
    parse_story(dump_story(story))


def _get(doc: object, path: tuple) -> object:
    for part in path:
        doc = doc[part]  # type: ignore[index]
    return doc


def _scene_salience_by_paths(graph) -> dict[str, float]:  # noqa: ANN001
    """The definition, walked leaf by leaf (slow, obviously right)."""
    from kg.graph import ancestor_path
    from kg.memory import scene_entities, story_memory

    decay = graph.story.settings.decay
    out = dict.fromkeys(graph.g.nodes, 0.0)
    for leaf in [n for n, d in graph.g.out_degree() if d == 0]:
        path = ancestor_path(graph, leaf)
        final = {m.key: m.salience for m in story_memory(graph, leaf)}
        for pos, sid in enumerate(path):
            keys = scene_entities(graph.scene(sid))
            value = (
                max(final.get(k, 0.0) for k in keys) / decay.max_importance
                if keys
                else decay.rate ** (len(path) - 1 - pos)
            )
            out[sid] = max(out[sid], min(1.0, value))
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stories())
def test_scene_salience_matches_its_definition(story: Story) -> None:
    from pytest import approx

    from kg.graph import DynamicSceneGraph
    from kg.memory import scene_salience

    graph = DynamicSceneGraph(story)
    assert scene_salience(graph) == approx(_scene_salience_by_paths(graph))
