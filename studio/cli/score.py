"""Scoring commands of the ``storygraph`` CLI: ``score``.

``storygraph score DIR`` runs the observer over the takes already in a story
(selected ones by default), reading each clip with imageio, and writes the
scores and embeddings back exactly as generation does.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from studio.cli.output import console, err_console
from studio.cli.output import lit as terminal_literal

if TYPE_CHECKING:
    import numpy as np

    from kg.observation import Observation
    from kg.schema import Scores, Story, Take

__all__ = ["register", "score"]

log = logging.getLogger(__name__)


class TakeChoice(StrEnum):
    selected = "selected"
    all = "all"


def _read_frames(path: Path) -> np.ndarray:
    """``[F, H, W, 3]`` uint8 frames of a clip or a frame image, read only when
    it is a regular file (a FIFO never blocks) and no bomb (`engine.video`)."""
    from engine.video import read_png, read_video

    if path.suffix.lower() == ".png":
        return read_png(path)[None]
    return read_video(path)


def _previous_last_frame(
    story_dir: Path, story: Story, take: Take
) -> np.ndarray | None:
    """Last frame of the take this one continued from, when it still exists."""
    from kg.paths import resolve_asset

    source = take.params.continuity_source
    if source is None:
        return None
    try:
        prev = story.scene(source.scene_id).take(source.take)
    except KeyError:
        return None
    for rel in (prev.files.last_frame, prev.files.video):
        if rel and resolve_asset(story_dir, rel).is_file():
            return _read_frames(resolve_asset(story_dir, rel))[-1]
    return None


def _jobs(story: Story, which: TakeChoice, force: bool) -> list[tuple[str, Take]]:
    out = []
    for scene in story.scenes:
        takes = scene.takes if which is TakeChoice.all else [scene.selected]
        for take in takes:
            if take is None or take.status != "done" or not take.files.video:
                continue
            if take.scores is not None and take.scores.scored_at and not force:
                continue
            out.append((scene.id, take))
    return out


def _store(directory: Path, scene_id: str, index: int, obs: Observation) -> None:
    """Write one take's scores and embeddings path under the story lock."""
    from kg.store import update_story

    def mutate(story: Story) -> None:
        stored = story.scene(scene_id).take(index)
        stored.scores = obs.scores
        if obs.embeddings:
            stored.files.embeddings = obs.embeddings

    update_story(directory, mutate)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _summary(rows: list[tuple[str, int, Scores]]) -> Table:
    """One row per scored take: every metric of the table (`kg.metrics`) under
    its short label, then the frozen-clip flag."""
    from kg.metrics import metric_table

    metrics = metric_table()
    table = Table(title="scores")
    for col in ("scene", "take", *(m.short for m in metrics), "static"):
        table.add_column(col)
    for scene_id, index, s in rows:
        static = "-" if s.static is None else ("yes" if s.static else "no")
        table.add_row(
            scene_id,
            str(index),
            *(_fmt(getattr(s, m.name)) for m in metrics),
            static,
        )
    return table


def score(
    directory: Annotated[Path, typer.Argument(help="Story folder.")],
    takes: Annotated[
        TakeChoice, typer.Option(help="Score the selected take of each scene, or all.")
    ] = TakeChoice.selected,
    force: Annotated[
        bool, typer.Option("--force", help="Score takes that already have scores.")
    ] = False,
) -> None:
    """Score takes with CLIP and DINOv2 and write scores and embeddings back."""
    from rich.progress import Progress

    from engine.color.anchor import line_anchor_frames
    from engine.outcome import previous_tail
    from kg.errors import StoryError
    from kg.observation import ObservationRequest
    from kg.paths import resolve_asset
    from kg.store import load_story
    from scoring.observer import Observer
    from studio.wiring import models

    try:
        story = load_story(directory)
    except (FileNotFoundError, StoryError) as exc:
        err_console.print(f"[red]{terminal_literal(exc)}[/]", highlight=False)
        raise typer.Exit(2) from None
    jobs = _jobs(story, takes, force)
    if not jobs:
        console.print(
            "Nothing to score: no finished takes without scores "
            "(use --takes all or --force to score more)."
        )
        return
    observer = Observer.default(models=models())  # held by the process's cache
    rows: list[tuple[str, int, Scores]] = []
    failed = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scoring", total=len(jobs))
        for scene_id, take in jobs:
            progress.update(task, description=f"{scene_id} take {take.index}")
            try:
                frames = _read_frames(resolve_asset(directory, take.files.video))
                previous = _previous_last_frame(directory, story, take)
            except Exception as exc:
                err_console.print(
                    f"[red]{scene_id} take {take.index}[/]: cannot read "
                    f"{terminal_literal(take.files.video)} ({terminal_literal(exc)}); "
                    "regenerate the take",
                    highlight=False,
                )
                failed += 1
                progress.advance(task)
                continue
            obs = observer.observe(
                ObservationRequest.of_take(
                    directory,
                    story,
                    scene_id,
                    take,
                    frames,
                    previous,
                    previous_tail(directory, story, take),
                    line_anchor_frames(directory, story, scene_id, frames),
                )
            )

            _store(directory, scene_id, take.index, obs)
            rows.append((scene_id, take.index, obs.scores))
            progress.advance(task)
    console.print(_summary(rows))
    reasons = sorted({r for _, _, s in rows for r in s.unavailable.values()})
    for reason in reasons:
        console.print(
            f"[yellow]unavailable[/]: {terminal_literal(reason)}", highlight=False
        )
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(score)
