"""The takes of a scene: each clip, its parameters, scores and selection."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from kg.metrics import metric, metric_table
from kg.schema import SceneNode
from studio import services
from studio.components.media import show_audio, show_video
from studio.literal import markdown_literal as md
from studio.session import flash

__all__ = ["takes_panel", "score_rows"]


def score_rows(take) -> tuple[list[dict[str, str]], dict[str, list[str]]]:  # noqa: ANN001 - kg.schema.Take
    """(metric/value rows, reason -> metrics without a value), every metric
    of the table (`kg.metrics`) under its short label.

    Reasons are kept out of the table: a long one in a third column pushed
    the values out of a narrow take card.
    """
    scores = take.scores
    table = metric_table()
    if scores is None:
        return [], {"this take was not scored": [m.short for m in table]}
    rows: list[dict[str, str]] = []
    missing: dict[str, list[str]] = {}
    for m in table:
        value = getattr(scores, m.name)
        if value is None:
            why = scores.unavailable.get(m.name, "not computed")
            missing.setdefault(why, []).append(m.short)
            rows.append({"metric": m.short, "value": "–"})
        else:
            rows.append({"metric": m.short, "value": f"{value:.3f}"})
    if scores.static is not None:
        rows.append({"metric": "static", "value": "yes" if scores.static else "no"})
    for cid, value in scores.character_consistency.items():
        rows.append({"metric": f"character {cid}", "value": f"{value:.3f}"})
    return rows, missing


def _scores(take) -> None:  # noqa: ANN001
    if take.scores is None:
        st.caption("Not scored (`storygraph score` scores it).")
        return
    rows, missing = score_rows(take)
    if rows:
        import pandas as pd

        # a static table sized to its content: in a narrow take card a
        # scrolling grid hid the value column
        table = pd.DataFrame(rows).set_index("metric")
        table.index.name = None
        st.table(table)
    for why, names in missing.items():
        st.caption(f"Unavailable ({', '.join(names)}): {md(why)}")


def takes_panel(folder: Path, view: services.StoryView, scene: SceneNode) -> None:
    st.subheader(f"Takes of {md(scene.title)}")
    if not scene.takes:
        st.caption("No takes yet: generate this scene.")
        return
    would_stale = services.stale_if_selected(view, scene.id)
    takes = sorted(scene.takes, key=lambda t: -t.index)
    cols = st.columns(2)  # two a row: room for the clip and its score table
    for i, take in enumerate(takes):
        with cols[i % len(cols)], st.container(border=True):
            _take_card(folder, scene, take, would_stale)


def _windows_text(take) -> str:  # noqa: ANN001
    """The take's windows and the frames it repeats from its predecessor."""
    parts = []
    if take.windows:
        seeds = ", ".join(str(w.seed) for w in take.windows)
        parts.append(f"long take: {len(take.windows)} windows (seeds {seeds})")
    if take.overlap_frames:
        n = take.overlap_frames
        parts.append(
            f"first {n} frame{'s' if n != 1 else ''} repeat the previous take "
            "(skipped when played in sequence)"
        )
    return "".join(f" · {p}" for p in parts)


def _sound_text(take) -> str:  # noqa: ANN001
    carried = take.params.audio_continuity
    if carried is None:
        return ""
    if carried == "latent":
        return " · sound carried on from the previous take"
    return " · with sound"


def _references_text(take) -> str:  # noqa: ANN001
    refs = take.params.references
    if not refs:
        return ""
    named = ", ".join(f"{r.entity} {r.path.rsplit('/', 1)[-1]}" for r in refs)
    return f" · references before the clip ({refs[0].strength:g}): {md(named)}"


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


def _take_card(folder: Path, scene: SceneNode, take, would_stale: list[str]) -> None:  # noqa: ANN001
    chosen = take.index == scene.selected_take
    st.markdown(
        f"**Take {take.index}**"
        + (" · selected" if chosen else "")
        + f" · {take.status}"
    )
    shown = show_video(st, folder, take.files.video, f"clip of take {take.index}")
    if not shown and take.status == "done":
        st.warning(f"Clip missing on disk: {md(take.files.video)}")
    show_audio(st, folder, take.files.audio, f"sound of take {take.index}")
    for problem in services.frame_problems(folder, take):
        st.warning(md(problem))
    if take.error:
        st.error(md(take.error))
    if take.best_of is not None:
        st.caption(best_of_text(take))
    p = take.params
    st.caption(
        f"{md(p.backend)}{' · ' + md(p.model) if p.model else ''} · seed {p.seed} · "
        f"{p.width}×{p.height} · {p.num_frames} frames @ {p.fps} fps · "
        f"continuity {p.continuity_used}"
        + (f" ({md(p.continuity_note)})" if p.continuity_note else "")
        + _sound_text(take)
        + (
            " · **random weights** (a test model: noise, not a film)"
            if p.random_weights
            else ""
        )
        + _windows_text(take)
        + _references_text(take)
        + (
            f" · cost ${take.cost.usd:.2f} ({md(take.cost.source)})"
            if take.cost is not None
            else ""
        )
    )
    _scores(take)
    if chosen or take.status != "done":
        return
    if would_stale:
        st.caption("Selecting it makes stale: " + ", ".join(would_stale))
    if st.button(
        f"Select take {take.index}", key=f"storyboard.select_take.{take.index}"
    ):
        try:
            stale = services.select_take(folder, scene.id, take.index)
        except (KeyError, ValueError, services.StoryError) as exc:
            st.error(md(exc))
            return
        msg = f"Selected take {take.index} of {scene.id}."
        if stale:
            msg += f" Now stale (generate again): {', '.join(stale)}."
        flash(msg, "warning" if stale else "success")
        st.rerun()
