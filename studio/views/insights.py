"""Insights page: scores across the story, memory decay, failed and stale scenes.

Scores are those of each scene's selected take, in generation order; a metric
the observer could not compute is listed with its reason, never plotted as a
number. Every metric of the table (`kg.metrics`) is charted under its label:
the unitless scores share one chart, a metric with a unit gets a chart of its
own (the optical-flow ones beside each other under motion), and the table's
definitions are listed on the page. Colour drift has a section of its own:
``line_color_drift`` of each story line as one curve (`kg.lines`), with the
joins whose ``join_color_shift`` is over ``settings.color.threshold``
marked and listed with which way the colour went. Memory decay is
``kg.memory.salience_timeline`` along one story line.
"""

from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st

from kg.lines import story_lines
from kg.metrics import Metric, metric, metric_table
from studio import services
from studio.session import story_page

__all__ = [
    "insights_page",
    "score_rows",
    "decay_rows",
    "frozen_rows",
    "chart_groups",
    "metric_notes",
    "drift_rows",
    "slipped_joins",
]


def chart_groups() -> tuple[list[Metric], list[Metric], list[Metric]]:
    """The metrics of the table by chart: (unitless scores, sharing one chart;
    metrics with a unit, a chart each; optical-flow metrics with a unit, a
    chart each in the motion section)."""
    shared = [m for m in metric_table() if not m.unit]
    own = [m for m in metric_table() if m.unit and "flow" not in m.needs]
    motion = [m for m in metric_table() if m.unit and "flow" in m.needs]
    return shared, own, motion


@functools.lru_cache(maxsize=16)
def score_rows(
    view: services.StoryView,
) -> tuple[list[dict], dict[tuple[str, str], list[str]]]:
    """(one row per scene and computed metric, (metric label, why) -> scene ids)."""
    rows: list[dict] = []
    missing: dict[tuple[str, str], list[str]] = {}
    for position, sid in enumerate(view.order, start=1):
        scene = view.scene(sid)
        take = scene.selected
        if take is None:
            continue
        if take.scores is None:
            missing.setdefault(("all metrics", "take not scored"), []).append(sid)
            continue
        for m in metric_table():
            value = getattr(take.scores, m.name)
            if value is None:
                reason = take.scores.unavailable.get(m.name, "not computed")
                missing.setdefault((m.label, reason), []).append(sid)
                continue
            rows.append(
                {
                    "position": position,
                    "scene": f"{position}. {scene.title}",
                    "metric": m.name,
                    "label": m.label,
                    "value": float(value),
                }
            )
    return rows, missing


def metric_notes() -> list[str]:
    """One line per metric of the table: label, name, range, which way is
    better, what it needs, its definition (markdown)."""
    notes = []
    for m in metric_table():
        unit = f", {m.unit}" if m.unit else ""
        join = "; at continuous joins only" if m.at_join else ""
        notes.append(
            f"- **{m.label}** (`{m.name}`; {m.range_text}{unit}, {m.better_text}; "
            f"needs {m.needs_text}{join}): {m.definition}"
        )
    return notes


def _metric_caption(m: Metric) -> str:
    """A chart caption for one metric: its definition and which way is better."""
    better = m.better_text[0].upper() + m.better_text[1:]
    join = " Cuts and first scenes have none." if m.at_join else ""
    return f"{m.definition} {better}.{join}"


def _grouped(by: dict[str, list[str]]) -> str:
    """The most common value once, the others with the labels they go with."""
    common = max(by, key=lambda k: len(by[k]))
    if len(by) == 1:
        return f"{common} for each"
    rest = [f"{', '.join(labels)}: {k}" for k, labels in by.items() if k != common]
    return "; ".join([*rest, f"the others: {common}"])


