"""Stories page: new stories from a Fountain screenplay or from a logline.

"New from script" reads an uploaded screenplay (`kg.fountain`) into a new
story folder and lists what had no place in it; a file that cannot be read
is named with its line. "New from logline" asks the drafting model
(`engine.drafting`) for a story, shows it, and creates it only when asked.
"""

from __future__ import annotations

import streamlit as st

from kg.errors import StoryError
from kg.settings import DraftingSettings
from studio import drafting_services as drafting
from studio.library import slugify
from studio.literal import markdown_literal as md
from studio.session import current_story, flash, open_story

__all__ = ["script_forms", "DRAFT_KEY"]

DRAFT_KEY = "stories.logline.draft"


def _script_form() -> None:
    with st.form("stories.script", clear_on_submit=False):
        st.subheader("New from script")
        upload = st.file_uploader(
            "Fountain screenplay",
            type=["fountain", "spmd", "txt"],
            key="stories.script.file",
            help="Scene headings become environments, character cues characters, "
            "dialogue and parentheticals dialogue lines, action motion, "
            "transitions cuts or continuous joins.",
        )
        slug = st.text_input("Folder name", key="stories.script.slug")
        go = st.form_submit_button("Create from script")
    if not go:
        return
    if upload is None:
        st.error("Fountain screenplay: choose a .fountain file.")
        return
    slug = slug.strip() or slugify(upload.name.rsplit(".", 1)[0])
    try:
        folder, result = drafting.import_script(slug, upload.getvalue(), upload.name)
    except (StoryError, ValueError) as exc:
        st.error(md(exc))
        return
    open_story(folder)
    story = result.story
    flash(
        f"Created {folder.name} from {md(upload.name)}: {len(story.scenes)} scenes, "
        f"{len(story.characters)} characters, {len(story.environments)} environments."
    )
    if result.unplaced:
        flash(
            f"Not placed in the story ({len(result.unplaced)}): "
            + md("; ".join(str(u) for u in result.unplaced[:30])),
            "warning",
        )
    st.rerun()


def _logline_form() -> None:
    defaults = DraftingSettings()
    with st.form("stories.logline"):
        st.subheader("New from logline")
        logline = st.text_area("Logline", key="stories.logline.text", height=80)
        endpoint = st.text_input(
            "Model endpoint",
            value=defaults.endpoint,
            key="stories.logline.endpoint",
            help="An OpenAI-compatible chat endpoint (llama.cpp, Ollama, vLLM, LM "
            "Studio or a provider); the key comes from OPENAI_API_KEY.",
        )
        model = st.text_input("Model", key="stories.logline.model")
        go = st.form_submit_button("Draft a story")
    if go:
        try:
            settings = DraftingSettings(endpoint=endpoint, model=model.strip())
            st.session_state[DRAFT_KEY] = drafting.logline_draft(logline, settings)
        except drafting.DRAFTING_ERRORS as exc:
            st.error(f"No story was drafted: {md(exc)}")
        except StoryError as exc:
            st.error(md(exc))
    draft = st.session_state.get(DRAFT_KEY)
    if draft is not None:
        _draft_preview(draft)


def _draft_preview(draft: drafting.StoryDraft) -> None:
    story = draft.story
    with st.container(border=True):
        st.markdown(f"**{md(story.title)}**")
        st.text(story.description)
        st.caption(
            "Characters: "
            + md(", ".join(c.name for c in story.characters))
            + " · Environments: "
            + md(", ".join(e.name for e in story.environments))
        )
        for n, scene in enumerate(story.scenes, 1):
            st.text(f"{n}. {scene.title}: {scene.motion}")
        cost = draft.call.cost
        st.caption(
            f"{draft.call.prompt_tokens:,} + {draft.call.completion_tokens:,} tokens"
            + (f", ${cost.usd:.4f}" if cost else "")
        )
        slug = st.text_input(
            "Folder name", value=slugify(story.title), key="stories.logline.slug"
        )
        a, b = st.columns(2)
        if a.button("Create this story", key="stories.logline.create", type="primary"):
            try:
                folder = drafting.create_drafted_story(slug.strip(), story)
            except (ValueError, StoryError) as exc:
                st.error(md(exc))
                return
            st.session_state.pop(DRAFT_KEY, None)
            open_story(folder)
            flash(f"Created {folder.name} from the logline.")
            st.rerun()
        if b.button("Discard", key="stories.logline.discard"):
            st.session_state.pop(DRAFT_KEY, None)
            st.rerun()


def _download(folder) -> None:  # noqa: ANN001 - Path
    """The open story as a Fountain screenplay, for the writer's own tool."""
    try:
        text = drafting.script_text(folder)
    except (StoryError, KeyError) as exc:
        st.caption(f"This story cannot be written as Fountain: {md(exc)}")
        return
    st.download_button(
        "Download the open story as Fountain",
        data=text.encode("utf-8"),
        file_name=f"{folder.name}.fountain",
        mime="text/plain",
        key="stories.script.download",
        help="Import it again (New from script) and you get the same story.",
    )


def script_forms() -> None:
    """The two forms side by side, and the open story as a screenplay."""
    left, right = st.columns(2)
    with left:
        _script_form()
        folder = current_story()
        if folder is not None:
            _download(folder)
    with right:
        _logline_form()
