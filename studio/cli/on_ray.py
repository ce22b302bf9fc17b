"""Stories on Ray from the command line: ``run --ray`` and ``batch --ray``.

`run_on_ray` renders stories on a `engine.ray_runner.RayRunner`, printing
each scene as it ends and a summary; a story another process is generating
is named (exit 1), not a traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer

from studio.cli.output import console, err_console
from studio.literal import terminal_literal

__all__ = ["ray_target", "run_on_ray", "exit_code"]


def ray_target(story, ray: str, workers: int | None) -> tuple[str, int]:  # noqa: ANN001
    """The cluster and worker count: the options, else the story's settings."""
    if ray == "story":
        ray = story.settings.ray.address or "local"
    return ray, workers or story.settings.ray.workers


def run_on_ray(
    directories: list[Path],
    address: str,
    workers: int,
    no_score: bool,
    backend: str | None,
    model: str | None,
    force: bool,
    scenes: dict[Path, list[str]] | None = None,
    candidates: int = 1,
):  # noqa: ANN201 - engine.ray_runner.BatchStatus
    """Render stories on Ray (each scene as ``candidates`` takes, the best
    kept), printing each scene as it ends and a summary."""
    from engine.ray_runner import RayRunner
    from engine.runlock import RunLockedError
    from studio.wiring import default_observer

    def ended(story_dir: Path, scene: str, outcome: str) -> None:
        colour = {"done": "green", "cancelled": "yellow"}.get(outcome, "red")
        console.print(
            f"{terminal_literal(story_dir.name)} {terminal_literal(scene)}: "
            f"[{colour}]{outcome}[/]",
            highlight=False,
        )

    runner = RayRunner(
        address=None if address == "local" else address,
        workers=workers,
        observer=None if no_score else default_observer(),
        on_scene_end=ended,
    )
    try:
        batch = runner.run(directories, scenes=scenes, backend=backend,
                           model=model, force=force, candidates=candidates)  # fmt: skip
    except KeyboardInterrupt:
        console.print("Cancelled; every story is left consistent.")
        raise typer.Exit(130) from None
    except RunLockedError as exc:  # taken before Ray starts: nothing ran
        err_console.print(terminal_literal(str(exc)), style="red", highlight=False)
        raise typer.Exit(1) from None
    for story in batch.stories:
        console.print(
            f"{terminal_literal(story.story_dir)}: {len(story.finished)} done, "
            f"{len(story.failed)} failed, {len(story.cancelled)} cancelled",
            highlight=False,
        )
        for scene, error in story.errors.items():
            err_console.print(
                f"  {terminal_literal(scene)}: {terminal_literal(error)}",
                style="red",
                highlight=False,
            )
    minutes = batch.seconds / 60
    n = len(batch.stories)
    console.print(
        f"{n} {'story' if n == 1 else 'stories'} in {batch.seconds:.1f} s "
        f"({len(batch.stories) / minutes if minutes else 0:.1f} stories/min, "
        f"{workers} workers, {batch.retries} retries)"
    )
    return batch


def exit_code(batch) -> int:  # noqa: ANN001 - engine.ray_runner.BatchStatus
    if batch.failed:
        return 1
    if any(s.cancelled for s in batch.stories):
        return 130
    return 0
