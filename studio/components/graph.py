"""The story graph view, the one place the studio touches streamlit-agraph.

Scenes are drawn as vis-network nodes coloured by status and sized by how
present they still are in story memory (``kg.memory.scene_salience``);
continuous transitions are solid edges, cuts dashed. Clicking a node returns
its id. Swapping the component for another means rewriting this module only;
every action it offers is also reachable with plain widgets.
"""

from __future__ import annotations

import functools
import json

import streamlit as st

from studio.services import StoryView

__all__ = ["STATUS_COLORS", "graph_data", "story_graph"]

STATUS_COLORS = {
    "draft": "#9aa5b1",
    "queued": "#f0b429",
    "generating": "#2186eb",
    "done": "#3ebd93",
    "failed": "#e12d39",
    "interrupted": "#cb6e17",
    "stale": "#a368fc",
}
SELECTED_BORDER = "#102a43"
_MIN_SIZE, _MAX_SIZE = 12, 36


@functools.cache
def _agraph():  # noqa: ANN202 - the declared component function
    # Declared lazily: the agraph package draws a demo when imported wrongly,
    # and its public wrapper takes no key (a key keeps the click across edits).
    from streamlit_agraph import _agraph as component

    return component


@functools.lru_cache(maxsize=32)
def _base_data(view: StoryView) -> tuple[list[dict], list[dict]]:
    """Nodes and edges of one story revision (the expensive, shared part)."""
    salience = view.salience
    nodes = []
    for sid in view.order:
        scene = view.scene(sid)
        present = salience.get(sid, 0.0)
        take = f" · take {scene.selected_take}" if scene.selected_take else ""
        nodes.append(
            {
                "id": sid,
                "label": scene.title
                if len(scene.title) <= 28
                else scene.title[:27] + "…",
                "title": f"{scene.title} ({sid})\n{scene.status}{take}\n"
                f"memory {present:.2f}",
                "shape": "dot",
                "size": round(_MIN_SIZE + (_MAX_SIZE - _MIN_SIZE) * present, 1),
                "color": STATUS_COLORS[scene.status],
                "opacity": round(0.45 + 0.55 * present, 2),
            }
        )
    edges = [
        {
            "source": e.source,
            "from": e.source,
            "to": e.target,
            "color": "#486581" if e.transition == "continuous" else "#9fb3c8",
            "dashes": e.transition == "cut",
            "width": 1 + 2 * e.strength if e.transition == "continuous" else 1,
            "title": f"{e.transition} · strength {e.strength:g}",
        }
        for e in view.story.edges
    ]
    return nodes, edges


def graph_data(view: StoryView, selected: str | None = None) -> dict:
    """The component's data: nodes and edges, the selected node outlined."""
    nodes, edges = _base_data(view)
    if selected is not None:
        nodes = [
            {
                **n,
                "borderWidth": 4,
                "color": {"background": n["color"], "border": SELECTED_BORDER},
            }
            if n["id"] == selected
            else n
            for n in nodes
        ]
    return {"nodes": nodes, "edges": edges}


@functools.lru_cache(maxsize=4)
def _config_json(height: int) -> str:
    from streamlit_agraph import Config

    config = Config(
        height=height,
        width=800,
        directed=True,
        physics=False,  # a fixed layout: nodes stay put while scenes generate
        hierarchical=True,
        direction="LR",
        sortMethod="directed",
        levelSeparation=170,
        nodeSpacing=90,
    )
    config.width = "100%"
    options = config.to_dict()
    # Config also copies its layout keywords to the top level, where
    # vis-network rejects them (console errors); they live under "layout".
    for name in ("groups", "direction", "sortMethod", "levelSeparation", "nodeSpacing"):
        options.pop(name, None)
    return json.dumps(options)


def story_graph(
    view: StoryView, selected: str | None, *, key: str, height: int = 420
) -> str | None:
    """Draw the graph; returns the id of a node clicked since the last run."""
    data = json.dumps(graph_data(view, selected))
    clicked = _agraph()(data=data, config=_config_json(height), key=key, default=None)
    last_key = f"{key}.last_click"
    if clicked == st.session_state.get(last_key):
        return None
    st.session_state[last_key] = clicked
    return clicked if clicked in view.graph else None
