"""A provider that echoes the API key: the key never reaches the story file,
the log or the screen (issue 24, class "keys in the story file").

Each variant runs the real ``storygraph run`` (typer's CliRunner) against
the local fake of Replicate's API (tests/hosted_fakes.py) through the
official client, and checks the key is absent from ``kg_state.json``, from
every log record (at DEBUG, the HTTP client's included) and from what the
command printed, while the failure is still named.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.redaction import outside_text, redact
from engine.video import write_video
from kg.example import example_story
from kg.store import load_story, save_story
from studio.cli import app
from tests.hosted_fakes import Answer, FakeReplicate, Script

KEY = "r8_Echo0Secret:Token/0123456789"  # quote() spells it otherwise
OTHER_TOKEN = "sk-live-0123456789abcdefABCDEF"  # a bearer token that is not the key
CREATE = "/v1/models/lightricks/ltx-video/predictions"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("out") / "out.mp4"
    write_video(path, np.zeros((24, 64, 64, 3), np.uint8), 24)
    return path.read_bytes()


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", KEY)


def _story(folder: Path) -> Path:
    story = example_story()
    s = story.settings
    s.backend, s.model, s.width, s.height, s.fps = (
        "replicate", "lightricks/ltx-video", 64, 64, 24,
    )  # fmt: skip
    for scene in story.scenes:
        scene.duration_s = 17 / 24
    save_story(story, folder)
    return folder


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


def _error_body(method: str, path: str, headers: dict[str, str]) -> Answer | None:
    """A 401 whose body and headers quote the Authorization header it got."""
    if method != "POST" or path != CREATE:
        return None
    sent = headers.get("Authorization", "")
    return (
        401,
        {"WWW-Authenticate": f'Bearer realm="r8", token="{KEY}"', "X-Echo": sent},
        _json({"title": "Unauthenticated", "status": 401,
               "detail": f"invalid token {KEY}; you sent Authorization: {sent}"}),
    )  # fmt: skip


def _client_exception(method: str, path: str, headers: dict[str, str]) -> Answer | None:
    """A prediction the official client cannot read: its validation error
    quotes the values, the key among them (an unforeseen exception)."""
    if method != "POST" or path != CREATE:
        return None
    sent = headers.get("Authorization", "").split()[-1]
    return 201, {}, _json({"id": ["p1"], "status": {"echo": sent}, "model": 3})


def _other_credentials(
    method: str, path: str, headers: dict[str, str]
) -> Answer | None:
    """A 400 quoting the key URL-encoded, a bearer token that is not the key,
    a form with an api_key, and megabytes of HTML with control characters."""
    if method != "POST" or path != CREATE:
        return None
    detail = (
        f"bad request from ?key={quote(KEY, safe='')}&x=1 with Bearer {OTHER_TOKEN} "
        f"api_key={OTHER_TOKEN} \x1b[31m<html>{'<p>x</p>' * 400_000}</html>"
    )
    return 400, {}, _json({"detail": detail})


def _redirect(other: str) -> Callable[[str, str, dict[str, str]], Answer | None]:
    """The output redirects to another host, the key in the URL."""

    def hook(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if method == "GET" and path.startswith("/files/"):
            target = f"{other}/steal.mp4?token={KEY}&sig={quote(KEY)}"
            return 302, {"Location": target}, b""
        return None

    return hook


VARIANTS = {
    "json error body and headers": (
        lambda other: Script(hook=_error_body),
        "HTTP 401: Unauthenticated",
    ),
    "the job's own error": (
        lambda other: Script(
            states=["failed"],
            error=f"worker crashed: REPLICATE_API_TOKEN={KEY}, "
            f"header Authorization: Bearer {KEY}",
        ),
        "worker crashed",
    ),
    "an exception of the client": (
        lambda other: Script(hook=_client_exception),
        "ValidationError",
    ),
    "url-encoded key and other tokens": (
        lambda other: Script(hook=_other_credentials),
        "HTTP 400",
    ),
    "a redirect URL": (
        lambda other: Script(states=["succeeded"], hook=_redirect(other)),
        "redirects to another host",
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_an_echoed_key_reaches_neither_the_story_nor_the_log_nor_the_screen(
    variant: str,
    tmp_path: Path,
    clip: bytes,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = _story(tmp_path / "story")
    make, says = VARIANTS[variant]
    elsewhere = Script(output=clip)
    with (
        FakeReplicate(elsewhere) as other,
        FakeReplicate(make(other.url)) as fake,
        caplog.at_level(logging.DEBUG),
    ):
        fake.script.output = clip
        monkeypatch.setenv("REPLICATE_BASE_URL", fake.url)
        result = CliRunner().invoke(
            app, ["run", str(folder), "--scenes", "arrival", "--no-score"]
        )
    assert result.exit_code == 1, result.output
    shown = result.output + result.stderr
    state = (folder / "kg_state.json").read_text()
    error = load_story(folder).scene("arrival").takes[-1].error or ""
    assert says in error, error  # the failure is still named
    for text in (state, shown, shown.replace("\n", ""), caplog.text):
        assert KEY not in text and quote(KEY, safe="") not in text
        assert OTHER_TOKEN not in text
    assert elsewhere.calls == []  # nothing fetched from the other host
    assert len(error) <= 1100 and "\x1b" not in error and "<p>x</p>" * 200 not in error
    assert all(r.exc_info is None for r in caplog.records)  # tracebacks redacted


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"Authorization: Key {KEY[:8]}:{'ab' * 16}", "Authorization: Key"),
        ('{"access_token": "abc.def.ghi", "ok": 1}', '"ok": 1'),
        ("https://user:hunter22@cdn.example/x.mp4", "cdn.example/x.mp4"),
        (f"token {KEY} in prose", "in prose"),
    ],
)
def test_credential_shapes_are_redacted(text: str, kept: str) -> None:
    out = redact(text)
    assert kept in out and "[redacted]" in out
    assert not re.search(r"hunter22|abc\.def\.ghi|abababab|Echo0Secret", out)


def test_outside_text_is_bounded_and_plain() -> None:
    body = b"\x00\x1b[2J" + "é a\u2028b".encode() + b"\xff" * 10 + b"z" * 10**6
    out = outside_text(body, 200)
    assert len(out) == 200 and out.endswith("…")
    assert not re.search(r"[\x00-\x1f\x7f]", out)
