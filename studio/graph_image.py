"""Draw the story graph to a PNG with matplotlib.

Colour by scene status, opacity by salience (old scenes fade), solid edges for
continuous transitions and dashed for cuts, the selected take's CLIP score
under the title when the observer has scored it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from kg.errors import StoryError
from kg.graph import DynamicSceneGraph, layered_layout
from kg.memory import scene_salience
from kg.metrics import metric
from kg.paths import write_atomic
from studio.palette import STATUS_COLOURS

__all__ = ["MAX_DRAWN_SCENES", "draw_story_graph"]

# Beyond this a PNG is unreadable and matplotlib takes minutes: draw a
# neighbourhood instead (``storygraph graph --around SCENE``).
MAX_DRAWN_SCENES = 300


def draw_story_graph(
    graph: DynamicSceneGraph,
    out: str | os.PathLike[str],
    scenes: list[str] | None = None,
) -> Path:
    """Render the graph (or only ``scenes`` of it) to ``out`` (PNG).

    Raises `StoryError` when more than `MAX_DRAWN_SCENES` would be drawn.
    """
    import networkx as nx
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    story = graph.story
    shown = set(scenes) if scenes is not None else set(graph.g.nodes)
    if len(shown) > MAX_DRAWN_SCENES:
        raise StoryError(
            f"the story has {len(shown):,} scenes; a drawing holds at most "
            f"{MAX_DRAWN_SCENES}: draw the neighbourhood of one scene with "
            "--around SCENE"
        )
    full = layered_layout(graph)
    pos = {sid: full[sid] for sid in full if sid in shown}
    salience = scene_salience(graph)
    sub = graph.g.subgraph(shown)
    width = max(len({x for x, _ in pos.values()}), 1)
    rows = [y for _, y in pos.values()]
    height = int(max(rows, default=0) - min(rows, default=0)) + 1
    # A bare Figure (no pyplot): safe off the main thread, leaves the global
    # backend alone for callers that show a window.
    fig = Figure(figsize=(min(3 + 2.2 * width, 60), 2 + 1.6 * height))
    ax = fig.add_subplot()
    for style in ("continuous", "cut"):
        edges = [(u, v) for u, v, d in sub.edges(data=True) if d["transition"] == style]
        nx.draw_networkx_edges(
            sub,
            pos,
            edgelist=edges,
            ax=ax,
            arrows=True,
            arrowsize=14,
            style="solid" if style == "continuous" else "dashed",
            edge_color="#444" if style == "continuous" else "#999",
            node_size=2200,
        )
    from matplotlib.colors import to_rgba

    ids = list(pos)
    ax.scatter(  # one call for every node: fast at hundreds of scenes
        [pos[sid][0] for sid in ids],
        [pos[sid][1] for sid in ids],
        s=2200,
        c=[
            to_rgba(
                STATUS_COLOURS[graph.scene(sid).status],
                0.25 + 0.75 * salience.get(sid, 0.0),
            )
            for sid in ids
        ],
        edgecolors="#222",
        linewidths=1,
        zorder=3,
    )
    for sid, (x, y) in pos.items():
        scene = graph.scene(sid)
        label = scene.title if len(scene.title) <= 18 else scene.title[:17] + "…"
        take = scene.selected
        if take is not None and take.scores and take.scores.clip_score is not None:
            label += f"\n{metric('clip_score').short} {take.scores.clip_score:.2f}"
        # parse_math=False: a "$" in a title is text, not mathtext to parse
        ax.text(
            x,
            y - 0.32,
            label,
            ha="center",
            va="top",
            fontsize=8,
            zorder=4,
            parse_math=False,
        )
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
    ax.set_title(story.title, parse_math=False)
    ax.margins(0.15, 0.35)
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, dpi=100, bbox_inches="tight", format="png")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, buf.getvalue())  # viewers never see a half-written image
    return out
