"""Cast page: characters and environments, with reference images.

Every editor keeps what the user typed as a draft (``studio.session``), so
leaving the page, a failed validation or another session saving in between
never loses it. Reference images are checked (PNG, JPEG or WebP, as the file
name says, at most 10 MB) and stored under ``references/<character>/`` in the
story folder; the story keeps their relative paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from kg.fields import MAX_NAME, MAX_PROMPT, MAX_SHORT_TEXT, MAX_TEXT
from kg.schema import (
    WEATHERS,
    Character,
    Environment,
    Story,
)
from studio import services
from studio.components.history import history_bar
from studio.literal import markdown_literal as md
from studio.lora_text import LORA_HELP, lora_lines, parse_lora_lines
from studio.session import (
    flash,
    forget_draft,
    remember_draft,
    seed_draft,
    story_page,
)

__all__ = ["cast_page", "cast_key", "NEW"]

NEW = "__new__"  # the item id of the "new character/environment" editors
_ID_HELP = (
    "Lowercase letters, digits, '-' and '_', starting with a letter or digit; "
    "scenes refer to it, so it is fixed once added."
)


def cast_key(kind: str, item: str, field: str) -> str:
    """Session-state key of one editor widget (``kind``: character, environment)."""
    return f"cast.{kind}.{item}.{field}"


@dataclass(frozen=True)
class _Kind:
    """What differs between the character and the environment editors."""

    name: str  # "character" or "environment"
    values: Callable[[Any], dict[str, Any]]  # entity (None: new) -> editor values
    widgets: Callable[[Callable[[str], str], bool], dict[str, Any]]  # (key, new)
    data: Callable[[dict[str, Any], Any], dict[str, Any]]  # values -> model input
    validate: Callable[[dict[str, Any]], tuple[Any, list[tuple[str, str]]]]
    save: Callable[[Path, Any], None]
    entities: Callable[[Story], list[Any]]

    @property
    def namespace(self) -> str:
        """Session-state namespace of this kind's drafts."""
        return f"cast.{self.name}_drafts"

    def widget_key(self, item: str, field: str) -> str:
        return cast_key(self.name, item, field)


# Characters --------------------------------------------------------------------


def _character_values(c: Character | None) -> dict[str, Any]:
    c = c or Character(id="new-character", name="New character")
    new = c.id == "new-character"
    return {
        "id": "" if new else c.id,
        "name": "" if new else c.name,
        "description": c.description,
        "attributes": ", ".join(c.visual_attributes),
        "importance": float(c.importance),
        "loras": lora_lines(c.loras),
    }


def _identity_widgets(key: Callable[[str], str], new: bool) -> dict[str, Any]:
    """Id (fixed once added), name and description: what every entity has."""
    values: dict[str, Any] = {}
    a, b = st.columns(2)
    values["id"] = a.text_input(
        "Id", key=key("id"), disabled=not new, help=_ID_HELP, max_chars=64
    )
    values["name"] = b.text_input("Name", key=key("name"), max_chars=MAX_NAME)
    values["description"] = st.text_area(
        "Description", key=key("description"), height=68, max_chars=MAX_TEXT
    )
    return values


def _character_widgets(key: Callable[[str], str], new: bool) -> dict[str, Any]:
    values = _identity_widgets(key, new)
    values["attributes"] = st.text_input(
        "Visual attributes (comma separated)",
        key=key("attributes"),
        help="What the prompt says about their look, e.g. 'long red hair, "
        "yellow oilskin coat'.",
        max_chars=MAX_PROMPT,
    )
    values["importance"] = st.number_input(
        "Importance",
        step=0.25,
        key=key("importance"),
        help="How long the story remembers them after they leave a scene.",
    )
    values["loras"] = st.text_area(
        "LoRAs (file = weight, one per line)",
        key=key("loras"),
        height=68,
        max_chars=MAX_PROMPT,
        placeholder="/models/loras/mara.safetensors = 0.8",
        help=LORA_HELP + " Attached in every scene the character is in.",
    )
    return values


def _character_data(values: dict[str, Any], old: Character | None) -> dict[str, Any]:
    return {
        "id": old.id if old else values["id"].strip(),
        "name": values["name"].strip(),
        "description": values["description"].strip(),
        "visual_attributes": [
            a.strip() for a in values["attributes"].split(",") if a.strip()
        ],
        "reference_images": list(old.reference_images) if old else [],
        "importance": values["importance"],
        "loras": parse_lora_lines(values["loras"]),
    }


# Environments ------------------------------------------------------------------


