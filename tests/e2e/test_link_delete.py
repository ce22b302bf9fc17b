"""Deleting a symbolic link from the Stories page, in a real browser.

The outputs root holds a link to a story kept elsewhere (a shortcut). The
Stories page lists it as a link; Delete asks to remove the link and says the
story it points to is kept; afterwards the link is gone and the story it
pointed to is whole, every file byte for byte (the studio once resolved the
link and deleted the story behind it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kg.example import example_story
from kg.store import save_story
from tests.e2e.conftest import Studio
from tests.e2e.helpers import expect, settled, shot

pytestmark = pytest.mark.e2e


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_deleting_a_link_removes_the_link_only(
    page,  # noqa: ANN001 - playwright Page
    studio: Studio,
    tmp_path: Path,
) -> None:
    kept = tmp_path / "elsewhere" / "kept"
    save_story(example_story("Kept elsewhere"), kept)
    take = kept / "scenes" / "arrival" / "take-1.mp4"
    take.parent.mkdir(parents=True)
    take.write_bytes(b"a take that must survive")
    before = _snapshot(kept)
    link = studio.outputs / "shortcut"
    os.symlink(kept, link)

    page.goto(studio.url)
    expect(page.get_by_role("heading", name="StoryGraph Studio")).to_be_visible()
    expect(page.get_by_text("Kept elsewhere").first).to_be_visible()
    expect(page.get_by_text("Link to").first).to_be_visible()
    page.locator(".st-key-stories-del-shortcut button").click()
    expect(page.get_by_text("Remove the link").first).to_be_visible()
    expect(page.get_by_text("is kept, with all its takes").first).to_be_visible()
    shot(page, "link-delete-confirm")
    page.locator(".st-key-stories-del_yes-shortcut button").click()
    expect(page.get_by_text("Removed the link shortcut").first).to_be_visible()
    settled(page)
    shot(page, "link-delete-done")

    assert not os.path.lexists(link)
    assert _snapshot(kept) == before
    page.reload()
    expect(page.get_by_role("heading", name="StoryGraph Studio")).to_be_visible()
    expect(page.get_by_text("Kept elsewhere")).to_have_count(0)
