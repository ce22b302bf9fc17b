"""``storygraph export``: exit codes, option errors, the skipped-scenes table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import generate_small_example
from typer.testing import CliRunner

from studio.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_small_example(tmp_path_factory.mktemp("base") / "story")


@pytest.fixture
def story(generated: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(generated, tmp_path / "story"))


def test_export_writes_the_dataset_and_reports_skips(story: Path) -> None:
    result = runner.invoke(
        app,
        ["export", str(story), "--format", "ltxv", "--bucket", "64x64x9"]
        + ["--trigger", "SGX"],
    )
    assert result.exit_code == 0, result.output
    assert "4 rows" in result.output
    assert "2 no continuous predecessor" in result.output
    out = story / "dataset" / "ltxv"  # the default --out
    meta = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    assert meta["format"] == "ltxv" and meta["trigger"] == "SGX"
    again = runner.invoke(
        app,
        ["export", str(story), "--format", "ltxv", "--bucket", "64x64x9"]
        + ["--trigger", "SGX"],
    )
    assert "0 clips encoded, 6 unchanged" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bucket", "64x64x10"], "10 frames is not 8k+1; use 9 or 17"),
        (["--format", "mp4"], "--format 'mp4'"),
        (["--format", "plain", "--pairing", "continuation"], "--pairing none"),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    story: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["export", str(story), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_unscored_takes_with_a_threshold_exit_1_with_the_table(story: Path) -> None:
    result = runner.invoke(
        app, ["export", str(story), "--min-clip-score", "0.2", "--bucket", "64x64x9"]
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "not scored" in text and "6 not scored" in text
    assert not (story / "dataset").exists()
