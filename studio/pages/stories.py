"""Stories page: list the stories under the outputs root and create new ones."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from kg.example import blank_story, example_story
from kg.store import STATE_FILE, load_story, save_story


def outputs_root() -> Path:
    return Path(os.environ.get("STORYGRAPH_OUTPUTS", "story_outputs")).resolve()


def stories_page() -> None:
    st.title("StoryGraph Studio")
    root = outputs_root()
    st.caption(f"Stories in {root}")
    folders = sorted(p.parent for p in root.glob(f"*/{STATE_FILE}"))
    if not folders:
        st.info("No stories yet: create one below.")
    for folder in folders:
        try:
            story = load_story(folder)
            st.write(
                f"**{story.title}** · {len(story.scenes)} scenes · `{folder.name}`"
            )
        except Exception as exc:  # noqa: BLE001 - shown to the user
            st.error(f"{folder.name}: {exc}")
    with st.form("stories.new"):
        slug = st.text_input("Folder name", key="stories.slug")
        example = st.checkbox("Start from the example story", key="stories.example")
        if st.form_submit_button("Create"):
            target = root / slug
            if not slug or "/" in slug or slug.startswith("."):
                st.error("Folder name: use letters, digits, '-' or '_'.")
            elif (target / STATE_FILE).exists():
                st.error(f"Folder name: {slug!r} exists; choose another.")
            else:
                save_story(example_story() if example else blank_story(slug), target)
                st.success(f"Created {slug}")
                st.rerun()