def _environment_values(e: Environment | None) -> dict[str, Any]:
    e = e or Environment(id="new-environment", name="New environment")
    new = e.id == "new-environment"
    return {
        "id": "" if new else e.id,
        "name": "" if new else e.name,
        "description": e.description,
        "lighting": e.lighting,
        "weather": e.default_weather,
        "importance": float(e.importance),
    }


def _environment_widgets(key: Callable[[str], str], new: bool) -> dict[str, Any]:
    values = _identity_widgets(key, new)
    a, b, c = st.columns(3)
    values["lighting"] = a.text_input(
        "Lighting", key=key("lighting"), max_chars=MAX_SHORT_TEXT
    )
    values["weather"] = b.selectbox(
        "Default weather", list(WEATHERS), key=key("weather")
    )
    values["importance"] = c.number_input(
        "Importance",
        step=0.25,
        key=key("importance"),
        help="How long the story remembers it after a scene set elsewhere.",
    )
    return values


def _environment_data(
    values: dict[str, Any], old: Environment | None
) -> dict[str, Any]:
    return {
        "id": old.id if old else values["id"].strip(),
        "name": values["name"].strip(),
        "description": values["description"].strip(),
        "lighting": values["lighting"].strip(),
        "default_weather": values["weather"],
        "reference_images": list(old.reference_images) if old else [],
        "importance": values["importance"],
    }


CHARACTER = _Kind(
    "character",
    _character_values,
    _character_widgets,
    _character_data,
    services.validate_character,
    services.save_character,
    lambda story: story.characters,
)
ENVIRONMENT = _Kind(
    "environment",
    _environment_values,
    _environment_widgets,
    _environment_data,
    services.validate_environment,
    services.save_environment,
    lambda story: story.environments,
)


# One editor for both kinds -------------------------------------------------------


def _problem_text(problems: list[tuple[str, str]]) -> str:
    return "Not saved; your values are kept. Fix:\n" + "\n".join(
        f"- **{md(field)}**: {md(msg)}" for field, msg in problems
    )


def _editor(folder: Path, story: Story, kind: _Kind, entity: Any | None) -> None:
    """The fields of one character or environment, with Save (or Add) and Revert."""
    item = entity.id if entity else NEW
    saved = kind.values(entity)
    seed_draft(kind.namespace, folder, item, saved, kind.widget_key)
    values = kind.widgets(lambda field: kind.widget_key(item, field), entity is None)
    remember_draft(kind.namespace, folder, item, values)
    unsaved = values != saved
    a, b = st.columns(2)
    if a.button(
        f"Save {kind.name}" if entity else f"Add {kind.name}",
        key=f"cast.save.{kind.name}.{item}",
        type="primary" if unsaved else "secondary",
        width="stretch",  # never disabled: a click right after typing must count
    ):
        _save(folder, story, kind, entity, values)
    b.button(
        "Revert" if entity else "Clear",
        key=f"cast.revert.{kind.name}.{item}",
        disabled=not unsaved,
        on_click=forget_draft,
        args=(kind.namespace, folder, item, kind.widget_key),
        width="stretch",
    )
    if unsaved and entity:
        st.caption("Unsaved changes: save them or revert.")


def _save(
    folder: Path,
    story: Story,
    kind: _Kind,
    entity: Any | None,
    values: dict[str, Any],
) -> None:
    """Validate and save one character or environment; problems name the field."""
    data = kind.data(values, entity)
    if entity is None and data["id"] in {x.id for x in kind.entities(story)}:
        st.error(
            f"Not saved; your values are kept. **id**: {md(repr(data['id']))} is "
            f"taken by another {kind.name}; choose another id"
        )
        return
    model, problems = kind.validate(data)
    if model is None:
        st.error(_problem_text(problems))
        return
    try:
        kind.save(folder, model)
    except services.StoryError as exc:
        st.error(f"Not saved; your values are kept: {md(exc)}")
        return
    forget_draft(kind.namespace, folder, entity.id if entity else NEW, kind.widget_key)
    flash(f"Saved {kind.name} {md(model.name)}.")
    st.rerun()


# Reference images and deletion -----------------------------------------------------


