"""The studio in a real browser against the real server.

Playwright drives Debian's Chromium (``/usr/bin/chromium``; nothing is
downloaded): open a page by its link on the fresh server, create the example
story, change the settings, edit a scene, generate two scenes with the
animatic backend, check that a clip plays (``readyState >= 2``,
``duration > 0``), reload and find the same state, and find a chart on
Insights. A screenshot of every page lands in ``test-results/e2e/``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect
expect.set_options(timeout=30_000)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
]
RESULTS = ROOT / "test-results" / "e2e"
GENERATE_TIMEOUT_MS = 240_000
UI_TIMEOUT_MS = 30_000
VIDEO_PLAYABLE = """
() => [...document.querySelectorAll('video')].some(
    v => v.readyState >= 2 && v.duration > 0)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # polling the port, not synchronising on time
    raise TimeoutError(f"the studio did not answer on {url} within {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing; run scripts/setup_browser.sh")
    outputs = tmp_path_factory.mktemp("outputs")
    port = _free_port()
    env = {**os.environ, "STORYGRAPH_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "studio" / "app.py"),
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--server.headless=true",
            "--browser.gatherUsageStats=false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, 60)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(server: str) -> Iterator:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        yield page
        browser.close()


def _settled(page) -> None:  # noqa: ANN001 - playwright Page
    """Wait until Streamlit finished the current run (no running indicator)."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)


def _shot(page, name: str) -> None:  # noqa: ANN001
    _settled(page)
    page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)


def _go(page, title: str, heading: str | None = None) -> None:  # noqa: ANN001
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    expect(
        page.get_by_role("heading", name=heading or title, exact=True).first
    ).to_be_visible()


def _click(page, name: str) -> None:  # noqa: ANN001
    """Click a button once a rerun has settled to a single copy of it."""
    button = page.get_by_role("button", name=name, exact=True)
    expect(button).to_have_count(1)
    button.click()


def _pick(page, label: str, option: str) -> None:  # noqa: ANN001
    box = page.get_by_role("combobox", name=label)
    expect(box).to_have_count(1)  # a rerun may briefly show the old one too
    box.click()
    page.get_by_role("option", name=option).first.click()
    _settled(page)


def test_story_from_creation_to_insights(page, server: str) -> None:  # noqa: ANN001
    # a link straight to a page works on a freshly started server
    page.goto(f"{server}/settings")
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    expect(page.get_by_text("No story is open")).to_be_visible()
    page.goto(server)
    expect(page.get_by_role("heading", name="StoryGraph Studio")).to_be_visible()
    # users get the studio, not Streamlit's developer toolbar (.streamlit/config.toml)
    expect(page.get_by_test_id("stAppDeployButton")).to_have_count(0)
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
    _shot(page, "1-stories")

    page.get_by_label("Title").fill("Browser story")
    page.get_by_text("Example story").click()
    _click(page, "Create story")
    heading = page.get_by_role("heading", name="Browser story")
    expect(heading).to_be_visible()

    # small clips keep the animatic quick
    _go(page, "Settings")
    for label, value in (("Width", "192"), ("Height", "128"), ("FPS", "8")):
        page.get_by_label(label, exact=True).fill(value)
    _click(page, "Save settings")
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    _shot(page, "5-settings")

    _go(page, "Storyboard", "Browser story")
    motion = page.get_by_label("Motion", exact=True)
    motion.fill("Mara jumps from the ferry onto the wet quay")
    motion.press("Enter")
    preview = page.locator("code").filter(has_text="Mara jumps from the ferry")
    expect(preview).to_be_visible()  # the prompt preview follows the typing
    _click(page, "Save scene")
    expect(page.get_by_text("Saved arrival.")).to_be_visible()

    _click(page, "Generate scene")
    expect(page.get_by_text("Take 1", exact=False).first).to_be_visible(
        timeout=GENERATE_TIMEOUT_MS
    )
    expect(page.get_by_role("button", name="Generate a new take")).to_have_count(1)
    _pick(page, "Scene", "The keeper waits (meeting)")
    expect(page.get_by_role("heading", name="Scene · meeting")).to_be_visible()
    _click(page, "Generate scene")
    expect(page.get_by_text("Takes of The keeper waits")).to_be_visible()
    expect(page.locator("video")).to_have_count(1, timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function(VIDEO_PLAYABLE, timeout=UI_TIMEOUT_MS)
    _shot(page, "2-storyboard")

    page.reload()
    expect(heading).to_be_visible()
    expect(page.get_by_label("Motion", exact=True)).to_have_value(
        "Mara jumps from the ferry onto the wet quay"
    )
    expect(page.locator("video")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    page.wait_for_function(VIDEO_PLAYABLE, timeout=UI_TIMEOUT_MS)
    _pick(page, "Scene", "The keeper waits (meeting)")
    expect(page.get_by_text("Status: done").first).to_be_visible()

    _go(page, "Cast")
    expect(page.get_by_text("Mara", exact=False).first).to_be_visible()
    _shot(page, "3-cast")

    _go(page, "Insights")
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts.first).to_be_visible()
    expect(charts.first.locator("canvas, svg").first).to_be_visible()
    _shot(page, "4-insights")
