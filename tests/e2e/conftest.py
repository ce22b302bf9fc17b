"""Browser-test fixtures: the real studio server and Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RESULTS,
    ROOT,
    UI_TIMEOUT_MS,
    free_port,
    playwright,
    wait_healthy,
)


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
