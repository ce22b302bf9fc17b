"""Story memory: how present each character and environment still is.

Along a scene's ancestor path every entity has a salience

    salience = importance * rate ** (scenes since last appearance)

where ``importance`` is the entity's own weight, reinforced by
``reinforcement`` for each further appearance (capped at ``max_importance``).
Entities at or above ``threshold`` stay in the story memory that the prompt
generator may carry into later scenes; the others have decayed out.

Examples
--------
>>> from kg.schema import Character, SceneNode, Story
>>> from kg.graph import DynamicSceneGraph
>>> story = Story(title="t", characters=[Character(id="ana", name="Ana")])
>>> g = DynamicSceneGraph(story)
>>> g.add_scene(SceneNode(id="s1", title="1", character_ids=["ana"]))
>>> g.add_scene(SceneNode(id="s2", title="2"), after="s1")
>>> g.add_scene(SceneNode(id="s3", title="3"), after="s2")
>>> [round(m.salience, 3) for m in story_memory(g, "s3")]
[0.64]
"""

from __future__ import annotations

import collections
import functools
import math
import operator
from collections.abc import Iterator, Mapping
from typing import NamedTuple

import numpy as np

from kg.graph import DynamicSceneGraph, ancestor_path, main_predecessor
from kg.heap import building_tree
from kg.schema import DecaySettings, SceneNode, Story

__all__ = [
    "EntityMemory",
    "entity_key",
    "scene_entities",
    "story_memory",
    "memory_by_scene",
    "remembered",
    "salience_timeline",
    "scene_salience",
]


class EntityMemory(NamedTuple):
    key: str  # "character:<id>" or "environment:<id>"
    kind: str
    entity_id: str
    name: str
    importance: float  # after reinforcement
    distance: int  # scenes since last appearance (0: in this scene)
    appearances: int
    salience: float
    remembered: bool


def entity_key(kind: str, entity_id: str) -> str:
    return f"{kind}:{entity_id}"


def scene_entities(scene: SceneNode) -> list[str]:
    """Entity keys that appear in a scene."""
    keys = [entity_key("character", c) for c in scene.character_ids]
    if scene.environment_id:
        keys.append(entity_key("environment", scene.environment_id))
    return keys


class _Base:
    """(kind, id, name, importance) of every entity key, in one table (looked
    up at C speed: `_decay` maps ``__getitem__`` over thousands of keys)."""

    def __init__(self, story: Story) -> None:
        self.info: dict[str, tuple[str, str, str, float]] = {
            f"character:{c.id}": ("character", c.id, c.name, c.importance)
            for c in story.characters
        }
        self.info.update(
            (f"environment:{e.id}", ("environment", e.id, e.name, e.importance))
            for e in story.environments
        )

    def __getitem__(self, key: str) -> tuple[str, str, str, float]:
        return self.info[key]


RANK_DECIMALS = 12  # saliences equal to this many decimals rank by key

_new_memory = functools.partial(tuple.__new__, EntityMemory)  # no per-row Python


