"""`storygraph import-script` and `export-script`: a screenplay in, the same
story out and in again; a malformed file exits 2 naming its line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kg.fountain import authored_content
from kg.store import load_story
from studio.cli import app

DATA = Path(__file__).parent / "data" / "fountain"


def _said(result) -> str:  # noqa: ANN001 - click Result
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_import_export_import(tmp_path: Path) -> None:
    runner = CliRunner()
    first = tmp_path / "first"
    result = runner.invoke(
        app, ["import-script", str(DATA / "spec_features.fountain"), str(first)]
    )
    assert result.exit_code == 0, result.output
    assert "6 scenes, 3 characters, 5 environments, 9 dialogue lines" in _said(result)
    assert "line 93: centred text" in _said(result)
    out = tmp_path / "out.fountain"
    result = runner.invoke(app, ["export-script", str(first), "--out", str(out)])
    assert result.exit_code == 0, result.output
    second = tmp_path / "second"
    result = runner.invoke(app, ["import-script", str(out), str(second)])
    assert result.exit_code == 0, result.output
    assert authored_content(load_story(second)) == authored_content(load_story(first))


def test_malformed_file_exits_2_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.fountain"
    bad.write_bytes(b"INT. A - DAY\n\nok\n\n[[ a note never closed\n")
    result = CliRunner().invoke(app, ["import-script", str(bad), str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "bad.fountain, line 5" in _said(result)
    assert not (tmp_path / "s").exists()


def test_unknown_line_is_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    story = tmp_path / "story"
    runner.invoke(
        app, ["import-script", str(DATA / "the_crossing.fountain"), str(story)]
    )
    result = runner.invoke(app, ["export-script", str(story), "--line", "nope"])
    assert result.exit_code == 2
    assert "nope" in _said(result)
