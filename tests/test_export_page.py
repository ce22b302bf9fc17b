"""AppTest of the Export page: options, preview, export with progress, download."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import generate_small_example
from streamlit.testing.v1 import AppTest

from kg.schema import Scores
from kg.store import update_story
from studio import services
from studio.session import STORY_KEY
from studio.testing import shown_text


def _export_script() -> None:
    from studio.views.export import export_page

    export_page()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_small_example(tmp_path_factory.mktemp("base") / "lighthouse")


@pytest.fixture
def story(generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "outputs"
    monkeypatch.setenv(services.OUTPUTS_ENV, str(root))
    return Path(shutil.copytree(generated, root / "lighthouse"))


def _page(story: Path | None) -> AppTest:
    at = AppTest.from_function(_export_script, default_timeout=60)
    if story is not None:
        at.session_state[STORY_KEY] = str(story)
    return at.run()


def _texts(at) -> str:  # noqa: ANN001 - AppTest
    return shown_text(at)


def test_page_previews_exports_and_offers_the_zip(story: Path) -> None:
    at = _page(story)
    assert not at.exception
    assert at.selectbox(key="export.format").value == "ltx2"
    assert at.selectbox(key="export.pairing.ltx2").value == "continuation"
    rows = at.dataframe[0].value
    assert list(rows["scene"]) == ["meeting", "climb", "lamp-room", "dawn"]
    skipped = at.dataframe[1].value
    assert set(skipped["reason"]) == {"no continuous predecessor"}
    assert not at.get("download_button")  # nothing exported yet

    at.text_input(key="export.trigger").input("SGX")
    at.text_input(key="export.bucket").input("64x64x9").run()
    assert at.dataframe[0].value["caption"].str.startswith("SGX ").all()
    assert at.button(key="export.run").disabled  # animatic clips: confirm first
    at.checkbox(key="export.placeholders_ok").check().run()
    at.button(key="export.run").click().run()
    assert not at.exception
    out = story / "dataset" / "ltx2"
    assert "Exported 4 rows" in _texts(at)
    lines = (out / "dataset.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["video"] for line in lines] == [
        "videos/meeting-take1.mp4",
        "videos/climb-take1.mp4",
        "videos/lamp-room-take1.mp4",
        "videos/dawn-take1.mp4",
    ]
    assert at.get("download_button"), "the zip download is offered"


def test_thresholds_skip_unscored_takes_and_say_so(story: Path) -> None:
    update_story(
        story,
        lambda s: setattr(
            s.scene("arrival").selected, "scores", Scores(clip_score=0.3)
        ),
    )
    at = _page(story)
    at.selectbox(key="export.format").set_value("plain").run()
    assert at.selectbox(key="export.pairing.plain").value == "none"
    at.number_input(key="export.min_clip_score").set_value(0.2).run()
    assert not at.exception
    assert list(at.dataframe[0].value["scene"]) == ["arrival"]
    assert set(at.dataframe[1].value["reason"]) == {"not scored"}
    assert "5 not scored" in _texts(at)


def test_bad_bucket_and_name_are_reported_by_field(story: Path) -> None:
    at = _page(story)
    at.text_input(key="export.bucket").input("100x64x9").run()
    assert "--bucket 100x64x9: width 100 is not a multiple of 32" in _texts(at)
    at.text_input(key="export.bucket").input("").run()
    at.text_input(key="export.name.ltx2").input("../escape").run()
    assert "Dataset name '../escape'" in _texts(at)
    assert not (story / "escape").exists()


def test_without_an_open_story_the_page_says_where_to_open_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    at = _page(None)
    assert not at.exception
    assert "No story is open" in _texts(at)
