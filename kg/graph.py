"""The story as a directed graph of scenes joined by transitions.

`DynamicSceneGraph` owns a `networkx.DiGraph` kept in step with a `Story`:
every edit goes through it so the two never disagree, and an edit that would
make the story loop back on itself is refused with `CycleError`. Queries
(generation order, ancestor path, continuity predecessor, stale propagation)
are plain functions that take the graph first, as networkx does.

Examples
--------
>>> from kg.schema import SceneNode, Story
>>> g = DynamicSceneGraph(Story(title="Demo"))
>>> g.add_scene(SceneNode(id="a", title="A"))
>>> g.add_scene(SceneNode(id="b", title="B"), after="a")
>>> g.add_scene(SceneNode(id="c", title="C"), after="a", transition="cut")
>>> generation_order(g)
['a', 'b', 'c']
>>> ancestor_path(g, "c")
['a', 'c']
"""

from __future__ import annotations

from collections import deque

import networkx as nx

from kg.errors import CycleError, StoryError
from kg.schema import SceneEdge, SceneNode, Story

__all__ = [
    "DynamicSceneGraph",
    "generation_order",
    "ancestor_path",
    "continuity_predecessor",
    "main_predecessor",
    "continuous_descendants",
    "mark_stale_descendants",
    "roots",
    "layered_layout",
    "neighbourhood",
]


class DynamicSceneGraph:
    """A story's scenes and transitions as a `networkx.DiGraph`.

    Nodes are scene ids carrying ``order`` (position in ``story.scenes``);
    edges carry ``transition`` and ``strength``. The `Story` stays the source
    of truth that is saved; the graph is rebuilt from it in O(n).
    """

    def __init__(self, story: Story) -> None:
        self.story = story
        self.g = nx.DiGraph()
        self._rebuild()

    def _rebuild(self) -> None:
        self.g.clear()
        for i, s in enumerate(self.story.scenes):
            self.g.add_node(s.id, order=i, scene=s)
        for e in self.story.edges:
            self.g.add_edge(
                e.source, e.target, transition=e.transition, strength=e.strength
            )

    # Edits ---------------------------------------------------------------------
    def add_scene(
        self,
        scene: SceneNode,
        after: str | None = None,
        transition: str = "continuous",
    ) -> None:
        """Add a scene, optionally following ``after``.

        When ``after`` already has a continuous successor the new scene starts a
        branch; pass ``transition="cut"`` to branch without carrying the tail.
        """
        if scene.id in self.g:
            raise StoryError(f"a scene with id {scene.id!r} exists; choose another id")
        if after is not None:
            self._require(after)
        self.story.scenes.append(scene)
        self.g.add_node(scene.id, order=len(self.story.scenes) - 1, scene=scene)
        if after is not None:
            self.connect(after, scene.id, transition)

    def insert_after(self, scene: SceneNode, after: str) -> None:
        """Insert a scene between ``after`` and its successors (not a branch)."""
        successors = [
            (t, self.g.edges[after, t]) for t in list(self.g.successors(after))
        ]
        self.add_scene(scene, after=after)
        for target, data in successors:
            self.disconnect(after, target)
            self.connect(scene.id, target, data["transition"], data["strength"])

    def connect(
        self,
        source: str,
        target: str,
        transition: str = "continuous",
        strength: float = 1.0,
    ) -> None:
        """Join two scenes; refuses loops and a second continuous input."""
        self._require(source)
        self._require(target)
        if source == target:
            raise CycleError(f"scene {source!r} cannot follow itself")
        if self.g.has_edge(source, target):
            raise StoryError(f"{source!r} -> {target!r} exists already")
        if nx.has_path(self.g, target, source):
            path = nx.shortest_path(self.g, target, source)
            raise CycleError(
                "connecting "
                f"{source!r} -> {target!r} would loop back ("
                + " -> ".join([*path, target])
                + "); connect to a later scene or branch instead"
            )
        if transition == "continuous" and continuity_predecessor(self, target):
            raise StoryError(
                f"scene {target!r} already continues from "
                f"{continuity_predecessor(self, target)!r}; use a 'cut' transition"
            )
        edge = SceneEdge(
            source=source, target=target, transition=transition, strength=strength
        )
        self.story.edges.append(edge)
        self.g.add_edge(
            source, target, transition=edge.transition, strength=edge.strength
        )

    def disconnect(self, source: str, target: str) -> None:
        if not self.g.has_edge(source, target):
            raise StoryError(f"there is no edge {source!r} -> {target!r}")
        self.g.remove_edge(source, target)
        self.story.edges = [
            e for e in self.story.edges if (e.source, e.target) != (source, target)
        ]

    def set_transition(self, source: str, target: str, transition: str) -> None:
        """Change an edge between ``continuous`` and ``cut``."""
        data = self.g.edges[source, target]
        self.disconnect(source, target)
        try:
            self.connect(source, target, transition, data["strength"])
        except StoryError:
            self.connect(source, target, data["transition"], data["strength"])
            raise

    def remove_scene(self, scene_id: str, bridge: bool = True) -> None:
        """Delete a scene; with ``bridge`` its predecessor joins its successors."""
        self._require(scene_id)
        preds = list(self.g.predecessors(scene_id))
        succs = [(t, self.g.edges[scene_id, t]) for t in self.g.successors(scene_id)]
        main = continuity_predecessor(self, scene_id) or (preds[0] if preds else None)
        self.story.scenes = [s for s in self.story.scenes if s.id != scene_id]
        self.story.edges = [
            e for e in self.story.edges if scene_id not in (e.source, e.target)
        ]
        self._rebuild()
        if bridge and main is not None:
            for target, data in succs:
                if not self.g.has_edge(main, target):
                    transition = data["transition"]
                    if transition == "continuous" and continuity_predecessor(
                        self, target
                    ):
                        transition = "cut"
                    self.connect(main, target, transition, data["strength"])

    def move_after(self, scene_id: str, after: str) -> None:
        """Reorder: take a scene out of its place and insert it after another."""
        self._require(after)
        if scene_id == after:
            raise StoryError("a scene cannot be moved after itself")
        scene = self.story.scene(scene_id)
        self.remove_scene(scene_id, bridge=True)
        self.insert_after(scene, after)

    def scene(self, scene_id: str) -> SceneNode:
        """The scene object of a node (O(1), unlike ``story.scene``)."""
        self._require(scene_id)
        return self.g.nodes[scene_id]["scene"]

    def _require(self, scene_id: str) -> None:
        if scene_id not in self.g:
            raise StoryError(f"no scene {scene_id!r} in the story")

    def __contains__(self, scene_id: object) -> bool:
        return scene_id in self.g

    def __len__(self) -> int:
        return self.g.number_of_nodes()


