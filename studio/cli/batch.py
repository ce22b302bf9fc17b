"""``storygraph batch``: render the pending scenes of several stories.

Each story is rendered once however it is named: folders that resolve to
the same real path (relative and absolute, a trailing slash, a symbolic link
to it) are one story, and the repeats are named and skipped, so no take is
made, or paid for, twice. With ``--ray`` the stories run in parallel
(`studio.cli.on_ray`), else one after another here (`studio.cli.run.run`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from studio.cli.output import err_console
from studio.literal import terminal_literal

__all__ = ["batch", "distinct_stories"]


def distinct_stories(directories: list[Path]) -> tuple[list[Path], list[str]]:
    """The story folders with each real folder once (the first name given),
    and a line for every repeat dropped."""
    first: dict[str, Path] = {}
    kept: list[Path] = []
    notes: list[str] = []
    for directory in directories:
        real = os.path.realpath(directory)
        if real in first:
            notes.append(
                f"{terminal_literal(directory)} is the same story as "
                f"{terminal_literal(first[real])} ({terminal_literal(real)}); "
                "it is rendered once"
            )
            continue
        first[real] = directory
        kept.append(directory)
    return kept, notes


def batch(
    directories: Annotated[list[Path], typer.Argument(help="Story folders to render.")],
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="'local' for a local Ray cluster, or a cluster address; "
            "without it the stories render one after another here.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=256, help="Default: the first story's.")
    ] = None,
    backend: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    force: Annotated[bool, typer.Option("--force")] = False,
    no_score: Annotated[bool, typer.Option("--no-score")] = False,
) -> None:
    """Render the pending scenes of several stories (in parallel on Ray)."""
    from kg.errors import StoryError
    from kg.store import load_story
    from studio.cli.on_ray import exit_code, ray_target, run_on_ray
    from studio.cli.run import run

    directories, repeats = distinct_stories(list(directories))
    for note in repeats:
        err_console.print(note, style="yellow", highlight=False)
    stories = []
    for directory in directories:
        try:
            stories.append(load_story(directory))
        except (FileNotFoundError, StoryError) as exc:
            err_console.print(terminal_literal(str(exc)), style="red", highlight=False)
            raise typer.Exit(2) from None
    if ray is not None:
        address, n = ray_target(stories[0], ray, workers)
        result = run_on_ray(directories, address, n, no_score, backend, model, force)
        raise typer.Exit(exit_code(result))
    code = 0
    for directory in directories:
        try:
            run(directory, backend=backend, model=model, force=force,
                no_score=no_score)  # fmt: skip
        except typer.Exit as exc:
            code = max(code, exc.exit_code)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``batch`` to the ``storygraph`` command."""
    app.command("batch")(batch)
