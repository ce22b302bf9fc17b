"""The ``storygraph`` command: one module per command group, registered here.

================  =========================================================
``story``         schema, new, validate, show, graph
``run``           run, batch (generate pending scenes headless; on Ray)
``score``         score (CLIP/DINOv2 scores of takes)
``color``         undo-color (a take's colours as its backend made them)
``export``        export (IC-LoRA datasets)
``film``          film, timeline (a story line as one mp4, as edit timelines)
``models``        models, fetch-models
``script``        import-script, export-script (Fountain screenplays)
================  =========================================================

Commands import their heavy dependencies (torch, diffusers, open_clip) inside
the command, so ``storygraph --help`` and the story commands start fast. A
full disk or quota met by any command is said plainly (which file, what is
free, what to free; `engine.disk`), not as a traceback.
"""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperGroup

from studio.cli import batch, color, export, film, models, run, score, script, story
from studio.cli.output import fail

__all__ = ["app", "main"]


class _Commands(TyperGroup):
    """The command group, turning a full disk into its message (exit 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # a full disk, or raised from one
            from engine.disk import disk_full_message

            message = disk_full_message(exc)
            if message is None:
                raise
            fail(message, 1)


app = typer.Typer(
    name="storygraph",
    help="StoryGraph Studio: author, generate, score and export video stories.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Commands,
)

for group in (story, run, batch, score, color, export, film, models, script):
    group.register(app)


def main() -> None:
    app()
