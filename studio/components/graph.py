"""The story graph view, the one place the studio touches streamlit-agraph.

Scenes are drawn as vis-network nodes coloured by status and sized by how
present they still are in story memory (``kg.memory.scene_salience``);
continuous transitions are solid edges, cuts dashed. A scene with a selected
take shows the last frame of that take as a small thumbnail framed in its
status colour. Clicking a node returns
its id. Swapping the component for another means rewriting this module only;
every action it offers is also reachable with plain widgets.

vis-network hides a node's hover tooltip only when the pointer next moves
over the canvas, so a pointer leaving the component's iframe, a click that
reruns the page or a keyboard user tabbing away left it on screen: a small
script in the page (an ``st.components.v2`` component, `_tooltip_guard`)
hides it on each of those and whenever the graph is drawn again.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import io
import json
import os

import streamlit as st

from studio.palette import STATUS_COLOURS
from studio.services import StoryView

__all__ = ["graph_data", "graph_window", "story_graph"]

SELECTED_BORDER = "#102a43"
THUMB_SIZE = (96, 64)  # a 3:2 frame, as wide as a node label
_MIN_SIZE, _MAX_SIZE = 12, 36


@functools.cache
def _agraph():  # noqa: ANN202 - the declared component function
    # Declared lazily: the agraph package draws a demo when imported wrongly,
    # and its public wrapper takes no key (a key keeps the click across edits).
    from streamlit_agraph import _agraph as component

    return component


# A larger story is shown as a window around the selected scene: more than a
# few dozen scenes fitted into the view are dots too small to read or click,
# and 10,000 would stall the browser tab.
MAX_GRAPH_SCENES = 80
WINDOW_SCENES = 30
_LAYER_PX, _ROW_PX = 170, 90


def _tooltip(text: str) -> str:
    """Hover text for vis-network, safe from streamlit-agraph's ``innerHTML``.

    The component copies every node title into a ``div`` through
    ``innerHTML`` (and a double click opens that text as a URL), so the text
    is HTML-escaped and starts with "Scene", never with a URL scheme.
    """
    return html.escape(text, quote=False)


@functools.lru_cache(maxsize=32)
def _base_data(view: StoryView) -> tuple[dict[str, dict], list[dict]]:
    """Nodes (by id) and edges of one story revision, positions included.

    Positions come from the view's layout (`kg.graph.layered_layout`, one
    linear pass), so the browser does no layout of its own: vis-network's
    hierarchical layout is recursive and crashes the tab on long stories.
    """
    salience = view.salience
    pos = view.layout
    nodes = {}
    for sid in view.order:
        scene = view.scene(sid)
        present = salience.get(sid, 0.0)
        take = f" · take {scene.selected_take}" if scene.selected_take else ""
        x, y = pos[sid]
        nodes[sid] = {
            "id": sid,
            # drawn on the canvas as text (never parsed as HTML)
            "label": scene.title if len(scene.title) <= 28 else scene.title[:27] + "…",
            # wrapped within the space between layers, so neighbours never overlap
            "widthConstraint": {"maximum": _LAYER_PX - 40},
            "title": _tooltip(
                f"Scene {sid} · {scene.title}\n{scene.status}{take}\n"
                f"memory {present:.2f}"
            ),
            "shape": "dot",
            "size": round(_MIN_SIZE + (_MAX_SIZE - _MIN_SIZE) * present, 1),
            "color": STATUS_COLOURS[scene.status],
            "opacity": round(0.45 + 0.55 * present, 2),
            "x": x * _LAYER_PX,
            "y": -y * _ROW_PX,
        }
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


def graph_window(view: StoryView, selected: str | None) -> list[str] | None:
    """The scenes drawn around ``selected`` when the story is too large; else None."""
    if len(view.order) <= MAX_GRAPH_SCENES:
        return None
    center = selected if selected in view.graph else view.order[0]
    return view.nearest(center, WINDOW_SCENES)


def _centred(nodes: list[dict]) -> list[dict]:
    """Nodes moved so their bounding box is centred on the origin.

    The browser keeps its viewport when only the data changes, so every
    window of a large story appears in the middle of the view the first one
    was fitted to.
    """
    xs, ys = [n["x"] for n in nodes], [n["y"] for n in nodes]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    return [{**n, "x": n["x"] - cx, "y": n["y"] - cy} for n in nodes]


@functools.lru_cache(maxsize=1024)
def _thumbnail(path: str, mtime_ns: int) -> str | None:
    """A small JPEG of a frame as a data URL (keyed on the file's version)."""
    from kg.errors import StoryError
    from kg.files import read_image

    try:  # never blocks on a FIFO; a bomb is refused before decoding
        img = read_image(path, what="last frame", thumbnail=THUMB_SIZE)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=80)
    except (OSError, ValueError, StoryError):
        return None  # unreadable: the node stays a dot (the take card says why)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _scene_thumbnail(view: StoryView, scene_id: str) -> str | None:
    from studio.services import resolve_asset

    take = view.scene(scene_id).selected
    if take is None or take.status != "done":
        return None
    path = resolve_asset(view.path, take.files.last_frame)
    if path is None:
        return None
    return _thumbnail(str(path), os.lstat(path).st_mtime_ns)


def _with_thumbnail(node: dict, image: str | None, border: str, width: int) -> dict:
    if image is None:
        if border == node["color"] and width == 1:
            return node
        return {
            **node,
            "borderWidth": width,
            "color": {"background": node["color"], "border": border},
        }
    return {
        **node,
        "shape": "image",
        "image": image,
        "size": max(node["size"], 22),
        "shapeProperties": {"useBorderWithImage": True},
        "borderWidth": width,
        "color": {"background": node["color"], "border": border},
    }


