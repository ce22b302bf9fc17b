"""Draw the story graph to a PNG with matplotlib.

Colour by scene status, opacity by salience (old scenes fade), solid edges for
continuous transitions and dashed for cuts, the selected take's CLIP score
under the title when the observer has scored it.
"""

from __future__ import annotations

import os
from pathlib import Path

from kg.graph import DynamicSceneGraph, generation_order
from kg.memory import scene_salience

__all__ = ["STATUS_COLOURS", "layered_layout", "draw_story_graph"]

STATUS_COLOURS = {
    "draft": "#9aa5b1",
    "queued": "#5b8def",
    "generating": "#f5a623",
    "done": "#2eb67d",
    "failed": "#e01e5a",
    "interrupted": "#b05cc6",
    "stale": "#c8b400",
}


def layered_layout(graph: DynamicSceneGraph) -> dict[str, tuple[float, float]]:
    """Left-to-right layers by longest path from a root; branches stack."""
    depth: dict[str, int] = {}
    for sid in generation_order(graph):
        preds = list(graph.g.predecessors(sid))
        depth[sid] = 1 + max((depth[p] for p in preds), default=-1)
    rows: dict[int, int] = {}
    pos = {}
    for sid in generation_order(graph):
        d = depth[sid]
        pos[sid] = (float(d), -float(rows.get(d, 0)))
        rows[d] = rows.get(d, 0) + 1
    return pos


def draw_story_graph(graph: DynamicSceneGraph, out: str | os.PathLike[str]) -> Path:
    """Render the graph to ``out`` (PNG) and return the path."""
    import networkx as nx
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    story = graph.story
    pos = layered_layout(graph)
    salience = scene_salience(graph)
    width = max(len({x for x, _ in pos.values()}), 1)
    height = max((int(-y) + 1 for _, y in pos.values()), default=1)
    # A bare Figure (no pyplot): safe off the main thread, leaves the global
    # backend alone for callers that show a window.
    fig = Figure(figsize=(min(3 + 2.2 * width, 60), 2 + 1.6 * height))
    ax = fig.add_subplot()
    for style in ("continuous", "cut"):
        edges = [
            (u, v) for u, v, d in graph.g.edges(data=True) if d["transition"] == style
        ]
        nx.draw_networkx_edges(
            graph.g,
            pos,
            edgelist=edges,
            ax=ax,
            arrows=True,
            arrowsize=14,
            style="solid" if style == "continuous" else "dashed",
            edge_color="#444" if style == "continuous" else "#999",
            node_size=2200,
        )
    for sid, (x, y) in pos.items():
        scene = graph.scene(sid)
        alpha = 0.25 + 0.75 * salience.get(sid, 0.0)
        ax.scatter(
            [x],
            [y],
            s=2200,
            c=STATUS_COLOURS[scene.status],
            alpha=alpha,
            edgecolors="#222",
            linewidths=1,
            zorder=3,
        )
        label = scene.title if len(scene.title) <= 18 else scene.title[:17] + "…"
        take = scene.selected
        if take is not None and take.scores and take.scores.clip_score is not None:
            label += f"\nCLIP {take.scores.clip_score:.2f}"
        ax.text(x, y - 0.32, label, ha="center", va="top", fontsize=8, zorder=4)
        ax.text(
            x,
            y,
            scene.status,
            ha="center",
            va="center",
            fontsize=7,
            zorder=4,
            color="white",
        )
    handles = [
        Line2D([], [], marker="o", ls="", color=c, label=s)
        for s, c in STATUS_COLOURS.items()
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        fontsize=7,
        frameon=False,
        bbox_to_anchor=(1.0, 1.0),
    )
    ax.set_title(story.title)
    ax.margins(0.15, 0.35)
    ax.axis("off")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    tmp.replace(out)  # viewers never see a half-written image
    return out
