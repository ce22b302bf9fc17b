"""Settings page: generation and memory settings of the open story.

The form is built from the declarations in ``studio.settings_fields``; every
value is validated through ``kg.schema.Settings`` (and the backend's own
constraints) before it is saved; a rejected value is named with what to
change, and the form keeps everything the user typed.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import streamlit as st

from kg.schema import Settings
from studio import services, settings_fields
from studio.components.releases import releases_panel
from studio.literal import markdown_code as code
from studio.literal import markdown_literal as md
from studio.model_choices import OTHER, model_choices
from studio.session import flash, story_page
from studio.setting_declaration import (
    SettingField,
    layout,
    problem_label,
    settings_input,
    settings_key,
    widget_values,
)

__all__ = ["settings_page", "settings_key"]

_BASE_KEY = "settings.base"  # (story folder, saved values) the widgets began at
_DRAFT_KEY = "settings.draft"  # (story folder, rejected values) kept across pages
_MODEL_CHOICE_KEY = "settings.model_choice"
_MODEL_SEEDED_KEY = "settings.model_seeded"  # the model value the chooser follows


def _sync(folder: Path, settings: Settings) -> None:
    """Seed the widgets from the saved settings, keeping what the user typed."""
    saved = widget_values(settings, settings_fields.FIELDS)
    base_folder, base = st.session_state.get(_BASE_KEY, (None, {}))
    draft_folder, draft = st.session_state.get(_DRAFT_KEY, (None, {}))
    draft = draft if draft_folder == str(folder) else {}
    new_story = base_folder != str(folder)
    for field, value in saved.items():
        key = settings_key(field)
        if key not in st.session_state and field in draft:
            st.session_state[key] = draft[field]  # back on the page: still there
            continue
        typed = st.session_state.get(key, base.get(field))
        if new_story or key not in st.session_state or typed == base.get(field):
            st.session_state[key] = value
    st.session_state[_BASE_KEY] = (str(folder), saved)
    _sync_model_choice()


def _sync_model_choice() -> None:
    """Point the Model chooser at the model field's value when that changed."""
    typed = st.session_state.get(settings_key("model"), "")
    if st.session_state.get(_MODEL_SEEDED_KEY) == typed:
        return
    values = [c.value for c in model_choices()]
    st.session_state[_MODEL_CHOICE_KEY] = typed if typed in values else OTHER
    st.session_state[_MODEL_SEEDED_KEY] = typed


def _fill_model() -> None:
    """The chooser's model into the form's Model field (Other: left to type)."""
    chosen = st.session_state[_MODEL_CHOICE_KEY]
    if chosen != OTHER:
        st.session_state[settings_key("model")] = chosen
        st.session_state[_MODEL_SEEDED_KEY] = chosen


def _model_chooser() -> None:
    """Models from the catalog with their availability; a choice fills Model."""
    choices = {c.value: c.label for c in model_choices()}
    st.selectbox(
        "Choose the model from the catalog",
        list(choices),
        format_func=choices.get,
        key=_MODEL_CHOICE_KEY,
        on_change=_fill_model,
        help="The models `storygraph fetch-models` fetches, whether each is in "
        "the local cache now, and the random-weight test models; it fills "
        "Model below (save to keep it). Other: type a folder or a model id "
        "there. `storygraph models` says what each needs.",
    )


def _widget(where: Any, field: SettingField, backends: list[str]) -> Any:
    """Draw ``field``'s widget in ``where`` (``st`` or a column); its value."""
    common = {"key": field.widget_key, "help": field.help_text}
    if field.widget in ("select", "multiselect"):
        options = field.options(backends, st.session_state[field.widget_key])
        draw = where.selectbox if field.widget == "select" else where.multiselect
        return draw(field.label, options, **common)
    if field.widget == "number":
        low, high = field.number_bounds()
        return where.number_input(
            field.label,
            min_value=low,
            max_value=high,
            step=field.number_step(),
            format=field.format,
            **common,
        )
    if field.widget == "checkbox":
        return where.checkbox(field.label, **common)
    if field.widget == "text_area":
        return where.text_area(field.label, height=field.height, **common)
    return where.text_input(field.label, placeholder=field.placeholder, **common)


def _form(backends: list[str]) -> dict[str, Any] | None:
    """The settings form, section by section; its values once it is submitted."""
    values: dict[str, Any] = {}
    with st.form("settings.form"):
        for section, blocks in layout(settings_fields.FIELDS):
            st.subheader(section.title)
            if section.caption:
                st.caption(section.caption)
            for group, rows in blocks:
                with st.expander(group.title) if group else nullcontext():
                    if group and group.table:
                        st.table(group.table())
                    for row in rows:
                        places = st.columns([f.width for f in row]) if row[1:] else [st]
                        for where, field in zip(places, row, strict=True):
                            values[field.key] = _widget(where, field, backends)
        go = st.form_submit_button("Save settings", type="primary")
    return values if go else None


def _save(folder: Path, current: Settings, values: dict[str, Any]) -> None:
    """Validate and save the form's values, or say what to change."""
    fields = settings_fields.FIELDS
    data = settings_input(current, values, fields)
    settings, problems = services.validate_settings(data)
    if settings is None:
        st.session_state[_DRAFT_KEY] = (str(folder), values)
        st.error(
            "Settings not saved; your values are kept. Change:\n"
            + "\n".join(
                f"- **{problem_label(f, fields)}** ({code(f)}): {md(m)}"
                for f, m in problems
            )
        )
        return
    try:
        services.save_settings(folder, settings)
    except services.StoryError as exc:
        st.error(f"Settings not saved; your values are kept: {md(exc)}")
        return
    st.session_state.pop(_DRAFT_KEY, None)
    flash("Settings saved.")
    st.rerun()


def settings_page() -> None:
    """The open story's settings, validated field by field."""
    folder = story_page("Settings")
    if folder is None:
        return
    current = services.story_view(folder).story.settings
    _sync(folder, current)
    _model_chooser()
    releases_panel(current.backend)
    values = _form(services.available_backends())
    if values is not None:
        _save(folder, current, values)
