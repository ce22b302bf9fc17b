"""The takes of a scene: each clip, its parameters, scores and selection."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from kg.metrics import metric_table
from kg.schema import SceneNode
from studio import services
from studio.components.compare import (
    MAX_COMPARED,
    best_of_text,
    compare_view,
    default_compared,
)
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
    rows, _ = score_rows(take)
    if rows:
        import pandas as pd

        # a static table sized to its content: in a narrow take card a
        # scrolling grid hid the value column
        table = pd.DataFrame(rows).set_index("metric")
        table.index.name = None
        st.table(table)


def _unavailable_once(takes: list) -> None:
    """Why metrics have no value, once for all the takes shown (not per card)."""
    reasons: dict[str, list[str]] = {}
    for take in takes:
        if take.scores is None:
            continue
        for why, names in score_rows(take)[1].items():
            shown = reasons.setdefault(why, [])
            shown += [n for n in names if n not in shown]
    for why, names in reasons.items():
        st.caption(f"Unavailable ({', '.join(names)}): {md(why)}")


def takes_panel(folder: Path, view: services.StoryView, scene: SceneNode) -> None:
    """The scene's takes: side by side to compare (two or more done), or as
    cards (every take, failed ones with their error)."""
    st.subheader(f"Takes of {md(scene.title)}")
    if not scene.takes:
        st.caption("No takes yet: generate this scene.")
        return
    would_stale = services.stale_if_selected(view, scene.id)
    done = [t.index for t in sorted(scene.takes, key=lambda t: t.index)]
    done = [i for i in done if scene.take(i).status == "done"]
    if len(done) >= 2:
        shown = st.segmented_control(
            "Show takes",
            ["Compare", "Cards"],
            default="Compare",
            key="storyboard.takes_view",
            label_visibility="collapsed",
        )
        if shown != "Cards":
            _compare(folder, view, scene, done, would_stale)
            return
    takes = sorted(scene.takes, key=lambda t: -t.index)
    cols = st.columns(2)  # two a row: room for the clip and its score table
    for i, take in enumerate(takes):
        with cols[i % len(cols)], st.container(border=True):
            _take_card(folder, scene, take, would_stale)
    _unavailable_once(takes)


def _compare(
    folder: Path,
    view: services.StoryView,
    scene: SceneNode,
    done: list[int],
    would_stale: list[str],
) -> None:
    key = f"storyboard.compare.{scene.id}"
    if key not in st.session_state or not set(st.session_state[key]) <= set(done):
        st.session_state[key] = default_compared(scene)
    chosen = st.multiselect(
        "Takes side by side",
        done,
        format_func=lambda i: (
            f"Take {i}" + (" (selected)" if i == scene.selected_take else "")
        ),
        max_selections=MAX_COMPARED,
        key=key,
    )
    if len(chosen) < 2:
        st.caption("Choose two or more takes to compare them.")
    else:
        compare_view(folder, view, scene, sorted(chosen))
    others = [i for i in sorted(chosen) if i != scene.selected_take]
    if others and would_stale:
        st.caption(
            "Selecting another take makes stale: "
            + ", ".join(md(s) for s in would_stale)
        )
    for col, index in zip(st.columns(max(len(others), 1)), others, strict=False):
        with col:
            _select_button(folder, scene, index)


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


def recipe_text(take) -> str:  # noqa: ANN001
    """The model release, preset and what each stage (or window) stepped.

    >>> from kg.take import SamplingRecipe, StageRecipe
    >>> class P:  # a take's params, reduced to the recipe
    ...     recipe = SamplingRecipe(checkpoint_kind="dev", model_version="2.3",
    ...         quality_preset="balanced", stages=[StageRecipe(name="stage 1",
    ...         width=64, height=64, sigmas=[1.0, 0.5], guidance=3.0,
    ...         audio_guidance=7.0, guidance_rescale=0.7, stg_scale=1.0,
    ...         stg_blocks=[28], modality_scale=3.0, transformer_passes=4)])
    >>> class T:
    ...     params = P()
    >>> print(recipe_text(T()))  # doctest: +NORMALIZE_WHITESPACE
     · LTX-2.3 dev, balanced: stage 1 2 steps, CFG 3 (audio 7), STG 1 on
     block 28, modality 3, rescale 0.7, 4 passes a step
    """
    recipe = take.params.recipe
    if recipe is None:
        return ""
    head = f"LTX-{recipe.model_version} " if recipe.model_version else ""
    head += recipe.checkpoint_kind
    if recipe.quality_preset:
        head += f", {md(recipe.quality_preset)}"
    stages = recipe.stages
    windows = [s for s in stages if s.name.startswith("window ")]
    shown = stages[:1] if windows and len(windows) == len(stages) else stages
    parts = []
    for stage in shown:
        terms = [f"{len(stage.sigmas)} steps"]
        if stage.guidance > 1.0:
            audio = stage.audio_guidance
            terms.append(
                f"CFG {stage.guidance:g}"
                + (f" (audio {audio:g})" if audio and audio != stage.guidance else "")
            )
        if stage.stg_scale > 0.0:
            blocks = ", ".join(str(b) for b in stage.stg_blocks)
            terms.append(f"STG {stage.stg_scale:g} on block {blocks}")
        if stage.modality_scale > 1.0:
            terms.append(f"modality {stage.modality_scale:g}")
        if stage.guidance_rescale > 0.0:
            terms.append(f"rescale {stage.guidance_rescale:g}")
        if stage.loras:
            terms.append("LoRA " + ", ".join(md(n) for n in stage.loras))
        passes = stage.transformer_passes
        terms.append(f"{passes} pass{'es' if passes != 1 else ''} a step")
        name = "each window" if len(windows) > 1 else md(stage.name)
        parts.append(f"{name} " + ", ".join(terms))
    return f" · {head}: " + "; ".join(parts)


def timings_text(timings: dict[str, float]) -> str:
    """What each phase of the take cost, from its recorded ``phase.<name>``
    seconds (encoding and scoring ran behind the next scene when it did).

    >>> timings_text({"phase.denoise": 7.54, "phase.score": 0.3, "total": 9})
    ' · denoise 7.5 s · scoring 0.3 s'
    >>> timings_text({})
    ''
    """
    names = {"load": "loading", "encode": "encoding", "score": "scoring"}
    parts = [
        f"{names.get(name, name)} {timings[f'phase.{name}']:.1f} s"
        for name in ("load", "denoise", "decode", "encode", "score")
        if f"phase.{name}" in timings
    ]
    return "".join(f" · {part}" for part in parts)


def _sound_text(take) -> str:  # noqa: ANN001
    carried = take.params.audio_continuity
    if carried is None:
        return ""
    if carried == "latent":
        return " · sound carried on from the previous take"
    if take.params.dialogue_audio is not None:
        return ""  # the supplied track says so
    return " · with sound"


def _supplied_text(take) -> str:  # noqa: ANN001
    """Whether the take's sound is the scene's own dialogue track."""
    track = take.params.dialogue_audio
    if track is None:
        return ""
    note = f", {track.note}" if track.note else ""
    return f" · sound supplied: {md(track.path)} ({track.seconds:.1f} s{md(note)})"


def _loras_text(take) -> str:  # noqa: ANN001
    """The LoRAs the take was made with, weights and where they came from."""
    recipe = take.params.recipe
    if recipe is None or not recipe.loras:
        return ""
    named = ", ".join(
        f"{x.name} {x.weight:g}"
        + (f" ({x.scope}{', in context' if x.in_context else ''})" if x.scope else "")
        for x in recipe.loras
    )
    return f" · LoRAs: {md(named)}"


def _references_text(take) -> str:  # noqa: ANN001
    refs = take.params.references
    if not refs:
        return ""
    named = ", ".join(f"{r.entity} {r.path.rsplit('/', 1)[-1]}" for r in refs)
    return f" · references before the clip ({refs[0].strength:g}): {md(named)}"


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
        + recipe_text(take)
        + _windows_text(take)
        + _references_text(take)
        + _loras_text(take)
        + _supplied_text(take)
        + (
            f" · cost ${take.cost.usd:.2f} ({md(take.cost.source)})"
            if take.cost is not None
            else ""
        )
        + timings_text(take.timings)
    )
    _scores(take)
    if chosen or take.status != "done":
        return
    if would_stale:
        st.caption("Selecting it makes stale: " + ", ".join(md(s) for s in would_stale))
    _select_button(folder, scene, take.index)


def _select_button(folder: Path, scene: SceneNode, index: int) -> None:
    if st.button(
        f"Select take {index}",
        key=f"storyboard.select_take.{index}",
        width="stretch",
    ):
        try:
            stale = services.select_take(folder, scene.id, index)
        except (KeyError, ValueError, services.StoryError) as exc:
            st.error(md(exc))
            return
        msg = f"Selected take {index} of {scene.id}."
        if stale:
            msg += f" Now stale (generate again): {', '.join(stale)}."
        flash(msg, "warning" if stale else "success")
        st.rerun()
