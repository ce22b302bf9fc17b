"""Dataset export for the studio's Export page (the engine's export, wrapped).

The page builds options from its form, previews the plan, exports with a
progress bar and offers the folder as a zip; every call goes through here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.dataset import (
    METADATA_FILE,
    ExportError,
    ExportOptions,
    ExportPlan,
    ExportSummary,
    export_dataset,
    plan_export,
    zip_dataset,
)
from engine.dataset.bucket import BucketError, parse_bucket
from kg.errors import StoryError

__all__ = [
    "EXPORT_ERRORS",
    "ExportOptions",
    "ExportPlan",
    "build_options",
    "plan",
    "export",
    "has_export",
    "zip_folder",
]

# What an export can refuse with a message for the user.
EXPORT_ERRORS = (BucketError, ExportError, StoryError)


def build_options(fields: dict[str, Any]) -> ExportOptions:
    """Checked options from the form's fields (``bucket`` as typed, or empty)."""
    bucket = parse_bucket(fields["bucket"]) if fields["bucket"] else None
    return ExportOptions(**{**fields, "bucket": bucket}).check()


def plan(folder: Path, options: ExportOptions) -> ExportPlan:
    """What an export would write: rows, skipped scenes and the bucket."""
    return plan_export(folder, options)


def export(
    folder: Path,
    out: Path,
    options: ExportOptions,
    progress: Callable[[int, int], None],
    planned: ExportPlan,
) -> ExportSummary:
    """Write the dataset to ``out`` (see `engine.dataset.export_dataset`)."""
    return export_dataset(folder, out, options, progress=progress, plan=planned)


def has_export(out: Path) -> bool:
    """Whether ``out`` holds a finished export (its metadata file)."""
    return (out / METADATA_FILE).is_file()


def zip_folder(out: Path) -> bytes:
    """The dataset folder as deterministic zip bytes."""
    return zip_dataset(out)