def _decay(
    base: _Base,
    last_seen: Mapping[str, int],
    counts: Mapping[str, int],
    position: int,
    decay: DecaySettings,
    *,
    ranked: bool = False,
) -> list[EntityMemory]:
    """Salience of every seen entity, vectorised (10,000 entities in a few ms);
    ``ranked``: most salient first, ties (to `RANK_DECIMALS`) by key, sorted
    as arrays before the rows are built."""
    if not last_seen:
        return []
    keys = list(last_seen)
    info = list(map(base.info.__getitem__, keys))
    n = np.fromiter((counts[k] for k in keys), dtype=np.int64, count=len(keys))
    last = np.fromiter(last_seen.values(), dtype=np.int64, count=len(keys))
    importance = np.minimum(
        decay.max_importance,
        np.fromiter(map(operator.itemgetter(3), info), np.float64, len(keys))
        + decay.reinforcement * (n - 1),
    )
    distance = position - last
    salience = importance * np.power(decay.rate, distance)
    kept = salience >= decay.threshold
    kinds, ids, names = (list(map(operator.itemgetter(c), info)) for c in range(3))
    if ranked:
        # saliences equal to 12 decimals are ties (``pow`` rounds differently
        # in numpy and in C): by key
        order = np.lexsort((np.array(keys), -np.round(salience, RANK_DECIMALS)))
        pick = operator.itemgetter(*order.tolist()) if len(keys) > 1 else None
        if pick is not None:
            keys, kinds, ids, names = (
                list(pick(keys)),
                pick(kinds),
                pick(ids),
                pick(names),
            )
        importance, distance, n = importance[order], distance[order], n[order]
        salience, kept = salience[order], kept[order]
    return list(
        map(
            _new_memory,
            zip(
                keys,
                kinds,
                ids,
                names,
                importance.tolist(),
                distance.tolist(),
                n.tolist(),
                salience.tolist(),
                kept.tolist(),
                strict=True,
            ),
        )
    )


def story_memory(graph: DynamicSceneGraph, scene_id: str) -> list[EntityMemory]:
    """Every entity seen on the path to ``scene_id``, most salient first.

    Parameters
    ----------
    graph : the story graph.
    scene_id : the scene the memory is seen from (distance 0).
    """
    with building_tree():  # 10,000 rows on a large heap: no collector passes
        return _story_memory(graph, scene_id)


def _story_memory(graph: DynamicSceneGraph, scene_id: str) -> list[EntityMemory]:
    story = graph.story
    path = ancestor_path(graph, scene_id)
    seen = [
        (key, pos)
        for pos, sid in enumerate(path)
        for key in scene_entities(graph.scene(sid))
    ]
    last_seen = dict(seen)  # the last appearance wins
    counts = collections.Counter(key for key, _ in seen)
    decay = story.settings.decay
    return _decay(_Base(story), last_seen, counts, len(path) - 1, decay, ranked=True)


def remembered(
    graph: DynamicSceneGraph,
    scene_id: str,
    *,
    memory: list[EntityMemory] | None = None,
) -> list[EntityMemory]:
    """Entities still in memory at ``scene_id`` that the scene does not show.

    ``memory`` is the scene's `story_memory` when the caller has it already
    (`memory_by_scene`), so the story is not walked again.
    """
    present = set(scene_entities(graph.scene(scene_id)))
    if memory is None:
        memory = story_memory(graph, scene_id)
    return [m for m in memory if m.remembered and m.key not in present]


def memory_by_scene(graph: DynamicSceneGraph) -> dict[str, list[EntityMemory]]:
    """`story_memory` of every scene, in one walk of the story (O(scenes)).

    For views that list every scene (``storygraph show``), where calling
    `story_memory` per scene would walk each ancestor path again: quadratic
    in the length of the story.
    """
    decay = graph.story.settings.decay
    base = _Base(graph.story)
    with building_tree():
        return {
            node: _decay(base, last_seen, counts, depth, decay, ranked=True)
            for node, depth, last_seen, counts in _walk_path_tree(graph)
        }


def salience_timeline(
    graph: DynamicSceneGraph, scene_id: str
) -> list[tuple[str, list[EntityMemory]]]:
    """Salience of every entity at each scene along the path to ``scene_id``.

    One pass over the path (for the Insights chart and the graph view).
    """
    story = graph.story
    base = _Base(story)
    last_seen: dict[str, int] = {}
    counts: dict[str, int] = {}
    out = []
    for pos, sid in enumerate(ancestor_path(graph, scene_id)):
        for key in scene_entities(graph.scene(sid)):
            last_seen[key] = pos
            counts[key] = counts.get(key, 0) + 1
        out.append((sid, _decay(base, last_seen, counts, pos, story.settings.decay)))
    return out


