"""The everyday loop in a real browser: cancel during decode, the queue on every page.

The studio runs with a test backend (`tests.everyday_fakes.PhasedBackend`)
whose decode goes chunk by chunk through the shared `decode_in_chunks` and
holds its second chunk until the generation is cancelled, then until the
test drops a file in ``$STORYGRAPH_TEST_GATES``: so "decoding", Cancel and
"cancelling…" are each seen for sure, without timing guesses.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kg.store import load_story
from studio import services
from studio.testing import (
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    serve_command,
    wait_healthy,
)
from tests.e2e.helpers import (
    RESULTS,
    ROOT,
    UI_TIMEOUT_MS,
    click,
    expect,
    go,
    playwright,
    shot,
)

pytestmark = pytest.mark.e2e

SLUG = "loop"
APP = """
import sys
sys.path.insert(0, {root!r})
import tests.everyday_fakes  # arms the gates ($STORYGRAPH_TEST_ARM)
tests.everyday_fakes.install()  # the test backend
from studio.app import main
main()
"""


@pytest.fixture(scope="module")
def loop_studio(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, Path]]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing; run scripts/setup_browser.sh")
    outputs = tmp_path_factory.mktemp("outputs")
    gates = tmp_path_factory.mktemp("gates")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(services.OUTPUTS_ENV, str(outputs))
        from tests.everyday_fakes import example_story, install

        install(mp)

        folder = example_story(SLUG, title="Loop story")
    script = tmp_path_factory.mktemp("app") / "everyday_app.py"
    script.write_text(APP.format(root=str(ROOT)))
    env = {
        **os.environ,
        services.OUTPUTS_ENV: str(outputs),
        "HF_HUB_OFFLINE": "1",
        "STORYGRAPH_TEST_GATES": str(gates),
        "STORYGRAPH_TEST_ARM": "decode",
    }
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")  # noqa: SIM115
    port = free_port()
    proc = subprocess.Popen(
        serve_command(script, port), cwd=ROOT, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 60)
        yield url, folder, gates
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        (gates / "open-decode").touch()


@pytest.fixture(scope="module")
def loop_page(loop_studio) -> Iterator:  # noqa: ANN001 - its own server, not conftest's
    RESULTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        yield page
        browser.close()


def test_cancel_during_decode_discards_the_take(loop_page, loop_studio) -> None:  # noqa: ANN001
    page, (url, folder, gates) = loop_page, loop_studio
    page.goto(f"{url}/storyboard?story={SLUG}")
    expect(page.get_by_role("heading", name="Loop story")).to_be_visible()
    click(page, "Generate scene")
    expect(page.get_by_text("decoding · chunk 1/3").first).to_be_visible()
    click(page, "Cancel")
    expect(page.get_by_text("Cancelling arrival").first).to_be_visible()
    shot(page, "everyday-cancelling")
    (gates / "open-decode").touch()  # the held chunk ends; no other is decoded
    expect(page.get_by_role("button", name="Generate scene")).to_have_count(1)
    expect(page.get_by_text("Status: draft").first).to_be_visible()
    arrival = load_story(folder).scene("arrival")
    assert arrival.takes == [] and arrival.status == "draft"
    (gates / "open-decode").unlink()


def test_the_queue_shows_and_cancels_on_another_page(loop_page, loop_studio) -> None:  # noqa: ANN001
    page, (url, folder, gates) = loop_page, loop_studio
    page.goto(f"{url}/storyboard?story={SLUG}")
    click(page, "Generate scene")
    expect(page.get_by_text("decoding · chunk 1/3").first).to_be_visible()
    go(page, "Cast")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Queue · 1 scene(s)").first).to_be_visible()
    expect(sidebar.get_by_text("decode 1/3").first).to_be_visible()
    expect(sidebar.get_by_text("Loop story").first).to_be_visible()
    shot(page, "everyday-queue-on-cast")
    sidebar.get_by_role("button", name="Cancel this scene").click()
    expect(sidebar.get_by_text("cancelling…").first).to_be_visible()
    (gates / "open-decode").touch()
    expect(sidebar.get_by_text("Queue: nothing generating.").first).to_be_visible()
    arrival = load_story(folder).scene("arrival")
    assert arrival.takes == [] and arrival.status == "draft"
