"""``storygraph run``: generate a story's pending scenes headless.

Scenes run in story order through the `JobRunner` with a progress bar per scene
and one for the story. Running it again continues where it stopped: scenes a
killed run left ``generating`` are recovered as ``interrupted`` and generated
again, finished ones are skipped. Ctrl-C cancels between two steps and leaves
the story consistent (a second Ctrl-C quits at once; the next run recovers).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kg.schema import PENDING_STATUSES
from studio.cli.output import console, err_console
from studio.literal import terminal_literal

if TYPE_CHECKING:
    from engine.runner import JobRunner, RunnerStatus
    from studio.cli.live_graph import LiveGraph

__all__ = ["register", "run"]


def _scene_ids(story, scenes: str | None, force: bool) -> list[str]:  # noqa: ANN001
    if scenes:
        ids = [s.strip() for s in scenes.split(",") if s.strip()]
        known = {s.id for s in story.scenes}
        unknown = [s for s in ids if s not in known]
        if unknown:
            err_console.print(
                f"[red]--scenes: unknown scene ids "
                f"{terminal_literal(unknown)}[/]; choose from {sorted(known)}",
                highlight=False,
            )
            raise typer.Exit(2)
        return ids
    return [s.id for s in story.scenes if force or s.status in PENDING_STATUSES]


def _follow(
    runner: JobRunner, total: int, live: LiveGraph | None = None
) -> RunnerStatus:
    """Draw progress bars until the runner is idle; Ctrl-C cancels.

    With ``live``, the story graph is redrawn each time a scene ends.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[eta]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bars:
        story_bar = bars.add_task("story", total=total, eta="")
        scene_bar = bars.add_task("waiting", total=1, eta="")
        current = None
        try:
            while not runner.wait(0.1):
                st = runner.status()
                done = len(st.finished) + len(st.failed) + len(st.cancelled)
                if live is not None:
                    live.refresh_window()
                eta = f"eta {st.eta_s:.0f}s" if st.eta_s is not None else ""
                bars.update(story_bar, completed=done, eta=eta)
                if st.current_scene != current and st.current_scene:
                    current = st.current_scene
                    bars.reset(scene_bar, total=max(1, st.total_steps))
                window = f" window {st.window}/{st.windows}" if st.windows > 1 else ""
                if st.candidates > 1:
                    window = f" take {st.candidate}/{st.candidates}{window}"
                bars.update(
                    scene_bar,
                    description=f"scene {current or '-'}{window}",
                    completed=st.step,
                    total=max(1, st.total_steps),
                )
        except KeyboardInterrupt:
            console.print("Cancelling after the current step (Ctrl-C again quits)...")
            runner.cancel()
            runner.wait()
        st = runner.status()
        bars.update(
            story_bar,
            completed=len(st.finished) + len(st.failed) + len(st.cancelled),
        )
    if live is not None:
        live.update()
        live.refresh_window()
    return st