def roots(graph: DynamicSceneGraph) -> list[str]:
    """Scenes nothing leads into, in story order."""
    return sorted(
        (n for n, d in graph.g.in_degree() if d == 0),
        key=lambda n: graph.g.nodes[n]["order"],
    )


def generation_order(graph: DynamicSceneGraph) -> list[str]:
    """Topological order; ties broken by position in the story."""
    order = nx.get_node_attributes(graph.g, "order")
    return list(nx.lexicographical_topological_sort(graph.g, key=order.__getitem__))


def continuity_predecessor(graph: DynamicSceneGraph, scene_id: str) -> str | None:
    """The scene whose tail this scene continues from (continuous edge), if any."""
    for source in graph.g.predecessors(scene_id):
        if graph.g.edges[source, scene_id]["transition"] == "continuous":
            return source
    return None


def main_predecessor(graph: DynamicSceneGraph, scene_id: str) -> str | None:
    """The predecessor on the story-so-far path: the continuous one, else the
    earliest in the story, else None."""
    cont = continuity_predecessor(graph, scene_id)
    if cont is not None:
        return cont
    preds = list(graph.g.predecessors(scene_id))
    if not preds:
        return None
    return min(preds, key=lambda n: graph.g.nodes[n]["order"])


def ancestor_path(graph: DynamicSceneGraph, scene_id: str) -> list[str]:
    """The story so far: root ... scene, following the main predecessor.

    At a merge the continuous predecessor wins, then the earliest in the story.
    """
    graph._require(scene_id)
    path = [scene_id]
    while (prev := main_predecessor(graph, path[-1])) is not None:
        path.append(prev)
    return path[::-1]


def continuous_descendants(graph: DynamicSceneGraph, scene_id: str) -> list[str]:
    """Scenes reached from ``scene_id`` along continuous edges only."""
    out: list[str] = []
    stack = [scene_id]
    while stack:
        node = stack.pop()
        for target in graph.g.successors(node):
            if graph.g.edges[node, target]["transition"] == "continuous":
                out.append(target)
                stack.append(target)
    return sorted(out, key=lambda n: graph.g.nodes[n]["order"])


def mark_stale_descendants(graph: DynamicSceneGraph, scene_id: str) -> list[str]:
    """Mark generated continuous descendants ``stale``; returns their ids.

    Their clips started from a tail that is no longer the selected one.
    """
    changed = []
    for sid in continuous_descendants(graph, scene_id):
        scene = graph.scene(sid)
        if scene.status in ("done", "failed", "interrupted"):
            scene.status = "stale"
            changed.append(sid)
    return changed


def layered_layout(graph: DynamicSceneGraph) -> dict[str, tuple[float, float]]:
    """Left-to-right layers by longest path from a root; branches stack.

    ``(layer, -row)`` per scene, for every graph view (the PNG and the
    studio). One topological pass, no recursion: O(scenes + transitions).
    """
    depth: dict[str, int] = {}
    rows: dict[int, int] = {}
    pos = {}
    for sid in generation_order(graph):
        d = 1 + max((depth[p] for p in graph.g.predecessors(sid)), default=-1)
        depth[sid] = d
        pos[sid] = (float(d), -float(rows.get(d, 0)))
        rows[d] = rows.get(d, 0) + 1
    return pos


def neighbourhood(graph: DynamicSceneGraph, center: str, limit: int) -> list[str]:
    """Up to ``limit`` scenes nearest ``center`` (either direction), center first.

    Breadth-first over transitions ignoring their direction, so a window on
    a large story shows what leads into a scene and what follows it.

    >>> from kg.schema import SceneNode, Story
    >>> g = DynamicSceneGraph(Story(title="Demo"))
    >>> for i in range(6):
    ...     after = f"s{i - 1}" if i else None
    ...     g.add_scene(SceneNode(id=f"s{i}", title="x"), after=after)
    >>> neighbourhood(g, "s3", 3)
    ['s3', 's2', 's4']
    """
    graph._require(center)
    seen = {center}
    order = [center]
    queue = deque([center])
    while queue and len(order) < limit:
        node = queue.popleft()
        for other in (*graph.g.predecessors(node), *graph.g.successors(node)):
            if other not in seen:
                seen.add(other)
                order.append(other)
                queue.append(other)
                if len(order) >= limit:
                    break
    return order
