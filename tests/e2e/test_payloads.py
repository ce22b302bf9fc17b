"""Script and markup payloads in every user-text field, on every page.

A story is generated, then every text a user can write (story, characters,
environments, scenes, reference paths) and every text the program stores from
elsewhere (take errors, notes, reasons a score is missing) is set to a
payload that would, if the studio rendered it as HTML or Markdown, run script
or make the browser fetch from a canary server on 127.0.0.1. Every page is
visited in a real Chromium (the Storyboard's graph component included); the
canary must see no request, no dialog may open and no page or frame may have
the ``__xss`` mark set. The server must also refuse a WebSocket addressed by
an unknown Host name (DNS rebinding).
"""

from __future__ import annotations

import base64
import http.server
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Studio
from tests.e2e.helpers import expect, settled, shot

pytestmark = pytest.mark.e2e


class _Canary(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def canary() -> Iterator[tuple[str, list[str]]]:
    _Canary.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canary)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Canary.hits
    server.shutdown()


def payloads(base: str, tag: str, limit: int) -> str:
    """A payload for one field, within the field's length limit."""
    kinds = [  # as many as fit, the shortest ways to fetch first
        f"![p]({base}/{tag}.png)",
        f"<img src=x onerror=\"top.__xss=1;fetch('{base}/{tag}')\">",
        f"<script>top.__xss=1</script><iframe src={base}/{tag}f>",
        f"[a]({base}/{tag}l) :red[**{tag}**] $x^2$ <b>{tag}</b>",
    ]
    text = kinds[0]
    for kind in kinds[1:]:
        if len(text) + 1 + len(kind) <= limit:
            text += " " + kind
    assert len(text) <= limit, "make the canary URL shorter"
    return text


def _hostile_story(story_dir: Path, base: str) -> None:
    from kg.store import load_story, save_story
    from tests.conftest import generate_small_example

    generate_small_example(story_dir)
    story = load_story(story_dir)
    n = iter(range(1000))

    def p(limit: int = 400) -> str:
        return payloads(base, f"f{next(n)}", limit)

    story.title = p(200)
    story.description = p()
    for c in story.characters:
        c.name, c.description = p(80), p()
        c.visual_attributes = [p(), p()]
    for e in story.environments:
        e.name, e.description, e.lighting = p(80), p(), p()
    for s in story.scenes:
        s.title, s.pose, s.motion, s.lighting = p(120), p(), p(), p()
        s.negative_prompt = p()
        for take in s.takes:
            take.params.continuity_note = p()
            if take.scores is not None:
                take.scores.unavailable["clip_score"] = p()
    story.scenes[1].prompt_override = p()
    failed = story.scenes[2].takes[-1] if story.scenes[2].takes else None
    if failed is not None:
        failed.error = p()
    story.scenes[3].status = "failed"
    story.characters[0].reference_images = ["references/" + "x%3Cimg%3E.png"]
    save_story(story, story_dir)


def test_no_payload_runs_or_fetches_on_any_page(
    studio: Studio,
    page,
    canary: tuple[str, list[str]],  # noqa: ANN001
) -> None:
    base, hits = canary
    folder = studio.outputs / "hostile"
    _hostile_story(folder, base)
    (studio.outputs / ".studio-last-story").write_text("hostile")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(studio.url)
    settled(page)
    expect(page.get_by_text("onerror", exact=False).first).to_be_visible()
    shot(page, "payload-stories")
    for title in ("Storyboard", "Cast", "Insights", "Export", "Settings"):
        link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=title)
        link.click()
        settled(page)
        if title == "Storyboard":
            # the graph component rendered (its iframe is where titles go)
            frame = page.frame_locator("iframe").first
            expect(frame.locator("canvas").first).to_be_visible()
        if title == "Cast":
            for tab in page.get_by_role("tab").all():
                tab.click()
                for expander in page.get_by_test_id("stExpander").all():
                    if expander.is_visible():
                        expander.locator("summary").click()
                settled(page)
                shot(page, f"payload-cast-{tab.inner_text()[:4].lower()}")
        shot(page, f"payload-{title.lower()}")
    go_storyboard_scenes(page)
    marked = page.evaluate(
        "() => [window, ...[...document.querySelectorAll('iframe')]"
        ".map(f => { try { return f.contentWindow } catch (e) { return null } })]"
        ".filter(w => w && w.__xss).length"
    )
    assert marked == 0, "a payload ran script"
    assert not dialogs, dialogs
    assert hits == [], f"the browser fetched payload URLs: {hits}"


def go_storyboard_scenes(page) -> None:  # noqa: ANN001
    """Open the Storyboard and show a scene with a failed take too."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Storyboard").click()
    settled(page)
    box = page.get_by_role("combobox", name="Scene")
    box.click()
    page.get_by_role("option").nth(3).click()
    settled(page)
    shot(page, "payload-storyboard-failed-scene")


def test_websocket_refuses_unknown_host_names(studio: Studio) -> None:
    port = int(studio.url.rsplit(":", 1)[1])

    def upgrade(host: str) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(
                (
                    f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                    f"Origin: http://{host}\r\n\r\n"
                ).encode()
            )
            return s.recv(100).split(b"\r\n")[0]

    assert b" 101 " in upgrade(f"127.0.0.1:{port}")
    assert b" 101 " in upgrade(f"localhost:{port}")
    assert b" 403 " in upgrade(f"rebound.example:{port}")
