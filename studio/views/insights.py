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
from studio.session import story_page

__all__ = ["insights_page", "score_rows", "decay_rows", "frozen_rows", "PIXEL_MAE"]

# On a 0-255 scale, unlike the [0, 1] scores: it gets a chart of its own.
PIXEL_MAE = "seam_pixel_mae"
# Pixels and a ratio around 1: the motion section charts them.
MOTION_CHARTS = ("motion", "seam_flow")


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
):
    """Values per scene in story order, one line per ``color`` value."""
    import altair as alt

    scale = alt.Scale(domain=[0, y_max]) if y_max is not None else alt.Undefined

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
            color=alt.Color(f"{color}:N"),
            tooltip=["scene", color, alt.Tooltip(f"{y}:Q", format=".3f")],
        )
        .properties(height=height)
    )


def _scores_chart(view: services.StoryView) -> None:
    import pandas as pd

    st.subheader("Scores across the story")
    rows, missing = score_rows(view)
    scores = [r for r in rows if r["metric"] not in (PIXEL_MAE, *MOTION_CHARTS)]
    mae = [r for r in rows if r["metric"] == PIXEL_MAE]
    if scores:
        st.altair_chart(
            _line_chart(
                pd.DataFrame(scores),
                "value",
                "score",
                "metric",
            ),
            width="stretch",
        )
        st.caption(
            "Higher is better. clip_score runs from 0 to 2.5 (CLIPScore), the "
            "others from 0 to 1; dynamic_degree is VBench's: 1 when the clip "
            "moves, 0 when it barely does."
        )
    if mae:
        st.markdown("**Seam pixel difference**")
        st.altair_chart(
            _line_chart(
                pd.DataFrame(mae),
                "value",
                "pixel MAE (0-255)",
                "metric",
                height=240,
                # from 0, and never a flat axis when every seam is seamless
                y_max=max(10.0, *(r["value"] for r in mae)),
            ),
            width="stretch",
        )
        st.caption(
            "Mean absolute difference between a scene's first frame and the "
            "previous scene's last frame, in 8-bit pixel values (0-255): lower is "
            "a smoother cut. Cuts and first scenes have none."
        )
    if not rows:
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


def frozen_rows(view: services.StoryView) -> list[dict[str, str]]:
    """Scenes whose selected take does not move (`scoring.motion.is_static`)."""
    rows = []
    for sid in view.order:
        take = view.scene(sid).selected
        if take is not None and take.scores is not None and take.scores.static:
            rows.append(
                {
                    "scene": view.labels[sid],
                    "take": str(take.index),
                    "motion (px)": f"{take.scores.motion or 0.0:.2f}",
                }
            )
    return rows


def _side_chart(
    col,  # noqa: ANN001 - a Streamlit column
    rows: list[dict],
    y_title: str,
    y_floor: float,
    caption: str,
) -> None:
    """One metric per scene in a half-width chart, its axis from 0 to at least
    ``y_floor`` (never a flat axis when every value is small)."""
    import pandas as pd

    if not rows:
        return
    y_max = max(y_floor, *(r["value"] for r in rows))
    chart = _line_chart(pd.DataFrame(rows), "value", y_title, "metric", 240, y_max)
    col.altair_chart(chart, width="stretch")
    col.caption(caption)


def _motion_chart(view: services.StoryView) -> None:
    rows, _ = score_rows(view)
    moves = [r for r in rows if r["metric"] == "motion"]
    seams = [r for r in rows if r["metric"] == "seam_flow"]
    frozen = frozen_rows(view)
    if not (moves or seams or frozen):
        return
    st.subheader("Motion and flowing cuts")
    left, right = st.columns(2)
    _side_chart(
        left,
        moves,
        "motion (px)",
        8.0,
        "Optical flow (OpenCV DIS) between frames sampled at about 8 fps: the "
        "mean of the largest 5 % of motions, in pixels of a 256-pixel short "
        "side. VBench counts a clip as dynamic above 6.",
    )
    _side_chart(
        right, seams, "seam flow (ratio)", 3.0,
        "Flow across each continuous join against the flow just before and "
        "after it: about 1 when the cut flows, well above 1 when it jumps.",
    )  # fmt: skip
    if frozen:
        st.markdown(f"**Frozen clips ({len(frozen)})**")
        st.dataframe(frozen, hide_index=True, width="stretch")
        st.caption("Nothing moves more than half a pixel between sampled frames.")


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
    _decay_chart(view)
    _problems(view, folder)
