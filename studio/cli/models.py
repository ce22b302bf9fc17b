"""Model commands of the ``storygraph`` CLI: ``fetch-models`` and ``models``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from studio.cli.output import console, err_console

__all__ = ["register"]


def fetch_models_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Catalog names (see `storygraph models`); all if none."),
    ] = None,
) -> None:
    """Download models through huggingface_hub (resumable) and verify them."""
    from engine.backend import BackendError
    from engine.models import ModelStatus, fetch_models

    def report(status: ModelStatus) -> None:
        if status.problems:
            err_console.print(
                f"[red]{status.spec.name}[/]: {'; '.join(status.problems)} "
                f"in {status.folder}; run the command again to resume"
            )
        else:
            console.print(f"[green]{status.spec.name}[/] ready in {status.folder}")

    try:
        results = fetch_models(names or None, on_fetched=report)
    except BackendError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    except OSError as exc:  # network or disk; huggingface_hub errors derive from it
        err_console.print(
            f"[red]download failed[/]: {exc}; run the command again to resume"
        )
        raise typer.Exit(1) from exc
    if any(status.problems for status in results):
        raise typer.Exit(1)


def models_command() -> None:
    """List the models, whether each is available locally, and what it needs."""
    from engine.models import model_status

    table = Table(title="Models")
    for column in ("name", "role", "repository", "local", "needs"):
        table.add_column(column)
    table.add_row(
        "tiny-random",
        "video",
        "(built in code; ltx and ltx2)",
        "yes (random weights)",
        "nothing",
    )
    for status in model_status():
        if status.available:
            local = "yes"
        elif status.folder is not None:
            local = "[red]incomplete[/]: " + "; ".join(status.problems)
        else:
            local = "no"
        table.add_row(
            status.spec.name,
            status.spec.role,
            status.spec.repo_id,
            local,
            status.spec.needs
            + (
                f" [dim](unverified: {status.spec.unverified})[/]"
                if status.spec.unverified
                else ""
            ),
        )
    console.print(table)
    console.print("Fetch missing ones with `storygraph fetch-models [NAMES]`.")


def register(app: typer.Typer) -> None:
    app.command("fetch-models")(fetch_models_command)
    app.command("models")(models_command)
