"""Colour commands of the ``storygraph`` CLI: ``undo-color``.

``storygraph undo-color DIR SCENE [--take N]`` puts back the clip and frames
a take's backend made before its colour correction
(`engine.color.correct.undo_correction`): byte for byte, the record cleared,
the take's scores cleared for ``storygraph score`` to redo, and the
continuous successors of a selected take marked stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from studio.cli.output import console, err_console
from studio.cli.output import lit as terminal_literal

__all__ = ["register", "undo_color"]


def undo_color(
    directory: Annotated[Path, typer.Argument(help="Story folder.")],
    scene: Annotated[str, typer.Argument(help="The scene's id.")],
    take: Annotated[
        int | None, typer.Option(help="The take (default: the selected one).")
    ] = None,
) -> None:
    """Restore a take's original colours (undo its colour correction)."""
    from engine.color.correct import undo_correction
    from kg.errors import StoryError
    from kg.store import load_story

    try:
        story = load_story(directory)
        index = take if take is not None else story.scene(scene).selected_take
        if index is None:
            raise StoryError(f"scene {scene!r} has no selected take; give --take")
        undo_correction(directory, scene, index)
    except KeyError as exc:
        err_console.print(f"[red]{terminal_literal(exc.args[0])}[/]", highlight=False)
        raise typer.Exit(2) from None
    except (FileNotFoundError, StoryError) as exc:
        err_console.print(f"[red]{terminal_literal(exc)}[/]", highlight=False)
        raise typer.Exit(2) from None
    console.print(
        f"take {index} of {terminal_literal(scene)}: original colours restored; "
        "run storygraph score to score it again",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("undo-color")(undo_color)
