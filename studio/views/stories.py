"""Stories page: create, open, import, duplicate and delete story folders."""

from __future__ import annotations

import streamlit as st

from kg.fields import MAX_STORY_TITLE
from studio import services
from studio.components.script_import import script_forms
from studio.literal import markdown_code as code
from studio.literal import markdown_literal as md
from studio.session import current_story, flash, open_story, show_flashes

__all__ = ["stories_page"]

_CONFIRM_KEY = "stories.confirm_delete"


def _story_list(open_folder: str | None) -> None:
    entries = services.list_stories()
    if not entries:
        st.info("No stories yet: create one below, or import a kg_state.json.")
        return
    for entry in entries:
        with st.container(border=True):
            left, right = st.columns([4, 3])
            is_open = open_folder is not None and entry.slug == open_folder
            if entry.error:
                left.markdown(f"**{md(entry.slug)}** · cannot be opened")
                left.error(md(entry.error))
            else:
                mark = " · *open*" if is_open else ""
                left.markdown(f"**{md(entry.title)}**{mark}")
                left.caption(
                    f"`{entry.slug}` · {entry.scenes} scenes · "
                    f"{entry.generated} generated · revision {entry.revision}"
                )
            if entry.link is not None:
                left.caption(f"Link to {code(entry.link)}")
            _story_actions(right, entry, is_open)


def _story_actions(col: st.delta_generator.DeltaGenerator, entry, is_open) -> None:  # noqa: ANN001
    a, b, c = col.columns(3)
    if not entry.error and a.button(
        "Open", key=f"stories.open.{entry.slug}", disabled=is_open
    ):
        open_story(entry.path)
        flash(f"Opened {md(entry.title)}.")
        st.switch_page(_storyboard_page())
    if not entry.error and b.button("Duplicate", key=f"stories.dup.{entry.slug}"):
        st.session_state["stories.duplicate_from"] = entry.slug
    if c.button("Delete", key=f"stories.del.{entry.slug}"):
        st.session_state[_CONFIRM_KEY] = entry.slug
    if st.session_state.get("stories.duplicate_from") == entry.slug:
        _duplicate_form(entry)
    if st.session_state.get(_CONFIRM_KEY) == entry.slug:
        _confirm_delete(entry)


def _storyboard_page() -> st.Page:
    """The navigation's Storyboard page (same function and url path match it)."""
    from studio.views.storyboard import URL_PATH, storyboard_page

    return st.Page(storyboard_page, url_path=URL_PATH)


def _duplicate_form(entry) -> None:  # noqa: ANN001 - services.StoryEntry
    with st.form(f"stories.duplicate.{entry.slug}"):
        slug = st.text_input(
            "Folder of the copy",
            value=f"{entry.slug}-copy",
            key=f"stories.duplicate.{entry.slug}.slug",
        )
        go = st.form_submit_button("Duplicate")
    if go:
        problem = services.check_slug(slug)
        if problem:
            st.error(md(problem))
            return
        try:
            copy = services.duplicate_story(entry.path, slug)
        except (services.StoryError, OSError) as exc:
            st.error(
                f"{md(entry.slug)} could not be duplicated (no partial copy "
                f"was kept): {md(exc)}"
            )
            return
        st.session_state.pop("stories.duplicate_from", None)
        flash(f"Duplicated {entry.slug} as {copy.folder.name}.")
        if copy.left_out:
            flash(
                f"Not copied ({len(copy.left_out)}): "
                + md("; ".join(copy.left_out[:20]))
                + ". Links are never followed, and FIFOs, sockets and devices "
                "hold nothing to copy.",
                "warning",
            )
        st.rerun()


def _confirm_delete(entry) -> None:  # noqa: ANN001 - services.StoryEntry
    if entry.link is not None:
        st.warning(
            f"Remove the link {code(entry.slug)}? The story it points to "
            f"({code(entry.link)}) is kept, with all its takes."
        )
    else:
        st.warning(
            f"Delete **{md(entry.title)}** (`{entry.slug}`) with all its takes? "
            "This cannot be undone."
        )
    yes, no = st.columns(2)
    label = "Yes, remove the link" if entry.link is not None else "Yes, delete it"
    if yes.button(label, key=f"stories.del_yes.{entry.slug}", type="primary"):
        try:
            target = services.delete_story(entry.path)
        except (services.StoryError, OSError) as exc:
            st.error(f"{md(entry.slug)} was not deleted: {md(exc)}")
            return
        if current_story() is None or current_story() == entry.path:
            open_story(None)
        st.session_state.pop(_CONFIRM_KEY, None)
        if target is None:
            flash(f"Deleted {md(entry.slug)}.")
        else:
            flash(
                f"Removed the link {md(entry.slug)}; the story it points to "
                f"({md(target)}) is kept."
            )
        st.rerun()
    if no.button("Keep it", key=f"stories.del_no.{entry.slug}"):
        st.session_state.pop(_CONFIRM_KEY, None)
        st.rerun()


def _create_form() -> None:
    with st.form("stories.create"):
        st.subheader("New story")
        title = st.text_input(
            "Title", key="stories.create.title", max_chars=MAX_STORY_TITLE
        )
        slug = st.text_input(
            "Folder name",
            key="stories.create.slug",
            help="Left empty, it is made from the title.",
        )
        kind = st.radio(
            "Start from",
            ["Blank story", "Example story"],
            horizontal=True,
            key="stories.create.kind",
        )
        go = st.form_submit_button("Create story", type="primary")
    if not go:
        return
    example = kind == "Example story"
    slug = slug.strip() or services.slugify(
        title or ("example" if example else "story")
    )
    problem = services.check_slug(slug)
    if problem:
        st.error(md(problem))
        return
    try:
        folder = services.create_story(slug, title, example=example)
    except services.StoryValidationError as exc:
        st.error(_problem_lines("The story cannot be created", exc))
        return
    open_story(folder)
    flash(f"Created {folder.name}.")
    st.switch_page(_storyboard_page())


def _import_form() -> None:
    with st.form("stories.import", clear_on_submit=False):
        st.subheader("Import a kg_state.json")
        upload = st.file_uploader(
            "Story file", type=["json"], key="stories.import.file"
        )
        slug = st.text_input("Folder name", key="stories.import.slug")
        go = st.form_submit_button("Import")
    if not go:
        return
    if upload is None:
        st.error("Story file: choose a kg_state.json to import.")
        return
    slug = slug.strip() or services.slugify(upload.name.removesuffix(".json"))
    problem = services.check_slug(slug)
    if problem:
        st.error(md(problem))
        return
    try:
        folder = services.import_story(slug, upload.getvalue(), upload.name)
    except services.StoryValidationError as exc:
        st.error(_problem_lines(f"{md(upload.name)} is not a valid story", exc))
        return
    open_story(folder)
    flash(f"Imported {md(upload.name)} as {folder.name}.")
    st.rerun()


def _problem_lines(head: str, exc: services.StoryValidationError) -> str:
    lines = "\n".join(f"- {code(path)}: {md(msg)}" for path, msg in exc.problems)
    return f"{head}:\n{lines}"


def stories_page() -> None:
    """Every story under the outputs root, and the forms that make new ones."""
    st.title("StoryGraph Studio")
    show_flashes()
    folder = current_story()
    st.caption(f"Stories in {md(services.outputs_root())}")
    _story_list(folder.name if folder else None)
    left, right = st.columns(2)
    with left:
        _create_form()
    with right:
        _import_form()
    script_forms()
