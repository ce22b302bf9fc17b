"""Story lines: the paths a viewer can watch from a first scene to an ending.

A story may branch, so it plays as several films, one per story line. A line
follows the same story-so-far path as prompts and memory
(`kg.graph.ancestor_path`): at a merge the continuous predecessor wins, then
the earliest in the story. The lines are therefore the root-to-leaf paths of
the tree those paths form, and a line is named by its last scene (its leaf).

The *main line* starts at the first scene of the story and, at every branch,
takes the continuous transition (the shot that flows on), else the earliest
scene in story order.
"""

from __future__ import annotations

from dataclasses import dataclass

from kg.errors import StoryError
from kg.graph import DynamicSceneGraph, ancestor_path, main_predecessor

__all__ = ["StoryLine", "UnknownLineError", "story_lines", "main_line", "line"]


class UnknownLineError(StoryError):
    """A story line was asked for by a scene that ends none."""


@dataclass(frozen=True)
class StoryLine:
    """The scenes from a first scene to ``leaf``, in playing order."""

    leaf: str
    scenes: tuple[str, ...]
    main: bool

    def __len__(self) -> int:
        return len(self.scenes)


def _children(graph: DynamicSceneGraph) -> tuple[list[str], dict[str, list[str]]]:
    """Roots and children of the story-so-far tree, both in story order."""
    order = graph.g.nodes
    roots: list[str] = []
    children: dict[str, list[str]] = {n: [] for n in order}
    for node in sorted(order, key=lambda n: order[n]["order"]):
        parent = main_predecessor(graph, node)
        (children[parent] if parent is not None else roots).append(node)
    return roots, children


def _main_leaf(graph: DynamicSceneGraph) -> str | None:
    roots, children = _children(graph)
    if not roots:
        return None
    node = roots[0]
    while children[node]:
        kids = children[node]
        flowing = [
            k for k in kids if graph.g.edges[node, k]["transition"] == "continuous"
        ]
        node = (flowing or kids)[0]
    return node


def story_lines(graph: DynamicSceneGraph) -> list[StoryLine]:
    """Every story line, the main line first, the others in story order of
    their leaves.

    Examples
    --------
    >>> from kg.example import example_story
    >>> lines = story_lines(DynamicSceneGraph(example_story()))
    >>> lines[0].main, lines[0].scenes[0] == lines[1].scenes[0]
    (True, True)
    """
    roots, children = _children(graph)
    main = _main_leaf(graph)
    order = graph.g.nodes
    leaves = sorted(
        (n for n, kids in children.items() if not kids),
        key=lambda n: (n != main, order[n]["order"]),
    )
    return [
        StoryLine(
            leaf=leaf, scenes=tuple(ancestor_path(graph, leaf)), main=leaf == main
        )
        for leaf in leaves
    ]


def main_line(graph: DynamicSceneGraph) -> StoryLine | None:
    """The main line (see the module docstring); None for an empty story."""
    lines = story_lines(graph)
    return lines[0] if lines else None


def line(graph: DynamicSceneGraph, leaf: str | None = None) -> StoryLine:
    """The line ending at ``leaf`` (the main line when None).

    Raises `UnknownLineError` naming the leaves there are when ``leaf`` ends
    no line (or the story has no scenes).
    """
    lines = story_lines(graph)
    if not lines:
        raise UnknownLineError("the story has no scenes yet; add a scene first")
    if leaf is None:
        return lines[0]
    for candidate in lines:
        if candidate.leaf == leaf:
            return candidate
    ends = ", ".join(c.leaf for c in lines)
    what = "is not a scene" if leaf not in graph else "does not end a story line"
    raise UnknownLineError(
        f"line {leaf!r} {what}; choose one of the last scenes: {ends}"
    )
