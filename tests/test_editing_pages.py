"""Editing ergonomics on the pages: the Model chooser, duplicate reference
uploads, the Export page's placeholder warning, sound fields on silent
backends."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from conftest import generate_small_example
from PIL import Image
from streamlit.testing.v1 import AppTest

from kg.store import load_story, update_story
from studio import services
from studio.model_choices import OTHER
from studio.session import STORY_KEY
from studio.testing import page_test, shown_text
from studio.views.settings import settings_key
from studio.views.storyboard import editor_key

MODEL_CHOICE = "settings.model_choice"


@pytest.fixture
def example(outputs: Path) -> Path:
    return services.create_story("lighthouse", "", example=True)


def _png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buf, format="PNG")
    return buf.getvalue()


# Model chooser ---------------------------------------------------------------------


def test_model_chooser_lists_the_catalog_and_tiny_random(example: Path) -> None:
    at = page_test("settings", example).run()
    chooser = at.selectbox(key=MODEL_CHOICE)
    assert chooser.value == ""  # the backend's default
    assert "tiny-random" in chooser.options[1]
    ltx = [o for o in chooser.options if o.startswith("ltx-video · ltx ·")]
    assert ltx and ("available" in ltx[0] or "fetch-models ltx-video" in ltx[0])
    chooser.set_value("tiny-random").run()  # fills the form's Model field
    assert at.text_input(key=settings_key("model")).value == "tiny-random"
    at.selectbox(key=settings_key("backend")).set_value("ltx")
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    assert not at.exception
    settings = load_story(example).settings
    assert (settings.backend, settings.model) == ("ltx", "tiny-random")
    assert at.selectbox(key=MODEL_CHOICE).value == "tiny-random"


def test_model_chooser_keeps_a_typed_folder_as_other(example: Path) -> None:
    update_story(example, lambda s: setattr(s.settings, "model", "/models/my-ltx"))
    at = page_test("settings", example).run()
    assert at.selectbox(key=MODEL_CHOICE).value == OTHER
    assert at.text_input(key=settings_key("model")).value == "/models/my-ltx"


# Duplicate reference uploads -------------------------------------------------------


def test_a_second_upload_of_the_same_image_is_refused(example: Path) -> None:
    first = services.add_reference_image(example, "mara", "mara.png", _png("red"))
    with pytest.raises(services.StoryError, match=f"already a reference.*{first}"):
        services.add_reference_image(example, "mara", "again.png", _png("red"))
    refs = load_story(example).character("mara").reference_images
    assert refs == [first]
    assert sorted(p.name for p in (example / first).parent.iterdir()) == ["mara.png"]
    other = services.add_reference_image(example, "mara", "blue.png", _png("blue"))
    assert load_story(example).character("mara").reference_images == [first, other]


# Export warning --------------------------------------------------------------------


def _export_script() -> None:
    from studio.views.export import export_page

    export_page()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_small_example(tmp_path_factory.mktemp("base") / "lighthouse")


def test_export_warns_before_animatic_footage_goes_in(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "outputs"
    monkeypatch.setenv(services.OUTPUTS_ENV, str(root))
    story = Path(shutil.copytree(generated, root / "lighthouse"))
    at = AppTest.from_function(_export_script, default_timeout=60)
    at.session_state[STORY_KEY] = str(story)
    at.run()
    text = shown_text(at)
    assert "Placeholder footage" in text
    assert "animatic storyboard clips" in text
    assert at.button(key="export.run").disabled
    at.checkbox(key="export.placeholders_ok").check().run()
    assert not at.button(key="export.run").disabled


# Sound fields ----------------------------------------------------------------------


@pytest.mark.parametrize(("backend", "disabled"), [("animatic", True), ("ltx2", False)])
def test_sound_fields_are_off_with_a_reason_on_silent_backends(
    example: Path, backend: str, disabled: bool
) -> None:
    update_story(example, lambda s: setattr(s.settings, "backend", backend))
    at = page_test("storyboard", example).run()
    assert not at.exception
    assert at.text_area(key=editor_key("arrival", "dialogue")).disabled is disabled
    assert at.text_input(key=editor_key("arrival", "ambience")).disabled is disabled
    assert at.text_area(key=editor_key("arrival", "effects")).disabled is disabled
    assert ("makes no sound" in shown_text(at)) is disabled
