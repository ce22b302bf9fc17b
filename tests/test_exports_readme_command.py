"""The README's own commands, run as written: a new example story, a run on
the default backend (the animatic), and the export command block.

The commands are read from README.md's "Command line" block (optional parts
in brackets dropped, the story and dataset folders moved under a temporary
folder), so the test fails when the README and the program part ways.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studio.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
STORY, DATASET = "story_outputs/lighthouse", "datasets/lighthouse"


def readme_commands() -> list[list[str]]:
    """Every ``storygraph`` command of the README's first bash block."""
    text = README.read_text(encoding="utf-8")
    block = text.split("## Command line", 1)[1].split("```bash\n", 1)[1]
    block = block.split("```", 1)[0].replace("\\\n", " ")
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0]
        line = re.sub(r"\[[^\]]*\]", " ", line)  # optional parts
        words = shlex.split(line)
        if words and words[0].endswith("bin/storygraph"):
            commands.append(words[1:])
    return commands


def first(commands: list[list[str]], name: str) -> list[str]:
    return next(c for c in commands if c[0] == name)


def test_the_readme_export_command_works_on_the_readme_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # scoring needs weights the test machine does not have: the observer says
    # so per take, the run goes on (what a new user without weights sees)
    monkeypatch.setenv("STORYGRAPH_CLIP_MODEL", str(tmp_path / "no-clip"))
    monkeypatch.setenv("STORYGRAPH_DINO_MODEL", str(tmp_path / "no-dino"))
    commands = readme_commands()
    new, run, export = (first(commands, n) for n in ("new", "run", "export"))
    assert new == ["new", STORY, "--example"]
    assert run == ["run", STORY]
    assert export[:2] == ["export", STORY] and "--bucket" in export
    runner = CliRunner()
    for command in (new, run, export):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)

    out = tmp_path / DATASET
    meta = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    bucket = export[export.index("--bucket") + 1]
    assert meta["bucket"]["text"] == bucket
    assert meta["rows"], "the README's export makes a dataset of the example"
    # every continuous scene of the example is a pair; nothing is too short
    assert "too short" not in meta["skip_counts"]
    assert set(meta["skip_counts"]) <= {"no continuous predecessor"}
