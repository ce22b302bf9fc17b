"""The ``storygraph`` command: one module per command group, registered here.

================  =========================================================
``story``         schema, new, validate, show, graph
``run``           run (generate pending scenes headless)
``score``         score (CLIP/DINOv2 scores of takes)
``export``        export (IC-LoRA datasets)
``film``          film, timeline (a story line as one mp4, as edit timelines)
``models``        models, fetch-models
================  =========================================================

Commands import their heavy dependencies (torch, diffusers, open_clip) inside
the command, so ``storygraph --help`` and the story commands start fast.
"""

from __future__ import annotations

import typer

from studio.cli import export, film, models, run, score, story

__all__ = ["app", "main"]

app = typer.Typer(
    name="storygraph",
    help="StoryGraph Studio: author, generate, score and export video stories.",
    no_args_is_help=True,
    add_completion=False,
)

for group in (story, run, score, export, film, models):
    group.register(app)


def main() -> None:
    app()
