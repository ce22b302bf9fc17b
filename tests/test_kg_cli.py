"""The story commands: new, validate, show, graph, schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from studio.cli import app

runner = CliRunner()


def test_new_example_then_validate(tmp_path: Path) -> None:
    story = tmp_path / "lighthouse"
    result = runner.invoke(app, ["new", str(story), "--example"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", str(story / "kg_state.json")])
    assert result.exit_code == 0, result.output
    assert "6 scenes" in result.output
    again = runner.invoke(app, ["new", str(story)])
    assert again.exit_code == 1 and "exists" in again.output


def test_validate_corrupted_exits_2_with_paths(tmp_path: Path) -> None:
    runner.invoke(app, ["new", str(tmp_path / "s"), "--example"])
    file = tmp_path / "s" / "kg_state.json"
    doc = json.loads(file.read_text())
    doc["scenes"][1]["camera"] = "spin"
    doc["settings"]["fps"] = -3
    file.write_text(json.dumps(doc))
    result = runner.invoke(app, ["validate", str(file)])
    assert result.exit_code == 2
    assert "scenes[1].camera" in result.output and "settings.fps" in result.output
    file.write_text("{ not json")
    assert runner.invoke(app, ["validate", str(file)]).exit_code == 2


def test_show_lists_scenes_in_order_with_memory(tmp_path: Path) -> None:
    runner.invoke(app, ["new", str(tmp_path / "s"), "--example"])
    result = runner.invoke(app, ["show", str(tmp_path / "s"), "--width", "40"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("arrival") < out.index("meeting") < out.index("dawn")
    assert "draft" in out and "Mara" in out


def test_graph_writes_png(tmp_path: Path) -> None:
    runner.invoke(app, ["new", str(tmp_path / "s"), "--example"])
    png = tmp_path / "g.png"
    result = runner.invoke(app, ["graph", str(tmp_path / "s"), "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_schema_command_and_console_script(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert "SceneNode" in json.loads(result.output)["$defs"]
    # the installed entry point, end to end in a real process
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "studio.cli",
            "new",
            str(tmp_path / "x"),
            "--title",
            "X",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "x" / "kg_state.json").read_text())["title"] == "X"
