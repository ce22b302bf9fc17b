"""The ``storygraph`` command: every package registers its own commands."""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="storygraph",
    help="StoryGraph Studio: author, generate, score and export video stories.",
    no_args_is_help=True,
    add_completion=False,
)

# Each module exposes register(app); missing ones are skipped so the story
# commands work in a minimal install.
_COMMAND_MODULES = (
    "kg.cli",
    "engine.cli",
    "engine.models_cli",
    "scoring.cli",
    "engine.export_cli",
)

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
