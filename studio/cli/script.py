"""Screenplay commands of the ``storygraph`` CLI: import-script, export-script.

A Fountain screenplay (https://fountain.io/syntax) becomes a story folder
(`kg.fountain`), and a story (or one story line) is written back as Fountain
(`kg.fountain_export`) so a writer can keep editing it in their own tool;
importing that file again gives the same story.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from studio.cli.output import console, err_console, fail, lit

__all__ = ["register", "import_script", "export_script"]


def import_script(
    script: Annotated[Path, typer.Argument(help="A .fountain screenplay.")],
    directory: Annotated[Path, typer.Argument(help="Folder of the new story.")],
    title: Annotated[
        str | None, typer.Option(help="Title when the screenplay names none.")
    ] = None,
) -> None:
    """Make a story from a Fountain screenplay; lists what had no place in it."""
    from kg.errors import StoryError
    from kg.files import read_story_file
    from kg.fountain import MAX_SCRIPT_BYTES, read_script_bytes
    from kg.store import STATE_FILE, save_story

    if (directory / STATE_FILE).exists():
        fail(f"{directory / STATE_FILE} exists; choose another folder", 1)
    try:
        data = read_story_file(script, max_bytes=MAX_SCRIPT_BYTES, what="screenplay")
        result = read_script_bytes(data, script.name, title or script.stem)
        save_story(result.story, directory)
    except (OSError, StoryError) as exc:
        fail(exc)
    story = result.story
    console.print(
        f"Created [bold]{lit(story.title)}[/] in {lit(directory)}: "
        f"{len(story.scenes)} scenes, {len(story.characters)} characters, "
        f"{len(story.environments)} environments, "
        f"{sum(len(s.dialogue) for s in story.scenes)} dialogue lines",
        highlight=False,
    )
    if result.unplaced:
        err_console.print(
            f"[yellow]{len(result.unplaced)} thing(s) had no place in the story:[/]"
        )
        for item in result.unplaced:
            err_console.print(f"  {lit(item)}", highlight=False)


def export_script(
    directory: Annotated[Path, typer.Argument(help="Story folder.")],
    out: Annotated[
        Path | None, typer.Option(help="File to write (default: <story>.fountain).")
    ] = None,
    line: Annotated[
        str | None,
        typer.Option(help="Only the story line ending at this scene id."),
    ] = None,
) -> None:
    """Write the story (or one story line) as a Fountain screenplay."""
    from kg.errors import StoryError
    from kg.fountain_export import write_script
    from kg.lines import UnknownLineError
    from kg.paths import atomic_path
    from kg.store import load_story

    try:
        story = load_story(directory)
        text = write_script(story, line)
    except (FileNotFoundError, StoryError, UnknownLineError) as exc:
        fail(exc)
    target = out or directory / f"{directory.resolve().name}.fountain"
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    console.print(
        f"Wrote {lit(target)} ({text.count(chr(10)):,} lines)", highlight=False
    )


def register(app: typer.Typer) -> None:
    app.command("import-script")(import_script)
    app.command("export-script")(export_script)
