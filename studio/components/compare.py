"""Takes side by side: synced playback and one score table for all of them.

Two or more takes of a scene play in one player that starts, pauses and
seeks them together (an HTML component: the clips inline, a few lines of
script keeping every clip at the first one's time). Below, one table has a
column per take and a row per metric of the metric table (`kg.metrics`):
the best value of each row is highlighted by the metric's own direction
(higher, lower, nearest 1), and the rows the story's best-of-N objective
ranks by (Settings) are marked as deciding. Why a metric has no value (a
scorer whose weights are missing) is said once below the table, not once a
take.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import streamlit as st

from kg.metrics import metric, metric_table
from kg.paths import read_regular_file
from kg.schema import SceneNode, Take
from studio import services
from studio.components.media import show_video
from studio.literal import markdown_literal as md

__all__ = [
    "MAX_SYNCED_BYTES",
    "best_of_text",
    "best_takes",
    "compare_table",
    "compare_view",
    "default_compared",
    "synced_player_html",
]

# Clips are inlined into the player; past this (all together) each plays on
# its own: a page carrying hundreds of MB would stall the browser tab.
MAX_SYNCED_BYTES = 48 * 2**20
MAX_COMPARED = 4  # side by side in one row, each still wide enough to judge
DECIDING = "★ "  # marks a row of the best-of-N objective
_HIGHLIGHT = "background-color: #d8f3dc; font-weight: 600"


def best_of_text(take) -> str:  # noqa: ANN001 - kg.schema.Take
    """Why a best-of-N run chose this take ("" when it was not chosen so)."""
    choice = take.best_of
    if choice is None:
        return ""
    others = ", ".join(str(i) for i in choice.candidates)
    text = f"Best of {len(choice.candidates)} (takes {others})"
    if choice.runner_up is None:
        return f"{text}: the only candidate that finished."
    if choice.deciding_metric is None:
        return (
            f"{text}: tied with take {choice.runner_up} on every metric of the "
            "objective; the first take wins."
        )
    deciding = metric(choice.deciding_metric).label
    if choice.margin is None:
        return f"{text}: chosen on {deciding}, which take {choice.runner_up} lacks."
    return (
        f"{text}: chosen on {deciding}, {choice.margin:.3g} ahead "
        f"of take {choice.runner_up}."
    )


def default_compared(scene: SceneNode) -> list[int]:
    """The selected take and the newest others, up to `MAX_COMPARED`."""
    done = [t.index for t in sorted(scene.takes, key=lambda t: -t.index)]
    done = [i for i in done if scene.take(i).status == "done"]
    first = [scene.selected_take] if scene.selected_take in done else []
    return (first + [i for i in done if i not in first])[:MAX_COMPARED]


def _better(value: float, best: float, better: str) -> bool:
    if better == "higher":
        return value > best
    if better == "lower":
        return value < best
    return abs(math.log(max(value, 1e-9))) < abs(math.log(max(best, 1e-9)))


def _within(value: float, best: float, m: Any) -> bool:
    if m.better == "near 1":  # tolerance in log units of the ratio
        return (
            abs(math.log(max(value, 1e-9)) - math.log(max(best, 1e-9))) <= m.tolerance
        )
    return abs(value - best) <= m.tolerance


def best_takes(takes: list[Take]) -> dict[str, list[int]]:
    """Metric name -> the takes holding its best value; values within the
    metric's tolerance of it (`kg.metrics`, as best of N counts ties) too."""
    best: dict[str, list[int]] = {}
    for m in metric_table():
        values = [
            (t.index, getattr(t.scores, m.name))
            for t in takes
            if t.scores is not None and getattr(t.scores, m.name) is not None
        ]
        if len(values) < 2:
            continue
        top = values[0][1]
        for _, v in values[1:]:
            if _better(v, top, m.better):
                top = v
        # within the metric's tolerance of the best is as good (best of N's ties)
        best[m.name] = [
            i for i, v in values if not _better(top, v, m.better) or _within(v, top, m)
        ]
    return best


def compare_table(
    takes: list[Take], objective: list[str]
) -> tuple[Any | None, dict[str, list[str]]]:
    """(a styled table: metric rows, take columns, best values highlighted,
    None when no metric has a value; reason -> metrics without a value)."""
    import pandas as pd

    best = best_takes(takes)
    rows, marks, missing = [], [], {}
    for m in metric_table():
        row = {}
        for t in takes:
            value = getattr(t.scores, m.name) if t.scores is not None else None
            if value is None:
                why = (
                    t.scores.unavailable.get(m.name, "not computed")
                    if t.scores is not None
                    else "not scored"
                )
                missing.setdefault(why, [])
                if m.short not in missing[why]:
                    missing[why].append(m.short)
            row[f"take {t.index}"] = "–" if value is None else f"{value:.3f}"
        if all(v == "–" for v in row.values()):
            continue  # nothing to compare on: said below the table
        mark = DECIDING if m.name in objective else ""
        rows.append({"metric": f"{mark}{m.short} ({m.better_text})", **row})
        marks.append([t.index in best.get(m.name, []) for t in takes])
    if not rows:
        return None, missing
    frame = pd.DataFrame(rows).set_index("metric")
    frame.index.name = None

    def highlight(column: Any) -> list[str]:
        i = list(frame.columns).index(column.name)
        return [_HIGHLIGHT if marks[r][i] else "" for r in range(len(column))]

    return frame.style.apply(highlight, axis=0), missing


