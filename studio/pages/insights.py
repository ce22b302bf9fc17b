"""Insights page: scores across the story, memory decay, failed and stale scenes.

Scores are those of each scene's selected take, in generation order; a metric
the observer could not compute is listed with its reason, never plotted as a
number. Memory decay is ``kg.memory.salience_timeline`` along one story line.
"""

from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st

from studio import services
from studio.session import current_story

__all__ = ["insights_page", "score_rows", "decay_rows"]


@functools.lru_cache(maxsize=16)
def score_rows(
    view: services.StoryView,
) -> tuple[list[dict], dict[tuple[str, str], list[str]]]:
    """(one row per scene and computed metric, (metric, why) -> scene ids)."""
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
        for metric in services.SCORE_FIELDS:
            value = getattr(take.scores, metric)
            if value is None:
                reason = take.scores.unavailable.get(metric, "not computed")
                missing.setdefault((metric, reason), []).append(sid)
                continue
            rows.append(
                {
                    "position": position,
                    "scene": f"{position}. {scene.title}",
                    "metric": metric,
                    "value": float(value),
                }
            )
    return rows, missing


@functools.lru_cache(maxsize=64)
def decay_rows(view: services.StoryView, leaf: str) -> list[dict]:
    """Salience of each entity at each scene on the story line ending at ``leaf``."""
    from kg.memory import salience_timeline

    rows = []
    for position, (sid, memories) in enumerate(
        salience_timeline(view.graph, leaf), start=1
    ):
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


def _scores_chart(view: services.StoryView) -> None:
    import altair as alt
    import pandas as pd

    st.subheader("Scores across the story")
    rows, missing = score_rows(view)
    if rows:
        data = pd.DataFrame(rows)
        chart = (
            alt.Chart(data)
            .mark_line(point=True)
            .encode(
                x=alt.X("scene:N", sort=None, title="scene (story order)"),
                y=alt.Y("value:Q", title="score"),
                color=alt.Color("metric:N"),
                tooltip=["scene", "metric", alt.Tooltip("value:Q", format=".3f")],
            )
            .properties(height=300)
        )
        st.altair_chart(chart, width="stretch")
    else:
        st.info("No scored takes yet: generate scenes on the Storyboard.")
    if missing:
        st.markdown("**Unavailable metrics**")
        st.dataframe(
            [
                {"metric": metric, "scenes": ", ".join(ids), "why": why}
                for (metric, why), ids in missing.items()
            ],
            hide_index=True,
            width="stretch",
        )


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
            x=alt.X("scene:N", sort=None, title="scene (story line)"),
            y=alt.Y("salience:Q"),
            color=alt.Color("entity:N"),
            tooltip=["scene", "entity", "salience", "remembered"],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(strokeDash=[4, 4], color="gray")
        .encode(y="threshold:Q")
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
                "detail": "its continuity source changed; generate it again",
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
    st.title("Insights")
    folder = current_story()
    if folder is None:
        st.info("No story is open: create or open one on the Stories page.")
        return
    view = services.story_view(folder)
    total = len(view.order)
    done = sum(1 for s in view.story.scenes if s.status == "done")
    a, b, c = st.columns(3)
    a.metric("Scenes", total)
    b.metric("Done", done)
    c.metric("Takes", sum(len(s.takes) for s in view.story.scenes))
    _scores_chart(view)
    _decay_chart(view)
    _problems(view, folder)