def run(
    directory: Annotated[Path, typer.Argument(help="The story folder.")],
    backend: Annotated[
        str | None,
        typer.Option(help="Backend name (animatic, ltx...); default: the story's."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Model id or local folder; default: the story's."),
    ] = None,
    scenes: Annotated[
        str | None,
        typer.Option(help="Comma-separated scene ids; default: every pending one."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Generate even when a take is cached.")
    ] = False,
    no_score: Annotated[
        bool, typer.Option("--no-score", help="Do not score the takes.")
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Redraw DIR/graph.png after every scene (and a window if a "
            "display exists).",
        ),
    ] = False,
    candidates: Annotated[
        int,
        typer.Option(
            min=1,
            max=16,
            help="Make N takes of each scene (seeds seed..seed+N-1), score them "
            "and select the best by settings.best_of.objective.",
        ),
    ] = 1,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Render on Ray: 'local' starts a local cluster, 'story' uses the "
            "story's settings.ray, otherwise the address of a running cluster "
            "(ray://host:10001 or host:6379).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=256, help="Ray workers, one backend each (default: settings)."
        ),
    ] = None,
    film: Annotated[
        bool,
        typer.Option(
            "--film",
            help="When the run ends, assemble every story line whose scenes "
            "are done into DIR/films/.",
        ),
    ] = False,
) -> None:
    """Generate the story's pending scenes in story order."""
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    from engine.backend import available_backends
    from engine.recovery import recover_interrupted
    from engine.runlock import RunLockedError, hold_run
    from kg.errors import StoryError
    from kg.store import load_story

    if candidates > 1 and no_score:
        err_console.print(
            "[red]--candidates: best of N ranks takes by their scores[/]; "
            "drop --no-score"
        )
        raise typer.Exit(2)
    if backend is not None and backend not in available_backends():
        err_console.print(
            f"[red]--backend: unknown backend {backend!r}[/]; "
            f"choose one of {available_backends()}"
        )
        raise typer.Exit(2)
    with contextlib.ExitStack() as holding:
        try:
            recovered = recover_interrupted(directory)
            story = load_story(directory)
            # Held until the run ends: another `run` starting meanwhile gets
            # the run-lock message, whichever step it is at.
            holding.enter_context(hold_run(directory))
        except (FileNotFoundError, StoryError) as exc:
            err_console.print(terminal_literal(str(exc)), style="red", highlight=False)
            raise typer.Exit(1 if isinstance(exc, RunLockedError) else 2) from None
        if recovered:
            console.print(f"Recovered interrupted scenes: {', '.join(recovered)}")
        ids = _scene_ids(story, scenes, force)
        if not ids:
            console.print(
                f"Every scene of [bold]{terminal_literal(story.title)}[/] is done.",
                highlight=False,
            )
            if film:
                _films(directory)
            return
        if ray is not None:
            # the lock stays held while Ray starts (the runner takes it again:
            # it is re-entrant here), so no other run slips in meanwhile
            from studio.cli.on_ray import exit_code, ray_target, run_on_ray

            address, n = ray_target(story, ray, workers)
            batch = run_on_ray(
                [directory], address, n, no_score, backend, model, force,
                scenes={directory: ids}, candidates=candidates,
            )  # fmt: skip
            if film:
                _films(directory)
            raise typer.Exit(exit_code(batch))
        st = _generate(
            directory, ids, backend, model, force, no_score, live, candidates
        )
    if film and not st.cancelled:
        _films(directory)
    console.print(
        f"{len(st.finished)} done, {len(st.failed)} failed, "
        f"{len(st.cancelled)} cancelled"
    )
    if st.failed:
        err_console.print(
            f"failed: {', '.join(st.failed)}: {terminal_literal(str(st.last_error))}",
            style="red",
            highlight=False,
        )
        raise typer.Exit(1)
    if st.cancelled:
        raise typer.Exit(130)


def _films(directory: Path) -> None:
    from studio.cli.film import assemble_lines

    made = assemble_lines(directory)
    console.print(f"{made} film{'s' if made != 1 else ''} in {directory / 'films'}")


def _generate(
    directory: Path,
    ids: list[str],
    backend: str | None,
    model: str | None,
    force: bool,
    no_score: bool,
    live: bool,
    candidates: int = 1,
) -> RunnerStatus:
    """Run the scenes through a `JobRunner` with progress bars; the final status."""
    from studio.wiring import make_runner

    live_graph = None
    if live:
        from studio.cli.live_graph import LiveGraph, display_available

        live_graph = LiveGraph(directory, window=display_available())
        console.print(f"Live graph: {live_graph.png}")
        live_graph.update()
    runner = make_runner(
        directory,
        score=not no_score,
        on_scene_end=live_graph.update if live_graph else None,
    )
    runner.submit(ids, backend=backend, model=model, force=force, candidates=candidates)
    return _follow(runner, len(ids), live_graph)


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``storygraph`` command."""
    app.command("run")(run)
