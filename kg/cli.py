"""Story commands of the ``storygraph`` CLI: schema, new, validate, show, graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

console = Console()
err_console = Console(stderr=True)


def schema() -> None:
    """Print the JSON Schema of kg_state.json."""
    from kg.schema import Story

    typer.echo(json.dumps(Story.model_json_schema(), indent=2))


def new(
    directory: Annotated[Path, typer.Argument(help="Folder of the new story.")],
    title: Annotated[str | None, typer.Option(help="Story title.")] = None,
    example: Annotated[
        bool, typer.Option("--example", help="Start from the example story.")
    ] = False,
) -> None:
    """Create a story folder with a kg_state.json."""
    from kg.example import blank_story, example_story
    from kg.store import STATE_FILE, save_story

    if (directory / STATE_FILE).exists():
        err_console.print(
            f"[red]{directory / STATE_FILE} exists[/]; choose another folder "
            "or delete that story first"
        )
        raise typer.Exit(1)
    story = (
        example_story(title)
        if example and title
        else (example_story() if example else blank_story(title or directory.name))
    )
    save_story(story, directory)
    console.print(
        f"Created [bold]{story.title}[/] in {directory} "
        f"({len(story.scenes)} scenes, {len(story.characters)} characters)"
    )


def validate(
    path: Annotated[Path, typer.Argument(help="A story folder or kg_state.json.")],
) -> None:
    """Check a story; exit 2 listing every problem with its JSON path."""
    from kg.errors import StoryValidationError
    from kg.store import load_story

    try:
        story = load_story(path)
    except FileNotFoundError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except StoryValidationError as exc:
        err_console.print(f"[red]{exc.source}: {len(exc.problems)} problem(s)[/]")
        for json_path, message in exc.problems:
            err_console.print(f"  [bold]{json_path}[/]: {message}", highlight=False)
        raise typer.Exit(2) from None
    console.print(
        f"[green]valid[/]: {story.title!r}, {len(story.scenes)} scenes, "
        f"{len(story.edges)} edges, revision {story.revision}"
    )


def _score_cell(scene) -> str:  # noqa: ANN001 - SceneNode
    take = scene.selected
    if take is None or take.scores is None:
        return "-"
    s = take.scores
    cells = [
        f"{name} {value:.2f}"
        for name, value in (
            ("clip", s.clip_score),
            ("subj", s.subject_consistency),
            ("bg", s.background_consistency),
            ("flick", s.temporal_flicker),
            ("seam", s.seam_dino_cosine),
        )
        if value is not None
    ]
    return ", ".join(cells) or "unavailable"


def show(
    directory: Annotated[Path, typer.Argument(help="Story folder.")],
    width: Annotated[int, typer.Option(help="Prompt preview length.")] = 70,
) -> None:
    """List scenes in generation order: status, prompt, remembered entities."""
    from kg.graph import DynamicSceneGraph, generation_order
    from kg.memory import remembered
    from kg.prompt import build_prompt
    from kg.store import load_story

    story = load_story(directory)
    graph = DynamicSceneGraph(story)
    table = Table(title=f"{story.title} (revision {story.revision})")
    for col in ("#", "scene", "status", "takes", "prompt", "memory", "scores"):
        table.add_column(col, overflow="fold")
    for i, sid in enumerate(generation_order(graph), 1):
        scene = graph.scene(sid)
        prompt = build_prompt(graph, sid).text
        preview = prompt if len(prompt) <= width else prompt[: width - 1] + "…"
        memory = ", ".join(f"{m.name} {m.salience:.2f}" for m in remembered(graph, sid))
        takes = str(len(scene.takes))
        if scene.selected_take:
            takes += f" (#{scene.selected_take})"
        table.add_row(
            str(i),
            f"{scene.id}\n{scene.title}",
            scene.status,
            takes,
            preview,
            memory or "-",
            _score_cell(scene),
        )
    console.print(table)


def graph(
    directory: Annotated[Path, typer.Argument(help="Story folder.")],
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("graph.png"),
) -> None:
    """Draw the story graph (status colours, salience fade, transitions)."""
    from kg.draw import draw_story_graph
    from kg.graph import DynamicSceneGraph
    from kg.store import load_story

    path = draw_story_graph(DynamicSceneGraph(load_story(directory)), out)
    console.print(f"Wrote {path}")


def register(app: typer.Typer) -> None:
    for command in (schema, new, validate, show, graph):
        app.command()(command)
