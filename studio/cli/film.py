"""``storygraph film`` and ``storygraph timeline``: watch a story line, edit it.

``film`` assembles the selected takes of one story line into an mp4
(`engine.film`), ``timeline`` writes the same line as OpenTimelineIO, FCP X
XML, FCP 7 XML or a CMX 3600 EDL. A line is named by its last scene; the
default is the main line. ``assemble_lines`` is also what ``run --film`` calls.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from studio.cli.output import console, err_console, fail, lit

__all__ = ["register", "film", "timeline", "assemble_lines"]

LineOption = Annotated[
    str | None,
    typer.Option(help="Last scene of the story line; default: the main line."),
]
CrossfadeOption = Annotated[
    int, typer.Option(help="Dissolve of N frames at each cut (0: hard cuts).")
]


def _load(directory: Path):  # noqa: ANN202 - a kg.schema.Story
    from kg.errors import StoryError
    from kg.store import load_story

    try:
        return load_story(directory)
    except (FileNotFoundError, StoryError) as exc:
        fail(exc)


def _plan(directory: Path, story, leaf: str | None, crossfade: int):  # noqa: ANN001, ANN202
    from engine.film import plan_film
    from kg.errors import StoryError

    try:
        return plan_film(story, directory, leaf, crossfade=crossfade)
    except (StoryError, ValueError) as exc:
        fail(exc)


# A killed command (kill, a closed terminal) ends like Ctrl-C.
_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (a killed command, a closed terminal) end the film
    like Ctrl-C: cleanup runs, so no partial film is left behind."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (tests call from others)
        return
    previous = {sig: signal.signal(sig, interrupt) for sig in _TERMINATING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _assemble(directory: Path, plan, out: Path | None) -> None:  # noqa: ANN001
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from engine.film import FilmCancelledError, assemble_film

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with (
            _terminate_as_interrupt(),
            Progress(*columns, console=console, transient=True) as bars,
        ):
            task = bars.add_task(f"film {plan.line.leaf}", total=plan.frames)

            def progress(done: int, total: int) -> None:
                bars.update(task, completed=done, total=total)

            film = assemble_film(directory, plan, out=out, progress=progress)
    except KeyboardInterrupt:
        raise FilmCancelledError("film assembly cancelled") from None
    for note in film.notes:
        console.print(f"note: {lit(note)}", highlight=False)
    how = "unchanged, reused" if film.reused else "assembled"
    sound = "with sound" if film.audio else "silent"
    console.print(
        f"{lit(film.path)}: {len(plan.shots)} scenes, {film.frames} frames, "
        f"{film.seconds:.2f} s at {film.fps} fps, {sound} ({how})",
        highlight=False,
    )


def film(
    directory: Annotated[Path, typer.Argument(help="The story folder.")],
    line: LineOption = None,
    crossfade: CrossfadeOption = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the film here; default: DIRECTORY/films/."),
    ] = None,
) -> None:
    """Assemble one story line into a single mp4 (repeated frames skipped)."""
    story = _load(directory)
    plan = _plan(directory, story, line, crossfade)
    try:
        _assemble(directory, plan, out)
    except Exception as exc:  # an encoder failure: say it, exit non-zero
        fail(exc, 1)


def timeline(
    directory: Annotated[Path, typer.Argument(help="The story folder.")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="otio (OpenTimelineIO), fcpxml (Final Cut Pro X), "
            "xml (FCP 7 XML for Premiere/Resolve) or edl (CMX 3600).",
        ),
    ] = "otio",
    line: LineOption = None,
    crossfade: CrossfadeOption = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Timeline file; default: DIRECTORY/films/LEAF.<ext>."),
    ] = None,
    absolute: Annotated[
        bool,
        typer.Option(
            "--absolute",
            help="Media as absolute file:// URLs (default: relative to the file).",
        ),
    ] = False,
) -> None:
    """Write one story line as an edit timeline (one clip per scene)."""
    from engine.film.timeline import FORMATS, write_timeline

    if format not in FORMATS:
        fail(f"--format: unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    story = _load(directory)
    plan = _plan(directory, story, line, crossfade)
    try:
        path = write_timeline(
            directory, plan, format, name=story.title, out=out, absolute=absolute
        )
    except ValueError as exc:
        fail(exc)
    console.print(
        f"{lit(path)}: {FORMATS[format].label}, {len(plan.shots)} clips, "
        f"{plan.frames} frames at {plan.fps} fps",
        highlight=False,
    )


def assemble_lines(directory: Path) -> int:
    """Assemble every story line whose scenes are all done (``run --film``);
    lines that cannot play yet are listed. Returns how many were assembled."""
    from engine.film import FilmRefusedError, plan_film
    from kg.graph import DynamicSceneGraph
    from kg.lines import story_lines

    story = _load(directory)
    made = 0
    for each in story_lines(DynamicSceneGraph(story)):
        try:
            plan = plan_film(story, directory, each.leaf)
        except FilmRefusedError as exc:
            err_console.print(
                f"film {lit(each.leaf)} not made: {lit(exc)}", highlight=False
            )
            continue
        _assemble(directory, plan, None)
        made += 1
    return made


def register(app: typer.Typer) -> None:
    """Add ``film`` and ``timeline`` to the ``storygraph`` command."""
    app.command("film")(film)
    app.command("timeline")(timeline)
