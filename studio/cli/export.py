"""``storygraph export``: a story as a training dataset for the LTX trainers.

Writes ``dataset.jsonl`` (LTX-2 trainer: ``caption``, ``video``,
``reference_video``, and ``reference_audio`` for pairs with sound),
``dataset.csv`` (LTX-Video-Trainer: ``caption``, ``media_path``,
``ref_media_path``, which the LTX-2 trainer reads too) or a plain caption +
video manifest, the
clips normalised to one ``WxHxF`` bucket, ``metadata.json`` and a README with
the preprocessing commands (see `engine.dataset`). Prints a progress bar while
clips are encoded and a table of the scenes left out and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from engine.dataset import ExportSummary, Skip

from kg.layout import dataset_dir
from studio.cli.output import console, err_console
from studio.cli.output import lit as terminal_literal

__all__ = ["register", "export"]


def skip_table(skips: list[Skip]) -> Table:
    """Skipped scenes with their reason and detail."""
    table = Table(title=f"{len(skips)} scenes skipped", title_justify="left")
    for column in ("scene", "take", "reason", "detail"):
        table.add_column(column, overflow="fold")
    for skip in skips:
        take = "-" if skip.take is None else str(skip.take)
        table.add_row(
            skip.scene_id,
            take,
            terminal_literal(skip.reason),
            terminal_literal(skip.detail),
        )
    return table


def _report(summary: ExportSummary) -> None:
    plan = summary.plan
    console.print(
        f"[green]{summary.rows} rows[/] ({plan.options.format}, pairing "
        f"{plan.options.resolved_pairing}, bucket {plan.bucket.text}) in "
        f"{terminal_literal(summary.out)}: {summary.clips_written} clips encoded, "
        f"{summary.clips_reused} unchanged"
        + (f", {len(summary.removed)} old files removed" if summary.removed else "")
    )
    if summary.skipped:
        counts = ", ".join(f"{n} {why}" for why, n in summary.skip_counts().items())
        console.print(f"Skipped {len(summary.skipped)} scenes: {counts}")
        console.print(skip_table(summary.skipped))


def export(
    directory: Annotated[Path, typer.Argument(help="The story folder.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Dataset folder (new, empty or a previous export); "
            "default: DIRECTORY/dataset/FORMAT."
        ),
    ] = None,
    format: Annotated[
        str, typer.Option("--format", help="ltx2 (LTX-2 trainer), ltxv or plain.")
    ] = "ltx2",
    pairing: Annotated[
        str | None,
        typer.Option(
            help="continuation (reference = previous clip on a continuous edge) "
            "or none; default: continuation for ltx2/ltxv, none for plain."
        ),
    ] = None,
    min_clip_score: Annotated[
        float | None, typer.Option(help="Skip takes with a lower clip_score.")
    ] = None,
    min_subject_consistency: Annotated[
        float | None,
        typer.Option(help="Skip takes with a lower subject_consistency."),
    ] = None,
    trigger: Annotated[
        str | None, typer.Option(help="Token prepended to every caption.")
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option(
            help="WxHxF, width and height multiples of 32, frames 8k+1 "
            "(e.g. 768x512x49); default: the story's size and shortest clip."
        ),
    ] = None,
) -> None:
    """Export the selected takes as an IC-LoRA / text-to-video dataset."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from engine.dataset import (
        EmptyDatasetError,
        ExportError,
        ExportOptions,
        export_dataset,
        plan_export,
    )
    from engine.dataset.bucket import BucketError, parse_bucket
    from kg.errors import StoryError

    try:
        options = ExportOptions(
            format=format,
            pairing=pairing,
            min_clip_score=min_clip_score,
            min_subject_consistency=min_subject_consistency,
            trigger=trigger,
            bucket=parse_bucket(bucket) if bucket is not None else None,
        ).check()
        plan = plan_export(directory, options)
    except (BucketError, ExportError, FileNotFoundError, StoryError) as exc:
        err_console.print(f"[red]{terminal_literal(exc)}[/]", highlight=False)
        raise typer.Exit(2) from None
    target = out if out is not None else directory / dataset_dir(format)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=console, transient=True) as bars:
            task = bars.add_task("encoding clips", total=None)

            def progress(done: int, total: int) -> None:
                bars.update(task, completed=done, total=total)

            summary = export_dataset(
                directory, target, options, progress=progress, plan=plan
            )
    except EmptyDatasetError as exc:
        if exc.plan.skipped:
            console.print(skip_table(exc.plan.skipped))
        err_console.print(f"[red]{terminal_literal(exc)}[/]", highlight=False)
        raise typer.Exit(1) from None
    except (ExportError, StoryError) as exc:
        err_console.print(f"[red]{terminal_literal(exc)}[/]", highlight=False)
        raise typer.Exit(2) from None
    _report(summary)


def register(app: typer.Typer) -> None:
    """Add ``export`` to the ``storygraph`` command."""
    app.command("export")(export)