def _shared_caption(metrics: list[Metric]) -> str:
    """Which way is better and the ranges of the metrics sharing one chart."""
    better: dict[str, list[str]] = {}
    ranges: dict[str, list[str]] = {}
    for m in metrics:
        better.setdefault(m.better_text, []).append(m.label)
        ranges.setdefault(m.range_text, []).append(m.label)
    direction = _grouped(better)
    return (
        f"{direction[0].upper()}{direction[1:]}. Ranges: {_grouped(ranges)}. "
        "What each one measures is listed under the charts."
    )


@functools.lru_cache(maxsize=64)
def decay_rows(view: services.StoryView, leaf: str) -> list[dict]:
    """Salience of each entity at each scene on the story line ending at ``leaf``."""
    rows = []
    for position, (sid, memories) in enumerate(view.salience_timeline(leaf), start=1):
        title = view.scene(sid).title
        for m in memories:
            rows.append(
                {
                    "position": position,
                    "scene": f"{position}. {title}",
                    "entity": f"{m.name} ({m.kind})",
                    "salience": round(m.salience, 4),
                    "remembered": m.remembered,
                }
            )
    return rows


def _line_chart(  # noqa: ANN202
    data,  # noqa: ANN001 - pandas.DataFrame
    y: str,
    y_title: str,
    color: str,
    height: int = 280,
    y_max: float | None = None,
    y_min: float = 0.0,
):
    """Values per scene in story order, one line per ``color`` value."""
    import altair as alt

    scale = alt.Scale(domain=[y_min, y_max]) if y_max is not None else alt.Undefined

    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "scene:N",
                sort=None,
                title="scene (story order)",
                axis=alt.Axis(labelAngle=-30, labelLimit=180),
            ),
            y=alt.Y(f"{y}:Q", title=y_title, scale=scale),
            color=alt.Color(f"{color}:N", title="metric"),
            tooltip=[
                "scene",
                alt.Tooltip(f"{color}:N", title="metric"),
                alt.Tooltip(f"{y}:Q", format=".3f"),
            ],
        )
        .properties(height=height)
    )


def _metric_chart(container, m: Metric, rows: list[dict]) -> None:  # noqa: ANN001 - Streamlit container
    """One metric with a unit per scene, its axis from the bottom of its range
    to at least its ``chart_top`` (never a flat axis when every value is small)."""
    import pandas as pd

    if not rows:
        return
    y_max = max(m.chart_top or 0.0, *(r["value"] for r in rows))
    if m.high is not None:
        y_max = min(y_max, m.high)
    chart = _line_chart(
        pd.DataFrame(rows), "value", m.axis_title, "label", 240, y_max, m.low
    )
    container.altair_chart(chart, width="stretch")
    container.caption(_metric_caption(m))


def _scores_chart(view: services.StoryView) -> None:
    import pandas as pd

    st.subheader("Scores across the story")
    rows, missing = score_rows(view)
    shared, own, _ = chart_groups()
    names = {m.name for m in shared}
    scores = [r for r in rows if r["metric"] in names]
    if scores:
        st.altair_chart(
            _line_chart(pd.DataFrame(scores), "value", "score", "label"),
            width="stretch",
        )
        st.caption(_shared_caption([m for m in shared if m.name in names]))
    for m in own:
        those = [r for r in rows if r["metric"] == m.name]
        if those:
            st.markdown(f"**{m.label[0].upper()}{m.label[1:]}**")
            _metric_chart(st, m, those)
    if not rows:
        st.info("No scored takes yet: generate scenes on the Storyboard.")
    if missing:
        st.markdown("**Unavailable metrics**")
        st.dataframe(
            [
                {"metric": label, "scenes": ", ".join(ids), "why": why}
                for (label, why), ids in missing.items()
            ],
            hide_index=True,
            width="stretch",
        )


