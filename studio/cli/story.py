"""Story commands of the ``storygraph`` CLI: schema, new, validate, show, graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from studio.cli.output import console, err_console, lit

__all__ = ["register"]


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
            f"[red]{lit(directory / STATE_FILE)} exists[/]; choose another folder "
            "or delete that story first"
        )
        raise typer.Exit(1)
    from pydantic import ValidationError

    from kg.errors import StoryError
    from kg.store import validation_problems

    try:
        story = (
            example_story(title)
            if example and title
            else (example_story() if example else blank_story(title or directory.name))
        )
        save_story(story, directory)
    except ValidationError as exc:
        for json_path, message in validation_problems(exc):
            err_console.print(
                f"[red]--title[/] ({lit(json_path)}): {lit(message)}", highlight=False
            )
        raise typer.Exit(2) from None
    except StoryError as exc:
        err_console.print(f"[red]{lit(exc)}[/]", highlight=False)
        raise typer.Exit(2) from None
    console.print(
        f"Created [bold]{lit(story.title)}[/] in {lit(directory)} "
        f"({len(story.scenes)} scenes, {len(story.characters)} characters)",
        highlight=False,
    )


def validate(
    path: Annotated[Path, typer.Argument(help="A story folder or kg_state.json.")],
) -> None:
    """Check a story; exit 2 listing every problem with its JSON path (the
    file's, then what its backend cannot make, as generation would refuse)."""
    from engine.catalog import CATALOG, settings_problems
    from kg.errors import StoryError, StoryValidationError
    from kg.store import load_story, state_path

    try:
        story = load_story(path)
        backend = story.settings.backend
        problems = [
            (f"settings.{field}", message)
            for field, message in (
                settings_problems(story.settings) if backend in CATALOG else []
            )
        ]
        if backend not in CATALOG:
            problems.append(
                (
                    "settings.backend",
                    f"unknown backend {backend!r}; choose one of {sorted(CATALOG)}",
                )
            )
        if problems:
            raise StoryValidationError(str(state_path(path)), problems)
    except (FileNotFoundError, StoryError) as exc:
        if not isinstance(exc, StoryValidationError):
            err_console.print(f"[red]{lit(exc)}[/]", highlight=False)
            raise typer.Exit(2) from None
        err_console.print(
            f"[red]{lit(exc.source)}: {len(exc.problems)} problem(s)[/]",
            highlight=False,
        )
        for json_path, message in exc.problems:
            err_console.print(
                f"  [bold]{lit(json_path)}[/]: {lit(message)}", highlight=False
            )
        raise typer.Exit(2) from None
    console.print(
        f"[green]valid[/]: {lit(repr(story.title))}, {len(story.scenes)} scenes, "
        f"{len(story.edges)} edges, revision {story.revision}",
        highlight=False,
    )


def _score_cell(scene) -> str:  # noqa: ANN001 - SceneNode
    """The headline scores of the selected take (`kg.metrics`), short labels."""
    from kg.metrics import headline_metrics

    take = scene.selected
    if take is None or take.scores is None:
        return "-"
    cells = [
        f"{m.short} {value:.2f}"
        for m in headline_metrics()
        if (value := getattr(take.scores, m.name)) is not None
    ]
    return ", ".join(cells) or "unavailable"


def show(
    directory: Annotated[Path, typer.Argument(help="Story folder.")],
    width: Annotated[int, typer.Option(help="Prompt preview length.")] = 70,
) -> None:
    """List scenes in generation order: status, prompt, remembered entities.

    Linear in the story: the memory of every scene comes from one walk.
    """
    from kg.graph import DynamicSceneGraph, generation_order
    from kg.memory import memory_by_scene, remembered
    from kg.prompt import build_prompt

    story = _load_or_exit(directory)
    graph = DynamicSceneGraph(story)
    memories = memory_by_scene(graph)
    table = Table(title=f"{lit(story.title)} (revision {story.revision})")
    for col in ("#", "scene", "status", "takes", "prompt", "memory", "scores"):
        table.add_column(col, overflow="fold")
    for i, sid in enumerate(generation_order(graph), 1):
        scene = graph.scene(sid)
        memory = memories[sid]
        prompt = build_prompt(graph, sid, memory=memory).text
        preview = prompt if len(prompt) <= width else prompt[: width - 1] + "…"
        kept = remembered(graph, sid, memory=memory)
        recalled = ", ".join(f"{m.name} {m.salience:.2f}" for m in kept)
        takes = str(len(scene.takes))
        if scene.selected_take:
            takes += f" (#{scene.selected_take})"
        table.add_row(
            str(i),
            f"{scene.id}\n{lit(scene.title)}",
            scene.status,
            takes,
            lit(preview),
            lit(recalled) or "-",
            _score_cell(scene),
        )
    console.print(table, highlight=False)


def _load_or_exit(directory: Path):  # noqa: ANN202 - kg.schema.Story
    """The story, or its problems printed literally and exit 2."""
    from kg.errors import StoryError
    from kg.store import load_story

    try:
        return load_story(directory)
    except (FileNotFoundError, StoryError) as exc:
        err_console.print(f"[red]{lit(exc)}[/]", highlight=False)
        raise typer.Exit(2) from None


def graph(
    directory: Annotated[Path, typer.Argument(help="Story folder.")],
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("graph.png"),
    around: Annotated[
        str | None,
        typer.Option(help="Draw only the scenes nearest this scene id."),
    ] = None,
    limit: Annotated[
        int, typer.Option(help="With --around: how many scenes to draw.", min=1)
    ] = 60,
) -> None:
    """Draw the story graph (status colours, salience fade, transitions)."""
    from kg.errors import StoryError
    from kg.graph import DynamicSceneGraph, neighbourhood
    from studio.graph_image import MAX_DRAWN_SCENES, draw_story_graph

    story_graph = DynamicSceneGraph(_load_or_exit(directory))
    scenes = None
    if around is not None:
        if around not in story_graph:
            err_console.print(
                f"[red]--around: no scene {lit(repr(around))}[/]; give a scene id "
                "('storygraph show' lists them)",
                highlight=False,
            )
            raise typer.Exit(2)
        scenes = neighbourhood(story_graph, around, min(limit, MAX_DRAWN_SCENES))
    try:
        path = draw_story_graph(story_graph, out, scenes)
    except StoryError as exc:
        err_console.print(f"[red]{lit(exc)}[/]", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"Wrote {lit(path)}", highlight=False)


def register(app: typer.Typer) -> None:
    for command in (schema, new, validate, show, graph):
        app.command()(command)