def synced_player_html(clips: list[tuple[str, str, bytes]]) -> str:
    """The player: ``(label, mime type, bytes)`` per clip, played together."""
    cells = "".join(
        "<figure><video muted playsinline preload='auto' "
        f"src='data:{mime};base64,{base64.b64encode(data).decode()}'></video>"
        f"<figcaption>{html.escape(label)}</figcaption></figure>"
        for label, mime, data in clips
    )
    return f"""
<style>
  body {{ margin: 0; font-family: sans-serif; font-size: 14px; }}
  .grid {{ display: grid; gap: 8px;
           grid-template-columns: repeat({len(clips)}, minmax(0, 1fr)); }}
  figure {{ margin: 0; }} video {{ width: 100%; background: #000; }}
  figcaption {{ text-align: center; color: #334e68; }}
  .bar {{ display: flex; gap: 8px; align-items: center; margin-top: 6px; }}
  button {{ padding: 4px 12px; }} input {{ flex: 1; }}
</style>
<div class="grid">{cells}</div>
<div class="bar">
  <button id="play" type="button">Play together</button>
  <button id="pause" type="button">Pause</button>
  <input id="seek" type="range" min="0" max="1000" value="0"
         aria-label="Position of every clip">
  <span id="time">0.0 s</span>
</div>
<script>
  const videos = [...document.querySelectorAll('video')];
  const lead = videos[0];
  const seek = document.getElementById('seek');
  const time = document.getElementById('time');
  const longest = () => Math.max(...videos.map(v => v.duration || 0)) || 1;
  const setAll = t => videos.forEach(v => {{
    v.currentTime = Math.min(t, (v.duration || t) - 0.01); }});
  document.getElementById('play').onclick = () => {{
    if (videos.every(v => v.ended)) setAll(0);
    videos.forEach(v => v.play());
  }};
  document.getElementById('pause').onclick = () => videos.forEach(v => v.pause());
  seek.oninput = () => setAll(seek.value / 1000 * longest());
  lead.addEventListener('timeupdate', () => {{
    seek.value = Math.round(lead.currentTime / longest() * 1000);
    time.textContent = lead.currentTime.toFixed(1) + ' s';
    videos.slice(1).forEach(v => {{  // keep every clip at the lead's time
      if (!v.paused && !v.ended && Math.abs(v.currentTime - lead.currentTime) > 0.08)
        v.currentTime = lead.currentTime;
    }});
  }});
</script>
"""


def _clips(folder: Path, takes: list[Take]) -> list[tuple[str, str, bytes]] | None:
    """The takes' clips for the player; None when one is missing or too large."""
    clips, total = [], 0
    for take in takes:
        try:
            path = services.media_file(folder, take.files.video, "clip")
        except (services.StoryError, OSError):
            return None
        if path is None:
            return None
        total += path.stat().st_size
        if total > MAX_SYNCED_BYTES:
            return None
        data = read_regular_file(path, MAX_SYNCED_BYTES)
        clips.append((f"Take {take.index}", "video/mp4", data))
    return clips


def compare_view(
    folder: Path, view: services.StoryView, scene: SceneNode, indices: list[int]
) -> None:
    """The chosen takes of ``scene`` side by side (two or more)."""
    takes = [scene.take(i) for i in indices]
    clips = _clips(folder, takes)
    if clips is not None:
        # sized to its content: a row of clips at any column width
        st.iframe(synced_player_html(clips), height="content")
    else:
        st.caption(
            "Played one by one: a clip is missing, or together they are over "
            f"{MAX_SYNCED_BYTES // 2**20} MB."
        )
        for col, take in zip(st.columns(len(takes)), takes, strict=True):
            col.caption(f"Take {take.index}")
            show_video(col, folder, take.files.video, f"clip of take {take.index}")
    objective = list(view.story.settings.best_of.objective)
    table, missing = compare_table(takes, objective)
    params = " · ".join(
        f"take {t.index}: seed {t.params.seed}"
        + (" (selected)" if t.index == scene.selected_take else "")
        for t in takes
    )
    st.caption(md(params))
    for take in takes:
        if take.best_of is not None:
            st.caption(f"Take {take.index}: {best_of_text(take)}")
    if table is not None:
        st.table(table)
        st.caption(
            f"Highlighted: the best value of each row. {DECIDING.strip()} marks "
            "the metrics best of N ranks by (Settings: Best of N), in order."
        )
    for why, names in missing.items():
        st.caption(f"Unavailable ({', '.join(names)}): {md(why)}")
