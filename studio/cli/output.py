"""Console output shared by the command groups: user text printed literally."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from studio.literal import terminal_literal

__all__ = ["console", "err_console", "fail", "lit"]

console = Console()
err_console = Console(stderr=True)
lit = terminal_literal


def fail(message: object, code: int = 2) -> NoReturn:
    """Print ``message`` (literally, in red) on stderr and exit with ``code``."""
    err_console.print(f"[red]{lit(message)}[/]", highlight=False)
    raise typer.Exit(code)