def frozen_rows(view: services.StoryView) -> list[dict[str, str]]:
    """Scenes whose selected take does not move (`scoring.motion.is_static`)."""
    motion = metric("motion")
    rows = []
    for sid in view.order:
        take = view.scene(sid).selected
        if take is not None and take.scores is not None and take.scores.static:
            rows.append(
                {
                    "scene": view.labels[sid],
                    "take": str(take.index),
                    motion.axis_title: f"{take.scores.motion or 0.0:.2f}",
                }
            )
    return rows


def _motion_chart(view: services.StoryView) -> None:
    rows, _ = score_rows(view)
    _, _, flow = chart_groups()
    charted = [(m, [r for r in rows if r["metric"] == m.name]) for m in flow]
    charted = [(m, those) for m, those in charted if those]
    frozen = frozen_rows(view)
    if not (charted or frozen):
        return
    st.subheader("Motion and flowing cuts")
    for pair in range(0, len(charted), 2):
        columns = st.columns(2)
        for col, (m, those) in zip(columns, charted[pair : pair + 2], strict=False):
            _metric_chart(col, m, those)
    if frozen:
        st.markdown(f"**Frozen clips ({len(frozen)})**")
        st.dataframe(frozen, hide_index=True, width="stretch")
        st.caption("Nothing moves more than half a pixel between sampled frames.")


@functools.lru_cache(maxsize=16)
def drift_rows(view: services.StoryView) -> list[dict]:
    """One row per scene of each story line with a scored colour drift:
    the line, the scene's place on it, ``line_color_drift``, and its join's
    ``join_color_shift`` with whether it is over the story's threshold."""
    threshold = view.story.settings.color.threshold
    rows = []
    for line in story_lines(view.graph):
        name = f"line to {view.labels[line.leaf]}" + (" (main)" if line.main else "")
        for position, sid in enumerate(line.scenes, start=1):
            take = view.scene(sid).selected
            scores = take.scores if take is not None else None
            if scores is None or scores.line_color_drift is None:
                continue
            join = scores.join_color_shift
            rows.append(
                {
                    "line": name,
                    "position": position,
                    "scene": f"{position}. {view.scene(sid).title}",
                    "scene_id": sid,
                    "drift": float(scores.line_color_drift),
                    "join": None if join is None else float(join),
                    "slipped": join is not None and join > threshold,
                }
            )
    return rows


def slipped_joins(view: services.StoryView) -> list[dict[str, str]]:
    """Continuous joins whose colour shift is over the threshold, once each,
    with which way the colour went."""
    threshold = view.story.settings.color.threshold
    rows = []
    for sid in view.order:
        take = view.scene(sid).selected
        scores = take.scores if take is not None else None
        if scores is None or scores.join_color_shift is None:
            continue
        if scores.join_color_shift <= threshold:
            continue
        shift = scores.color_shifts.get("join_color_shift")
        source = take.params.continuity_source
        rows.append(
            {
                "join": f"{view.labels.get(source.scene_id, '?') if source else '?'} "
                f"→ {view.labels[sid]}",
                "ΔE00": f"{scores.join_color_shift:.2f}",
                "which way": (shift.words() if shift else "") or "-",
                "corrected": "yes" if take.color_correction else "no",
            }
        )
    return rows


def _drift_chart(view: services.StoryView) -> None:
    import altair as alt
    import pandas as pd

    rows = drift_rows(view)
    if not rows:
        return
    st.subheader("Colour drift along each line")
    threshold = view.story.settings.color.threshold
    data = pd.DataFrame(rows)
    x = alt.X(
        "position:Q",
        title="scene on the line",
        axis=alt.Axis(tickMinStep=1),
    )
    line = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("drift:Q", title=metric("line_color_drift").axis_title),
            color=alt.Color("line:N", title="line"),
            tooltip=[
                "line",
                "scene",
                alt.Tooltip("drift:Q", format=".2f", title="drift ΔE00"),
                alt.Tooltip("join:Q", format=".2f", title="join ΔE00"),
            ],
        )
    )
    slipped = (
        alt.Chart(data[data["slipped"]])
        .mark_point(shape="triangle-up", size=140, filled=True, color="#d62728")
        .encode(x=x, y="drift:Q", tooltip=["line", "scene", "join"])
    )
    st.altair_chart((line + slipped).properties(height=300), width="stretch")
    correction = view.story.settings.color.correction
    st.caption(
        f"{metric('line_color_drift').definition} A red triangle marks a join "
        f"whose colour shift is over {threshold:g} ΔE00 (Settings, Colour "
        f"drift). Correction: {correction}."
    )
    joins = slipped_joins(view)
    if joins:
        st.markdown(f"**Joins over {threshold:g} ΔE00 ({len(joins)})**")
        st.dataframe(joins, hide_index=True, width="stretch")