def graph_data(view: StoryView, selected: str | None = None) -> dict:
    """The component's data: nodes and edges, thumbnails of the scenes drawn,
    the selected node outlined."""
    all_nodes, all_edges = _base_data(view)
    window = graph_window(view, selected)
    if window is None:
        nodes, edges = list(all_nodes.values()), all_edges
    else:
        shown = set(window)
        nodes = _centred([all_nodes[sid] for sid in window])
        edges = [e for e in all_edges if e["from"] in shown and e["to"] in shown]
    # at most MAX_GRAPH_SCENES thumbnails, each made once per file version
    nodes = [
        _with_thumbnail(
            n,
            _scene_thumbnail(view, n["id"]),
            SELECTED_BORDER if n["id"] == selected else n["color"],
            4 if n["id"] == selected else 3,
        )
        if n["id"] == selected or view.scene(n["id"]).selected_take is not None
        else n
        for n in nodes
    ]
    return {"nodes": _live(nodes, view), "edges": edges}


def _live(nodes: list[dict], view: StoryView) -> list[dict]:
    """The worker's statuses over the saved ones (the scene it is making is
    ``generating`` before the story file says so)."""
    from studio.services import live_statuses

    live = live_statuses(view.path)
    if not live:
        return nodes
    out = []
    for n in nodes:
        status = live.get(n["id"])
        if status is None or status == view.scene(n["id"]).status:
            out.append(n)
            continue
        colour = STATUS_COLOURS[status]
        border = n["color"]["border"] if isinstance(n["color"], dict) else colour
        if border != SELECTED_BORDER:  # outlined in its status colour
            border = colour
        out.append({**n, "color": {"background": colour, "border": border}})
    return out


@functools.lru_cache(maxsize=4)
def _config_json(height: int) -> str:
    from streamlit_agraph import Config

    config = Config(
        height=height,
        width=800,
        directed=True,
        physics=False,  # a fixed layout: nodes stay put while scenes generate
        hierarchical=False,  # positions come with the nodes (layered_layout)
    )
    config.width = "100%"
    options = config.to_dict()
    # Config also copies its layout keywords to the top level, where
    # vis-network rejects them (console errors); they live under "layout".
    for name in ("groups", "direction", "sortMethod", "levelSeparation", "nodeSpacing"):
        options.pop(name, None)
    # Zoom in and out, and fit every scene back in view, with vis-network's own
    # buttons (bottom right) as well as the wheel; the view pans by dragging.
    options["interaction"] = {
        "navigationButtons": True,
        "zoomView": True,
        "dragView": True,
        "hover": True,
        "tooltipDelay": 300,
    }
    return json.dumps(options)


# Runs in the studio's page (same origin as the component's iframe): hides
# vis-network's tooltip (`.vis-tooltip` inside the iframe) when the pointer
# leaves the iframe or its page, on a press or the wheel, when the iframe
# loses focus and when Streamlit sends the component new data (a redraw).
# Each listener is added once per iframe document and window.
_GUARD_JS = """
const FRAME = 'iframe[title="streamlit_agraph.agraph"]';
const MARK = '__storygraphTooltipGuard';
const hide = (frame) => {
  const doc = frame.contentDocument;
  if (!doc) return;
  doc.querySelectorAll('.vis-tooltip').forEach((t) => {
    t.style.visibility = 'hidden';
  });
};
const guard = (frame) => {
  const off = () => hide(frame);
  if (!frame[MARK]) {
    frame[MARK] = true;
    frame.addEventListener('mouseleave', off);
    frame.addEventListener('load', () => guard(frame));
  }
  const win = frame.contentWindow;
  const doc = frame.contentDocument;
  if (win && !win[MARK]) {
    win[MARK] = true;
    win.addEventListener('blur', off);
    win.addEventListener('message', (event) => {
      if (event.data && event.data.type === 'streamlit:render') off();
    });
  }
  if (doc && doc.documentElement && !doc[MARK]) {
    doc[MARK] = true;
    doc.addEventListener('pointerdown', off, true);
    doc.addEventListener('wheel', off, {capture: true, passive: true});
    doc.documentElement.addEventListener('mouseleave', off);
  }
};
export default function () {
  document.querySelectorAll(FRAME).forEach((frame) => {
    guard(frame);
    hide(frame);
  });
}
"""


@functools.cache
def _tooltip_guard():  # noqa: ANN202 - the declared component's mount command
    return st.components.v2.component("storygraph.graph_tooltip_guard", js=_GUARD_JS)


def story_graph(
    view: StoryView, selected: str | None, *, key: str, height: int = 420
) -> str | None:
    """Draw the graph; returns the id of a node clicked since the last run.

    The tooltip guard is mounted right after the graph; its data is a digest
    of the graph's, so it runs again (hiding any tooltip) on every redraw.
    """
    data = json.dumps(graph_data(view, selected))
    clicked = _agraph()(data=data, config=_config_json(height), key=key, default=None)
    digest = hashlib.blake2b(data.encode(), digest_size=8).hexdigest()
    _tooltip_guard()(key=f"{key}.tooltip_guard", data=digest, height=0)
    last_key = f"{key}.last_click"
    if clicked == st.session_state.get(last_key):
        return None
    st.session_state[last_key] = clicked
    return clicked if clicked in view.graph else None
