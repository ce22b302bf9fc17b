"""Screening page: watch a story line as one film and take it to an editor.

Choose a story line (named by its last scene; the main line first), see its
filmstrip (first and last frame of each scene's selected take, its status and
the metric table's headline scores), assemble the film (repeated frames
skipped at continuous joins, an optional dissolve at cuts) and play it, then
download the film and the line as an OpenTimelineIO, FCP X XML, FCP 7 XML
or CMX 3600 EDL timeline. Films are cached by the content of their takes:
an unchanged line plays at once (see `engine.film`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from kg.metrics import headline_metrics
from studio import film_jobs, screening, services
from studio.components.media import show_image, show_video
from studio.literal import markdown_literal as md
from studio.session import story_page

__all__ = ["screening_page", "URL_PATH", "STRIP_PAGE"]

log = logging.getLogger(__name__)

URL_PATH = "screening"
# Scenes drawn at once in the filmstrip: two images each.
STRIP_PAGE = 24
_STRIP_COLUMNS = 6


def _line_label(view: services.StoryView, line: screening.StoryLine) -> str:
    main = " · main line" if line.main else ""
    return f"{view.scene(line.leaf).title} ({len(line)} scenes){main}"


def _choose_line(view: services.StoryView) -> screening.StoryLine | None:
    lines = screening.lines(view.story)
    if not lines:
        st.info("No scenes yet: add scenes on the Storyboard.")
        return None
    by_leaf = {line.leaf: line for line in lines}
    left, right = st.columns([3, 1])
    leaf = left.selectbox(
        "Story line ending at",
        list(by_leaf),
        format_func=lambda leaf: _line_label(view, by_leaf[leaf]),
        key="screening.line",
        help="A branching story plays as one film per line: the scenes from the "
        "first one to the chosen last scene.",
    )
    right.number_input(
        "Crossfade at cuts (frames)",
        min_value=0,
        max_value=screening.MAX_CROSSFADE,
        step=1,
        key="screening.crossfade",
        help="0: hard cuts. Continuous joins never fade: they flow.",
    )
    return by_leaf[leaf]


def _score_text(take) -> str:  # noqa: ANN001 - kg.schema.Take
    if take is None or take.scores is None:
        return "not scored"
    parts = [
        f"{m.short} {value:.2f}"
        for m in headline_metrics()
        if (value := getattr(take.scores, m.name)) is not None
    ]
    return " · ".join(parts) or "no scores"


def _filmstrip(folder: Path, view: services.StoryView, line: screening.StoryLine):
    st.subheader("Filmstrip")
    scenes = list(line.scenes)
    if len(scenes) > STRIP_PAGE:
        pages = range(0, len(scenes), STRIP_PAGE)
        start = st.selectbox(
            "Scenes",
            list(pages),
            format_func=lambda s: f"{s + 1}–{min(s + STRIP_PAGE, len(scenes))}",
            key=f"screening.strip.{line.leaf}",
        )
    else:
        start = 0
    shown = scenes[start : start + STRIP_PAGE]
    for row in range(0, len(shown), _STRIP_COLUMNS):
        cols = st.columns(_STRIP_COLUMNS)
        for col, sid in zip(cols, shown[row : row + _STRIP_COLUMNS], strict=False):
            scene = view.scene(sid)
            take = scene.selected
            pos = start + row + cols.index(col) + 1
            with col.container(border=True):
                st.markdown(f"**{pos}. {md(scene.title)}**")
                what = f"take {take.index} · " if take is not None else ""
                about = f"{what}{scene.status} · {_score_text(take)}"
                if _has_frames(take):
                    _frames(folder, take)
                    st.caption(about)
                else:  # one element, not two: a long strip is many cards
                    st.caption(f"no frames yet  \n{about}")
                threshold = view.story.settings.color.threshold
                if flag := screening.color_flag(take, threshold):
                    st.warning(md(flag))


def _has_frames(take) -> bool:  # noqa: ANN001 - kg.schema.Take | None
    return take is not None and bool(take.files.first_frame and take.files.last_frame)


def _frames(folder: Path, take) -> None:  # noqa: ANN001 - kg.schema.Take
    """The take's first and last frame (each checked: `show_image`)."""
    a, b = st.columns(2)
    for col, rel, which in (
        (a, take.files.first_frame, "first"),
        (b, take.files.last_frame, "last"),
    ):
        what = f"{which} frame of take {take.index}"
        if not show_image(col, folder, rel, what, which):
            col.caption(f"{which} frame missing on disk")