def _path_tree(graph: DynamicSceneGraph) -> tuple[list[str], dict[str, list[str]]]:
    """Roots and children of the tree that ancestor paths follow."""
    roots: list[str] = []
    children: dict[str, list[str]] = {n: [] for n in graph.g.nodes}
    for node in graph.g.nodes:
        parent = main_predecessor(graph, node)
        (children[parent] if parent is not None else roots).append(node)
    return roots, children


def _walk_path_tree(
    graph: DynamicSceneGraph,
    post_order: list[str] | None = None,
    tree: tuple[list[str], dict[str, list[str]]] | None = None,
) -> Iterator[tuple[str, int, dict[str, int], dict[str, int]]]:
    """Depth-first walk of the path tree: ``(scene, depth, last_seen, counts)``.

    ``last_seen``/``counts`` describe the ancestor path of the scene (itself
    included) while it is being visited; the state is pushed and undone per
    scene, so the whole walk is O(scenes x entities per scene). When given,
    ``post_order`` receives the scenes children-first.
    """
    roots, children = tree or _path_tree(graph)
    last_seen: dict[str, int] = {}
    counts: dict[str, int] = {}
    undo: dict[str, list[tuple[str, int | None, int | None]]] = {}
    stack: list[tuple[str, int, bool]] = [(r, 0, False) for r in reversed(roots)]
    while stack:
        node, depth, leaving = stack.pop()
        if leaving:
            for key, last, count in reversed(undo.pop(node)):
                if last is None:
                    del last_seen[key], counts[key]
                else:
                    last_seen[key], counts[key] = last, count  # type: ignore[assignment]
            if post_order is not None:
                post_order.append(node)
            continue
        undo[node] = []
        for key in scene_entities(graph.scene(node)):
            undo[node].append((key, last_seen.get(key), counts.get(key)))
            last_seen[key] = depth
            counts[key] = counts.get(key, 0) + 1
        yield node, depth, last_seen, counts
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in reversed(children[node]))


def scene_salience(graph: DynamicSceneGraph) -> dict[str, float]:
    """How present each scene still is at the end of its story line, in [0, 1].

    For every leaf, a scene on its path scores the largest salience its
    entities still have at that leaf (relative to ``max_importance``); a scene
    on several lines keeps its best; a scene without entities fades by
    recency alone. Used to fade old scenes in graph views.

    One depth-first walk of the path tree (memory state pushed and undone per
    scene), then one bottom-up pass: O(scenes x entities per scene), instead of
    walking every leaf's whole path.
    """
    g = graph.g
    decay = graph.story.settings.decay
    base = _Base(graph.story)
    tree = _path_tree(graph)
    children = tree[1]
    keys_of = {n: scene_entities(graph.scene(n)) for n in g.nodes}
    at_leaf: dict[str, dict[str, float]] = {}
    post_order: list[str] = []
    for node, depth, last_seen, counts in _walk_path_tree(graph, post_order, tree):
        if g.out_degree(node) == 0:
            at_leaf[node] = {
                m.key: m.salience for m in _decay(base, last_seen, counts, depth, decay)
            }

    best: dict[str, dict[str, float]] = {}
    nearest_leaf: dict[str, float] = {}
    out: dict[str, float] = {}
    for node in post_order:  # children before parents
        merged = dict(at_leaf.get(node, {}))
        near = 0.0 if node in at_leaf else math.inf
        for child in children[node]:
            for key, value in best[child].items():
                if value > merged.get(key, -1.0):
                    merged[key] = value
            near = min(near, nearest_leaf[child] + 1)
        best[node], nearest_leaf[node] = merged, near
        keys = keys_of[node]
        if keys:
            value = max(merged.get(k, 0.0) for k in keys) / decay.max_importance
        else:
            value = 0.0 if near == math.inf else decay.rate**near
        out[node] = min(1.0, value)
    return out
