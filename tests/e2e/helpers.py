"""Browser-test helpers: Chromium's path and flags, waits and clicks."""

from __future__ import annotations

from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect
# generous: a busy 2-core machine can take a while to finish a rerun
expect.set_options(timeout=60_000)

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results" / "e2e"
GENERATE_TIMEOUT_MS = 240_000
UI_TIMEOUT_MS = 30_000
VIDEO_PLAYABLE = """
() => [...document.querySelectorAll('video')].some(
    v => v.readyState >= 2 && v.duration > 0)
"""


def settled(page) -> None:  # noqa: ANN001 - playwright Page
    """Wait until Streamlit finished the current run (no running indicator)."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)


def shot(page, name: str) -> None:  # noqa: ANN001
    settled(page)
    page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)


def go(page, title: str, heading: str | None = None) -> None:  # noqa: ANN001
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    expect(
        page.get_by_role("heading", name=heading or title, exact=True).first
    ).to_be_visible()


def click(page, name: str) -> None:  # noqa: ANN001
    """Click a button once a rerun has settled to a single copy of it."""
    button = page.get_by_role("button", name=name, exact=True)
    expect(button).to_have_count(1)
    button.click()


def pick(page, label: str, option: str) -> None:  # noqa: ANN001
    box = page.get_by_role("combobox", name=label)
    expect(box).to_have_count(1)  # a rerun may briefly show the old one too
    box.click()
    page.get_by_role("option", name=option).first.click()
    settled(page)