def _metric_notes() -> None:
    with st.expander("What the metrics mean"):
        st.markdown("\n".join(metric_notes()))


def _decay_chart(view: services.StoryView) -> None:
    import altair as alt
    import pandas as pd

    st.subheader("Memory decay along the story")
    leaves = view.leaves()
    if not leaves:
        st.info("No scenes yet.")
        return
    leaf = st.selectbox(
        "Story line ending at",
        leaves,
        format_func=view.labels.get,
        key="insights.leaf",
    )
    rows = decay_rows(view, leaf)
    if not rows:
        st.info("No characters or environments appear on this story line.")
        return
    data = pd.DataFrame(rows)
    threshold = view.story.settings.decay.threshold
    line = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "scene:N",
                sort=None,
                title="scene (story line)",
                axis=alt.Axis(labelAngle=-30, labelLimit=180),
            ),
            y=alt.Y("salience:Q", title="salience"),
            color=alt.Color("entity:N"),
            tooltip=["scene", "entity", "salience", "remembered"],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(strokeDash=[4, 4], color="gray")
        .encode(y=alt.Y("threshold:Q", title="salience"))
    )
    st.altair_chart((line + rule).properties(height=300), width="stretch")
    st.caption(
        f"Below the dashed line ({threshold:g}) an entity leaves the story memory "
        "the prompts carry."
    )


def _problems(view: services.StoryView, folder: Path) -> None:
    st.subheader("Failed and stale scenes")
    failed = [view.scene(s) for s in view.order if view.scene(s).status == "failed"]
    stale = [view.scene(s) for s in view.order if view.scene(s).status == "stale"]
    interrupted = [
        view.scene(s) for s in view.order if view.scene(s).status == "interrupted"
    ]
    if not (failed or stale or interrupted):
        st.success("No failed, stale or interrupted scenes.")
        return
    rows = []
    for scene in failed:
        last = scene.takes[-1] if scene.takes else None
        rows.append(
            {
                "scene": view.labels[scene.id],
                "status": "failed",
                "detail": (last.error if last and last.error else "no error recorded"),
            }
        )
    for scene in stale:
        rows.append(
            {
                "scene": view.labels[scene.id],
                "status": "stale",
                "detail": "its continuity source or its own text changed since its "
                "take was made; generate it again",
            }
        )
    for scene in interrupted:
        rows.append(
            {
                "scene": view.labels[scene.id],
                "status": "interrupted",
                "detail": "stopped before it finished; generate it again",
            }
        )
    st.dataframe(rows, hide_index=True, width="stretch")


def insights_page() -> None:
    """Charts and lists that show how the open story is doing."""
    folder = story_page("Insights")
    if folder is None:
        return
    view = services.story_view(folder)
    total = len(view.order)
    done = sum(1 for s in view.story.scenes if s.status == "done")
    a, b, c = st.columns(3)
    a.metric("Scenes", total)
    b.metric("Done", done)
    c.metric("Takes", sum(len(s.takes) for s in view.story.scenes))
    _scores_chart(view)
    _motion_chart(view)
    _drift_chart(view)
    _metric_notes()
    _decay_chart(view)
    _problems(view, folder)
