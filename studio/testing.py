"""Streamlit AppTest harness for the studio's pages (tests and benchmarks).

`page_test` runs one page function as a script with a story already open,
the way the navigation would, so a test or a benchmark drives one page
without the router.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streamlit.testing.v1 import AppTest

from studio.session import STORY_KEY

__all__ = [
    "PAGES",
    "page_test",
    "app_test",
    "shown_text",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "free_port",
    "serve_command",
    "wait_healthy",
]

# Debian's Chromium, as the browser tests and the studio bench drive it
# (Playwright never downloads a browser of its own here).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
]

PAGES = ("stories", "storyboard", "cast", "screening", "insights", "settings")
APP_FILE = Path(__file__).with_name("app.py")


def _page_script(page: str) -> None:
    import importlib

    module = importlib.import_module(f"studio.views.{page}")
    getattr(module, f"{page}_page")()


def page_test(
    page: str, story_dir: Path | None = None, *, timeout: float = 60
) -> AppTest:
    """An AppTest of one page (not yet run), with ``story_dir`` open."""
    assert page in PAGES, f"unknown page {page!r}; one of {PAGES}"
    at = AppTest.from_function(_page_script, args=(page,), default_timeout=timeout)
    if story_dir is not None:
        at.session_state[STORY_KEY] = str(story_dir)
    return at


def app_test(*, timeout: float = 60) -> AppTest:
    """An AppTest of the whole app, navigation included (not yet run)."""
    return AppTest.from_file(str(APP_FILE), default_timeout=timeout)


def shown_text(at: AppTest) -> str:
    """The text of every notice, Markdown block and caption, as a reader sees it.

    AppTest reports Markdown source; user text in it is backslash-escaped
    (`studio.literal.markdown_literal`), so the escapes are removed here, and
    so are the invisible word joiners that keep bare URLs from being linked.
    """
    kinds = ("error", "warning", "success", "info", "markdown", "caption")
    source = "\n".join(str(e.value) for k in kinds for e in getattr(at, k))
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", source).replace("\u2060", "")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(script: Path, port: int, *extra: str) -> list[str]:
    """``streamlit run`` of ``script`` on 127.0.0.1:``port``, headless, behind
    the studio's host and framing guard (`studio.serve`)."""
    return [
        sys.executable,
        "-m",
        "studio.serve",
        str(script),
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        *extra,
    ]


def wait_healthy(
    url: str, proc: subprocess.Popen, timeout: float, poll: float = 0.2
) -> None:
    """Poll the server's health endpoint until it answers (or fail clearly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(poll)  # polling the port, not synchronising on time
    raise TimeoutError(f"the studio did not answer on {url} within {timeout} s")
