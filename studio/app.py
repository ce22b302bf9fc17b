"""StoryGraph Studio entry point (routes only)."""

from __future__ import annotations

import streamlit as st

from studio.pages.stories import stories_page


def main() -> None:
    st.set_page_config(page_title="StoryGraph Studio", layout="wide")
    nav = st.navigation([st.Page(stories_page, title="Stories", url_path="stories")])
    nav.run()


if __name__ == "__main__":
    main()