def _film(folder: Path, plan: screening.FilmPlan) -> None:
    st.subheader("Film")
    for note in plan.notes:
        st.caption(f"Note: {md(note)}")
    summary = (
        f"{len(plan.shots)} scenes · {plan.frames} frames · {plan.seconds:.1f} s "
        f"at {plan.fps} fps"
    )
    path = screening.assembled(folder, plan)
    if path is None:
        _assembly(folder, plan, summary)
        return
    player, about = st.columns([3, 1])
    if not show_video(player, folder, plan.path, "film"):
        return
    about.caption(f"{summary} · `{md(plan.path)}`")
    about.download_button(
        "Download film (mp4)",
        data=lambda: screening.film_bytes(path),
        file_name=f"{folder.name}-{plan.line.leaf}.mp4",
        mime="video/mp4",
        key="screening.download.film",
        icon=":material/movie:",
    )


def _assembly(folder: Path, plan: screening.FilmPlan, summary: str) -> None:
    """Start, follow and stop the film's assembly (`studio.film_jobs`)."""
    job = film_jobs.assembly(folder, plan)
    if job is None or not job.running:
        if job is not None and job.stopped:
            st.info("Assembly stopped; no film was written.")
        elif job is not None and job.error:
            st.error(f"The film could not be assembled: {md(job.error)}")
        st.caption(f"{summary}; not assembled yet.")
        if st.button("Assemble film", type="primary", key="screening.assemble"):
            film_jobs.forget(folder, plan)
            film_jobs.start(folder, plan)
            st.rerun()
        return
    _progress(folder, plan)


@st.fragment(run_every=1.0)
def _progress(folder: Path, plan: screening.FilmPlan) -> None:
    job = film_jobs.assembly(folder, plan)
    if job is None or not job.running:
        st.rerun()  # ended: the page shows the film or why not
        return
    text = f"Assembling the film: frames {job.frames_done}/{job.frames_total}"
    if job.cancel.is_set():
        text += " · stopping after this shot"
    st.progress(job.fraction(), text=text)
    st.button(
        "Stop assembling",
        key="screening.stop",
        disabled=job.cancel.is_set(),
        on_click=film_jobs.stop,
        args=(folder, plan),
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _timeline_text(
    folder: str,
    fmt: str,
    content: str,
    _story: screening.Story,
    _plan: screening.FilmPlan,
) -> str:
    """A timeline's text, kept while the line's content (``content``) stays."""
    return screening.timeline_text(Path(folder), _story, _plan, fmt)


def _timelines(
    folder: Path, view: services.StoryView, plan: screening.FilmPlan
) -> None:
    st.subheader("Timelines")
    st.caption(
        "One clip per scene with the repeated frames trimmed, a marker per scene "
        "and the prompt, seed, take and scores in each clip's metadata; FCP 7 XML "
        "opens in Premiere and DaVinci Resolve too. Downloaded "
        "timelines point at the takes by absolute path; `storygraph timeline` "
        "writes them beside the films with relative paths."
    )
    cols = st.columns(len(screening.FORMATS))
    content = screening.timeline_key(view.story, plan)
    for col, (name, spec) in zip(cols, screening.FORMATS.items(), strict=True):
        if screening.timecode_problem(name, plan.fps) is not None:
            col.caption(f"{spec.label}: needs 24, 25, 30, 48, 50 or 60 fps")
            continue
        if (problem := screening.timeline_problem(name, plan)) is not None:
            col.caption(f"{spec.label}: {md(problem)}")
            continue
        # written here, not when clicked: a failure shows as a message (a
        # download that fails on click shows nothing)
        try:
            text = _timeline_text(str(folder), name, content, view.story, plan)
        except Exception as exc:  # an adapter's failure, shown not raised
            log.exception("%s timeline of %s failed", name, folder)
            col.error(
                f"{spec.label} could not be written: {md(type(exc).__name__)}: "
                f"{md(exc)}. Download another format, or run `storygraph "
                f"timeline --format {name}` for the details."
            )
            continue
        col.download_button(
            spec.label,
            data=text,
            file_name=f"{folder.name}-{plan.line.leaf}{spec.suffix}",
            mime=spec.mime,
            key=f"screening.download.{name}",
            icon=":material/download:",
        )


def screening_page() -> None:
    """Line choice, filmstrip, the film, downloads."""
    folder = story_page("Screening")
    if folder is None:
        return
    view = services.story_view(folder)
    line = _choose_line(view)
    if line is None:
        return
    crossfade = int(st.session_state.get("screening.crossfade", 0))
    try:
        plan = screening.plan(folder, view.story, line.leaf, crossfade)
    except screening.FilmRefusedError as exc:
        st.warning(md(exc))
        plan = None
    except screening.FILM_ERRORS as exc:
        st.error(md(exc))
        return
    if plan is not None:
        _film(folder, plan)
    _filmstrip(folder, view, line)
    if plan is not None:
        _timelines(folder, view, plan)
