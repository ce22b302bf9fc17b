"""The Settings page is built from its declaration table (studio.settings_fields).

Every row of the table renders a widget under its key, label and help, and its
value goes back into the same place of ``Settings``; a row added to the table
shows on the page, is saved and names its problems, with no other change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kg.schema import Settings
from kg.store import load_story
from studio import services, settings_fields
from studio.setting_declaration import (
    SettingField,
    field_info,
    problem_label,
    settings_input,
    widget_values,
)
from studio.settings_fields import FIELDS, MEMORY
from studio.testing import page_test, shown_text

SAVE = "FormSubmitter:settings.form-Save settings"
# The AppTest accessor of each widget kind.
ACCESSORS = {
    "select": "selectbox",
    "multiselect": "multiselect",
    "number": "number_input",
    "checkbox": "checkbox",
    "text": "text_input",
    "text_area": "text_area",
}
REINFORCEMENT = SettingField(
    key="decay_reinforcement",
    path="decay.reinforcement",
    label="Reinforcement",
    widget="number",
    step=0.05,
    format="%.3f",
    help="Added to an entity's importance each time it appears again.",
    section=MEMORY,
    row="decay",
    named="reinforcement",
)


@pytest.fixture
def example(outputs: Path) -> Path:
    return services.create_story("lighthouse", "", example=True)


def _edited() -> Settings:
    """Settings unlike the defaults in every field the page shows."""
    return Settings.model_validate(
        {
            "backend": "animatic",
            "model": "m",
            "width": 640,
            "height": 384,
            "fps": 12,
            "quality_preset": "high",
            "memory_mode": "vae_tiling",
            "continuity_mode": "frame",
            "release_models": True,
            "windows": {"frames": 97, "overlap_frames": 16, "strength": 0.7},
            "references": {"strength": 0.6, "max_images": 3},
            "hosted": {
                "budget_usd": 12.5,
                "timeout_s": 600,
                "max_retries": 2,
                "prices": {"as_of": "2026-02-01", "usd_per_second": {"a/b": 0.5}},
            },
            "ray": {"address": "ray://gpu:10001", "workers": 4},
            "best_of": {"candidates": 5, "objective": ["clip_score", "motion"]},
            "decay": {"rate": 0.6, "threshold": 0.2, "reinforcement": 0.5},
        }
    )


@pytest.mark.parametrize("settings", [Settings(), _edited()], ids=["default", "edited"])
def test_every_row_round_trips_through_the_save_input(settings: Settings) -> None:
    values = widget_values(settings, FIELDS)
    assert set(values) == {f.key for f in FIELDS}
    assert Settings.model_validate(settings_input(settings, values, FIELDS)) == settings


def test_every_row_renders_its_widget_and_an_unchanged_save_keeps_settings(
    example: Path,
) -> None:
    before = load_story(example).settings
    at = page_test("settings", example).run()
    assert not at.exception
    for field in FIELDS:
        widget = getattr(at, ACCESSORS[field.widget])(key=field.widget_key)
        assert (widget.label, widget.help) == (field.label, field.help_text), field
    at.button(key=SAVE).click().run()
    assert not at.exception and not at.error
    assert load_story(example).settings == before


def test_bounds_and_choices_come_from_the_model() -> None:
    by_key = {f.key: f for f in FIELDS}
    assert by_key["reference_max_images"].number_bounds() == (1, 8)
    assert by_key["window_strength"].number_bounds() == (0.05, 1.0)  # gt 0, step
    assert by_key["hosted_budget"].number_bounds() == (0.0, None)
    assert by_key["width"].number_bounds() == (None, None)  # validation names it
    upper = next(m.le for m in field_info("ray.workers").metadata if hasattr(m, "le"))
    assert by_key["ray_workers"].help_text.endswith(f"(1 to {upper}).")
    assert by_key["continuity_mode"].options([], None) == ["latent", "frame", "none"]
    assert by_key["backend"].options(["animatic"], "gone") == ["animatic", "gone"]


def test_a_row_naming_no_setting_fails_when_declared() -> None:
    with pytest.raises(KeyError, match="decay.reinforcment"):
        dataclasses.replace(REINFORCEMENT, path="decay.reinforcment")


def test_a_row_added_to_the_table_is_shown_saved_and_labelled(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_fields, "FIELDS", (*FIELDS, REINFORCEMENT))
    at = page_test("settings", example).run()
    assert not at.exception
    box = at.number_input(key="settings.decay_reinforcement")
    assert box.label == "Reinforcement" and box.value == 0.25
    # labelled: a value the model refuses is named by the row's label
    box.set_value(20.0)
    at.button(key=SAVE).click().run()
    assert "**reinforcement** (`decay.reinforcement`)" in shown_text(at)
    assert at.number_input(key="settings.decay_reinforcement").value == 20.0
    assert load_story(example).settings.decay.reinforcement == 0.25
    # saved, beside the row it shares ("decay") and the rest of the section
    at.number_input(key="settings.decay_reinforcement").set_value(0.5)
    at.button(key=SAVE).click().run()
    assert not at.exception
    decay = load_story(example).settings.decay
    assert (decay.reinforcement, decay.rate) == (0.5, 0.8)
    assert problem_label("decay.reinforcement", settings_fields.FIELDS) == (
        "reinforcement"
    )
