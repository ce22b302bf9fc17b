"""Cast page: characters and environments, with reference images.

Reference images are checked (PNG, JPEG or WebP, as the file name says, at
most 10 MB) and stored under ``references/<character>/`` in the story folder;
the story keeps their relative paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from kg.schema import WEATHERS, Character, Environment
from studio import services
from studio.session import current_story, flash, show_flashes

__all__ = ["cast_page"]

_NEW = "__new__"


def _problem_text(problems: list[tuple[str, str]]) -> str:
    return "Not saved; your values are kept. Fix:\n" + "\n".join(
        f"- **{field}**: {msg}" for field, msg in problems
    )


def _character_form(folder: Path, character: Character | None) -> None:
    key = f"cast.character.{character.id if character else _NEW}"
    c = character or Character(id="new-character", name="New character")
    with st.form(key):
        a, b = st.columns(2)
        cid = a.text_input(
            "Id",
            value=c.id if character else "",
            key=f"{key}.id",
            disabled=bool(character),
        )
        name = b.text_input(
            "Name", value=c.name if character else "", key=f"{key}.name"
        )
        description = st.text_area(
            "Description", value=c.description, key=f"{key}.description", height=68
        )
        attrs = st.text_input(
            "Visual attributes (comma separated)",
            value=", ".join(c.visual_attributes),
            key=f"{key}.attrs",
        )
        importance = st.number_input(
            "Importance", value=float(c.importance), step=0.25, key=f"{key}.importance"
        )
        go = st.form_submit_button("Save character" if character else "Add character")
    if not go:
        return
    data: dict[str, Any] = {
        "id": (character.id if character else cid.strip()),
        "name": name.strip(),
        "description": description.strip(),
        "visual_attributes": [a.strip() for a in attrs.split(",") if a.strip()],
        "reference_images": list(c.reference_images) if character else [],
        "importance": importance,
    }
    if not character and data["id"] in {x.id for x in _story(folder).characters}:
        st.error(f"**id**: a character {data['id']!r} exists; choose another id")
        return
    model, problems = services.validate_character(data)
    if model is None:
        st.error(_problem_text(problems))
        return
    services.save_character(folder, model)
    if character is None:
        _clear_form(key)
    flash(f"Saved character {model.name}.")
    st.rerun()


def _references(folder: Path, character: Character) -> None:
    images = [
        (rel, services.resolve_asset(folder, rel)) for rel in character.reference_images
    ]
    if images:
        cols = st.columns(min(4, len(images)))
        for i, (rel, path) in enumerate(images):
            with cols[i % len(cols)]:
                if path is None:
                    st.warning(f"missing: {rel}")
                else:
                    st.image(str(path), caption=Path(rel).name, width=120)
                if st.button("Remove", key=f"cast.ref.remove.{character.id}.{i}"):
                    services.remove_reference_image(folder, character.id, rel)
                    st.rerun()
    upload = st.file_uploader(
        "Add a reference image",
        type=["png", "jpg", "jpeg", "webp"],
        key=f"cast.ref.upload.{character.id}",
    )
    if upload is not None and st.button(
        "Store reference image", key=f"cast.ref.store.{character.id}"
    ):
        try:
            rel = services.add_reference_image(
                folder, character.id, upload.name, upload.getvalue()
            )
        except services.StoryError as exc:
            st.error(str(exc))
            return
        flash(f"Stored {rel}.")
        st.rerun()


def _delete_button(kind: str, entity_id: str, delete) -> None:  # noqa: ANN001
    confirm = f"cast.confirm_delete.{kind}"
    if st.button(f"Delete {kind}", key=f"cast.delete.{kind}.{entity_id}"):
        st.session_state[confirm] = entity_id
    if st.session_state.get(confirm) == entity_id:
        st.warning(f"Delete {entity_id}? Scenes showing it lose it.")
        if st.button("Yes, delete", key=f"cast.delete_yes.{kind}.{entity_id}"):
            delete(entity_id)
            st.session_state.pop(confirm, None)
            flash(f"Deleted {kind} {entity_id}.")
            st.rerun()


def _environment_form(folder: Path, env: Environment | None) -> None:
    key = f"cast.environment.{env.id if env else _NEW}"
    e = env or Environment(id="new-environment", name="New environment")
    with st.form(key):
        a, b = st.columns(2)
        eid = a.text_input(
            "Id", value=e.id if env else "", key=f"{key}.id", disabled=bool(env)
        )
        name = b.text_input("Name", value=e.name if env else "", key=f"{key}.name")
        description = st.text_area(
            "Description", value=e.description, key=f"{key}.description", height=68
        )
        a, b, c = st.columns(3)
        lighting = a.text_input("Lighting", value=e.lighting, key=f"{key}.lighting")
        weather = b.selectbox(
            "Default weather",
            list(WEATHERS),
            index=list(WEATHERS).index(e.default_weather),
            key=f"{key}.weather",
        )
        importance = c.number_input(
            "Importance", value=float(e.importance), step=0.25, key=f"{key}.importance"
        )
        go = st.form_submit_button("Save environment" if env else "Add environment")
    if not go:
        return
    data = {
        "id": env.id if env else eid.strip(),
        "name": name.strip(),
        "description": description.strip(),
        "lighting": lighting.strip(),
        "default_weather": weather,
        "importance": importance,
    }
    if not env and data["id"] in {x.id for x in _story(folder).environments}:
        st.error(f"**id**: an environment {data['id']!r} exists; choose another id")
        return
    model, problems = services.validate_environment(data)
    if model is None:
        st.error(_problem_text(problems))
        return
    services.save_environment(folder, model)
    if env is None:
        _clear_form(key)
    flash(f"Saved environment {model.name}.")
    st.rerun()


def _clear_form(key: str) -> None:
    """Empty the "new" form once what it held is saved."""
    for k in [k for k in st.session_state if str(k).startswith(f"{key}.")]:
        del st.session_state[k]


def _story(folder: Path) -> Any:
    return services.story_view(folder).story


def _characters(folder: Path) -> None:
    story = _story(folder)
    for c in story.characters:
        with st.expander(f"{c.name} · `{c.id}` · {len(c.reference_images)} references"):
            _character_form(folder, c)
            _references(folder, c)
            _delete_button(
                "character", c.id, lambda i: services.delete_character(folder, i)
            )
    st.markdown("**New character**")
    _character_form(folder, None)


def _environments(folder: Path) -> None:
    story = _story(folder)
    for e in story.environments:
        with st.expander(f"{e.name} · `{e.id}`"):
            _environment_form(folder, e)
            _delete_button(
                "environment", e.id, lambda i: services.delete_environment(folder, i)
            )
    st.markdown("**New environment**")
    _environment_form(folder, None)


def cast_page() -> None:
    """Characters and environments of the open story."""
    st.title("Cast")
    folder = current_story()
    if folder is None:
        st.info("No story is open: create or open one on the Stories page.")
        return
    show_flashes()
    chars, envs = st.tabs(["Characters", "Environments"])
    with chars:
        _characters(folder)
    with envs:
        _environments(folder)
