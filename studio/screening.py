"""Films and timelines for the studio's Screening page (the engine's, wrapped).

The page lists the story lines, flags the joins whose colour slipped
(`color_flag`), plans the chosen one's film, shows it when it is already
assembled, assembles it with a progress bar, and offers the film
and each timeline format as downloads; every call goes through here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from engine.film import Film, FilmPlan, FilmRefusedError, assemble_film, plan_film
from engine.film.plan import MAX_CROSSFADE
from engine.film.timeline import (
    FORMATS,
    render_timeline,
    timecode_problem,
    timeline_problem,
)
from kg.errors import StoryError
from kg.files import MAX_MEDIA_BYTES, read_story_file
from kg.graph import DynamicSceneGraph
from kg.lines import StoryLine, story_lines
from kg.paths import resolve_asset
from kg.schema import Story

__all__ = [
    "FILM_ERRORS",
    "FORMATS",
    "MAX_CROSSFADE",
    "timecode_problem",
    "timeline_problem",
    "FilmPlan",
    "FilmRefusedError",
    "lines",
    "plan",
    "assembled",
    "assemble",
    "film_bytes",
    "timeline_text",
    "timeline_key",
    "color_flag",
    "Story",
]

# What planning a film can refuse with a message for the user.
FILM_ERRORS = (StoryError, ValueError)


def lines(story: Story) -> list[StoryLine]:
    """Every story line, the main line first (`kg.lines.story_lines`)."""
    return story_lines(DynamicSceneGraph(story))


def plan(folder: Path, story: Story, leaf: str, crossfade: int) -> FilmPlan:
    """The film of the line ending at ``leaf`` (see `engine.film.plan_film`)."""
    return plan_film(story, folder, leaf, crossfade=crossfade)


def assembled(folder: Path, planned: FilmPlan) -> Path | None:
    """The film's file when this exact film is already assembled."""
    path = resolve_asset(folder, planned.path)
    return path if path.is_file() else None


def film_bytes(path: Path) -> bytes:
    """The assembled film for download (a regular file within the media limit)."""
    return read_story_file(path, max_bytes=MAX_MEDIA_BYTES, what="the film")


def assemble(
    folder: Path, planned: FilmPlan, progress: Callable[[int, int], None]
) -> Film:
    """Assemble the film into the story's ``films/`` folder."""
    return assemble_film(folder, planned, progress=progress)


def timeline_text(folder: Path, story: Story, planned: FilmPlan, fmt: str) -> str:
    """The timeline for download: media as absolute ``file://`` URLs, since
    the downloaded file lands away from the story folder."""
    return render_timeline(folder, planned, fmt, name=story.title, media_base=None)


def timeline_key(story: Story, planned: FilmPlan) -> str:
    """What a line's timelines are made of (titles, takes, story title) as a
    digest: the same key, the same timeline text."""
    text = repr((story.title, planned))
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def color_flag(take: object, threshold: float) -> str | None:
    """What the filmstrip says of a take whose join's colour shift
    (``join_color_shift``) is over ``threshold`` ΔE00; None when it is not.

    >>> from kg.schema import ColorShift, Scores, Take
    >>> params = dict(backend="animatic", prompt="p", seed=1, steps=1,
    ...               guidance=1.0, width=64, height=64, num_frames=9, fps=8)
    >>> scores = Scores(join_color_shift=4.24, color_shifts={
    ...     "join_color_shift": ColorShift(lightness=2.0, chroma=-1.5)})
    >>> color_flag(Take(index=1, params=params, scores=scores), 3.0)
    'colour slipped at the join: 4.2 ΔE00, brighter, less saturated'
    """
    scores = getattr(take, "scores", None)
    shift = None if scores is None else scores.join_color_shift
    if shift is None or shift <= threshold:
        return None
    way = scores.color_shifts.get("join_color_shift")
    words = way.words() if way is not None else ""
    return f"colour slipped at the join: {shift:.1f} ΔE00" + (
        f", {words}" if words else ""
    )
