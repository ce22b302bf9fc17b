"""Browser-test fixtures: the real studio server and Chromium."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from studio.testing import (
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    serve_command,
    wait_healthy,
)
from tests.e2e.helpers import RESULTS, ROOT, UI_TIMEOUT_MS, playwright


@dataclass(frozen=True)
class Studio:
    url: str
    outputs: Path


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing; run scripts/setup_browser.sh")
    outputs = tmp_path_factory.mktemp("outputs")
    port = free_port()
    env = {**os.environ, "STORYGRAPH_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        serve_command(ROOT / "studio" / "app.py", port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 60)
        yield Studio(url, outputs)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server(studio: Studio) -> str:
    return studio.url


@pytest.fixture(scope="module")
def page(server: str) -> Iterator:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        yield page
        browser.close()