def _references(
    folder: Path, character: Character | Environment, kind: str = "character"
) -> None:
    st.markdown("**Reference images**")
    # characters keep their keys; an environment's cannot meet a character's
    prefix = character.id if kind == "character" else f"environment.{character.id}"
    images = [
        (rel, services.resolve_asset(folder, rel)) for rel in character.reference_images
    ]
    if not images:
        st.caption(
            "None yet: they condition the scenes it appears in (as keyframes "
            "before the clip, with the ltx and ltx2 backends)"
            + (
                " and the observer compares each take with them (character "
                "consistency)."
                if kind == "character"
                else "."
            )
        )
    else:
        cols = st.columns(min(4, len(images)))
        for i, (rel, path) in enumerate(images):
            with cols[i % len(cols)]:
                if path is None:
                    st.warning(f"Missing on disk: {md(rel)}")
                else:
                    _thumbnail(path, rel)
                if st.button("Remove", key=f"cast.ref.remove.{prefix}.{i}"):
                    services.remove_reference_image(folder, character.id, rel, kind)
                    flash(f"Removed {md(Path(rel).name)} from {md(character.name)}.")
                    st.rerun()
    upload = st.file_uploader(
        "Add a reference image",
        type=["png", "jpg", "jpeg", "webp"],
        key=f"cast.ref.upload.{prefix}",
        max_upload_size=services.MAX_REFERENCE_BYTES // (1024 * 1024),
    )
    if upload is not None and st.button(
        "Store reference image", key=f"cast.ref.store.{prefix}"
    ):
        try:
            rel = services.add_reference_image(
                folder, character.id, upload.name, upload.getvalue(), kind
            )
        except services.StoryError as exc:
            st.error(md(exc))
            return
        flash(f"Stored {md(rel)}.")
        st.rerun()


def _thumbnail(path: Path, rel: str) -> None:
    """The image, or a warning when the stored file cannot be decoded."""
    image = services.reference_thumbnail(path)
    if image is None:
        st.warning(f"Cannot be shown (not a readable image): {md(rel)}; remove it")
    else:
        st.image(image, caption=Path(rel).name, width=120)


def _delete_button(kind: str, entity_id: str, delete: Callable[[str], None]) -> None:
    confirm = f"cast.confirm_delete.{kind}"
    if st.button(f"Delete {kind}", key=f"cast.delete.{kind}.{entity_id}"):
        st.session_state[confirm] = entity_id
    if st.session_state.get(confirm) != entity_id:
        return
    st.warning(f"Delete {md(entity_id)}? Scenes showing it lose it.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete", key=f"cast.delete_yes.{kind}.{entity_id}"):
        delete(entity_id)
        st.session_state.pop(confirm, None)
        flash(f"Deleted {kind} {md(entity_id)}.")
        st.rerun()
    if no.button("Keep it", key=f"cast.delete_no.{kind}.{entity_id}"):
        st.session_state.pop(confirm, None)
        st.rerun()


# Page ------------------------------------------------------------------------------


def _characters(folder: Path, story: Story) -> None:
    if not story.characters:
        st.caption("No characters yet: add the first one below.")
    for c in story.characters:
        refs = len(c.reference_images)
        with st.expander(f"{md(c.name)} · `{c.id}` · {refs} reference image(s)"):
            _editor(folder, story, CHARACTER, c)
            _references(folder, c)
            _delete_button(
                "character", c.id, lambda i: services.delete_character(folder, i)
            )
    st.markdown("**New character**")
    _editor(folder, story, CHARACTER, None)


def _environments(folder: Path, story: Story) -> None:
    if not story.environments:
        st.caption("No environments yet: add the first one below.")
    for e in story.environments:
        refs = len(e.reference_images)
        with st.expander(f"{md(e.name)} · `{e.id}` · {refs} reference image(s)"):
            _editor(folder, story, ENVIRONMENT, e)
            _references(folder, e, "environment")
            _delete_button(
                "environment", e.id, lambda i: services.delete_environment(folder, i)
            )
    st.markdown("**New environment**")
    _editor(folder, story, ENVIRONMENT, None)


def _forget(folder: Path, section: str, key: str) -> None:
    """Drop the editor values of a character or environment an undo wrote."""
    kind = {"characters": CHARACTER, "environments": ENVIRONMENT}.get(section)
    if kind is not None:
        forget_draft(kind.namespace, folder, key, kind.widget_key)


def cast_page() -> None:
    """Characters and environments of the open story."""
    folder = story_page("Cast")
    if folder is None:
        return
    history_bar(folder, "cast", lambda section, key: _forget(folder, section, key))
    story = services.story_view(folder).story
    chars, envs = st.tabs(
        [
            f"Characters ({len(story.characters)})",
            f"Environments ({len(story.environments)})",
        ]
    )
    with chars:
        _characters(folder, story)
    with envs:
        _environments(folder, story)
