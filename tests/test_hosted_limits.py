"""Hosted jobs within bounds (issue 24): redirects stay on their host, outputs
are streamed and decoded within the story's size, one deadline covers the
whole job, cancel and Ctrl-C end every wait at once, and handled failures
log no traceback. Against the local fakes of the providers
(tests/hosted_fakes.py); a stall is a handler that blocks until the test
releases it, never a sleep in the test."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

import engine.backends.hosted.client as hosted
from engine.backend import CancelToken, GenerationCancelled, GenerationRequest
from engine.backends.hosted.client import (
    HostedError,
    HostedRedirectError,
    HostedTimeoutError,
)
from engine.backends.hosted.fal import FalBackend
from engine.backends.hosted.replicate import ReplicateBackend
from engine.generate import generate_scene
from engine.video import write_video
from kg.example import example_story
from kg.schema import HostedSettings
from kg.store import save_story
from tests.hosted_fakes import Answer, FakeReplicate, Script, fal_transport

KEY = "r8_limits_test_token_123"
POLL = "/v1/predictions/p1"
CREATE = "/v1/models/lightricks/ltx-video/predictions"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("out") / "out.mp4"
    write_video(path, np.zeros((24, 96, 160, 3), np.uint8), 24)
    return path.read_bytes()


def _ffmpeg_clip(folder: Path, name: str, size: str, seconds: float) -> bytes:
    """A black H.264 clip made by ffmpeg itself (tiny however large it claims)."""
    import subprocess

    path = folder / name
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
         "-y", "-f", "lavfi", "-i", f"color=c=black:s={size}:d={seconds}:r=24",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", KEY)
    monkeypatch.setenv("FAL_KEY", KEY)


def _request(timeout_s: float = 900, **kw) -> GenerationRequest:  # noqa: ANN003
    # below the schema's 10 s minimum on purpose: a deadline a test can wait for
    hosted_settings = HostedSettings(max_retries=2).model_copy(
        update={"timeout_s": timeout_s}
    )
    base = dict(prompt="a lighthouse at dusk", width=64, height=64, num_frames=17,
                fps=24, seed=7, steps=20, guidance=3.0,
                hosted=hosted_settings)  # fmt: skip
    return GenerationRequest(**{**base, **kw})


def _run(backend, request, cancel=None, progress=None):  # noqa: ANN001, ANN202
    return backend.generate(
        request, progress or (lambda *a: None), cancel or CancelToken()
    )


def _quick(fake: FakeReplicate) -> ReplicateBackend:
    return ReplicateBackend(base_url=fake.url, sleep=lambda s: None)


# Redirects -------------------------------------------------------------------------


def _redirects(paths: dict[str, str]):  # noqa: ANN202
    def hook(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if method == "GET" and path in paths:
            return 302, {"Location": paths[path]}, b""
        return None

    return hook


def test_redirects_are_followed_only_within_the_outputs_host(clip: bytes) -> None:
    # same host, twice: followed
    chain = {"/files/out.mp4": "/files/a.mp4", "/files/a.mp4": "/files/out2.mp4"}
    script = Script(output=clip, hook=_redirects(chain))
    with FakeReplicate(script) as fake:
        out = _run(_quick(fake), _request())
    assert out.frames.shape == (17, 64, 64, 3)
    assert ("GET", "/files/out2.mp4") in script.calls

    # another host (another port is another origin): refused, nothing fetched
    elsewhere = Script(output=clip)
    with FakeReplicate(elsewhere) as other:
        away = {"/files/out.mp4": f"{other.url}/files/out.mp4?token=t0k3n"}
        with (
            FakeReplicate(Script(output=clip, hook=_redirects(away))) as fake,
            pytest.raises(HostedRedirectError, match="redirects to another host"),
        ):
            _run(_quick(fake), _request())
    assert elsewhere.calls == []

    # a loop on the same host: refused after a few
    loop = {"/files/out.mp4": "/files/b.mp4", "/files/b.mp4": "/files/out.mp4"}
    with (
        FakeReplicate(Script(output=clip, hook=_redirects(loop))) as fake,
        pytest.raises(HostedRedirectError, match="more than 3 times"),
    ):
        _run(_quick(fake), _request())


# Sizes and decoding ----------------------------------------------------------------


def test_a_tiny_file_claiming_a_long_clip_is_decoded_to_the_scene_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = _ffmpeg_clip(tmp_path, "long.mp4", "640x360", 60)  # 1440 frames
    assert len(long) < 200_000

    def never(*a: object) -> None:
        raise AssertionError("the whole clip was decoded")

    monkeypatch.setattr("engine.video.read_video", never)
    with FakeReplicate(Script(output=long)) as fake:
        out = _run(_quick(fake), _request())
    assert out.frames.shape == (17, 64, 64, 3) and out.frames.dtype == np.uint8


def test_outputs_over_the_limits_are_refused_before_they_cost_memory(
    tmp_path: Path, clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = _ffmpeg_clip(tmp_path, "huge.mp4", "4608x4608", 0.04)  # 21 megapixels
    with (
        FakeReplicate(Script(output=huge)) as fake,
        pytest.raises(HostedError, match="claims a 4608x4608 picture"),
    ):
        _run(_quick(fake), _request())

    # streamed to a temporary file, cut at the limit, the file removed after
    monkeypatch.setattr(hosted, "MAX_DOWNLOAD_BYTES", 1024)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    def no_length(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if path.startswith("/files/"):  # no Content-Length: read till it closes
            return 200, {"Content-Type": "video/mp4", "X-No-Length": "1"}, clip
        return None

    with (
        FakeReplicate(Script(hook=no_length)) as fake,
        pytest.raises(HostedError, match="larger than 1024 bytes"),
    ):
        _run(_quick(fake), _request())
    assert os.listdir(tmp_path / "tmp") == []

    # a lying header: a Content-Length over the limit is refused unread
    def declared(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if path.startswith("/files/"):
            return 200, {"Content-Type": "video/mp4"}, b"\0" * 5000
        return None

    with (
        FakeReplicate(Script(hook=declared)) as fake,
        pytest.raises(HostedError, match="larger than"),
    ):
        _run(_quick(fake), _request())

    # compressed in transit although asked for as stored
    monkeypatch.setattr(hosted, "MAX_DOWNLOAD_BYTES", 1024**3)

    def gzipped(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if path.startswith("/files/"):
            return 200, {"Content-Encoding": "gzip"}, b"\x1f\x8b" + b"\0" * 64
        return None

    with (
        FakeReplicate(Script(hook=gzipped)) as fake,
        pytest.raises(HostedError, match="gzip-compressed"),
    ):
        _run(_quick(fake), _request())


# One deadline ----------------------------------------------------------------------


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # stalled handlers end with the test


def _stall(paths: tuple[str, ...], release: threading.Event):  # noqa: ANN202
    def hook(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if method == "GET" and path.startswith(paths):
            release.wait()
            return 200, {}, b"{}"
        return None

    return hook


def _busy(method: str, path: str, headers: dict[str, str]) -> Answer | None:
    return 503, {"Retry-After": "3600"}, b'{"detail": "come back in an hour"}'


def _busy_on(method_wanted: str, path_wanted: str):  # noqa: ANN202
    def hook(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if method == method_wanted and path == path_wanted:
            return _busy(method, path, headers)
        return None

    return hook


# an hour-long wait would trip the timeout: nothing here measures seconds
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("where", "cancels_job"),
    [
        ("a stalled download", False),
        ("a stalled poll", True),
        ("503 Retry-After 3600 on submit", False),
        ("503 Retry-After 3600 on a poll", True),
    ],
)
def test_a_stalled_or_busy_provider_ends_within_the_deadline(
    where: str, cancels_job: bool, clip: bytes, release: threading.Event
) -> None:
    hook = {
        "a stalled download": _stall(("/files/",), release),
        "a stalled poll": _stall((POLL,), release),
        "503 Retry-After 3600 on submit": _busy_on("POST", CREATE),
        "503 Retry-After 3600 on a poll": _busy_on("GET", POLL),
    }[where]
    script = Script(states=["succeeded"], output=clip, hook=hook)
    with FakeReplicate(script) as fake:
        backend = ReplicateBackend(base_url=fake.url)  # real waits, real clock
        with pytest.raises(HostedTimeoutError, match=r"did not finish within 1 s"):
            _run(backend, _request(timeout_s=1))
    assert script.canceled == cancels_job


# an hour-long wait would trip the timeout: nothing here measures seconds
@pytest.mark.timeout(120)
def test_fal_honours_the_deadline_not_its_clients_retry_loop(clip: bytes) -> None:
    script = Script(states=["processing"], output=clip)
    script.hook = lambda m, p, h: (
        (429, {"Retry-After": "3600"}, b'{"detail": "slow down"}')
        if p.endswith("/status")
        else None
    )
    backend = FalBackend(transport=fal_transport(script))
    with pytest.raises(HostedTimeoutError, match="asked to retry in 3600 s"):
        _run(backend, _request(timeout_s=5, model="fal-ai/ltx-2"))
    assert script.canceled  # the job was cancelled at fal


# an hour-long wait would trip the timeout: nothing here measures seconds
@pytest.mark.timeout(120)
def test_cancel_and_ctrl_c_end_every_wait_at_once(clip: bytes) -> None:
    # polling: a one-hour poll interval, cancelled while it waits
    script = Script(states=["processing"], output=clip)
    cancel = CancelToken()
    with FakeReplicate(script) as fake:
        backend = ReplicateBackend(base_url=fake.url)
        backend.poll_s = 3600
        with pytest.raises(GenerationCancelled):
            _run(backend, _request(), cancel, progress=lambda *a: cancel.set())
    assert script.canceled

    # waiting to retry: cancelled while the provider's Retry-After runs
    cancel = CancelToken()

    def busy_then_cancel(method: str, path: str, headers: dict) -> Answer | None:
        if method == "POST":
            cancel.set()  # the user presses Cancel as the 503 comes back
            return 503, {"Retry-After": "30"}, b"{}"
        return None

    script = Script(hook=busy_then_cancel)
    with FakeReplicate(script) as fake, pytest.raises(GenerationCancelled):
        _run(ReplicateBackend(base_url=fake.url), _request(), cancel)
    assert [c for c in script.calls if c[0] == "POST"] == [("POST", CREATE)]

    # Ctrl-C while waiting for the job: the job is cancelled at the provider
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    script = Script(states=["processing"], output=clip)
    with FakeReplicate(script) as fake, pytest.raises(KeyboardInterrupt):
        _run(ReplicateBackend(base_url=fake.url, sleep=interrupt), _request())
    assert script.canceled


# Handled failures log no traceback -----------------------------------------------


def _unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("failure", ["provider failed", "refused", "unreachable"])
def test_handled_hosted_failures_log_no_traceback(
    failure: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    story = example_story()
    s = story.settings
    s.backend, s.model, s.width, s.height, s.fps = (
        "replicate", "lightricks/ltx-video", 64, 64, 24,
    )  # fmt: skip
    s.hosted.max_retries = 1
    save_story(story, tmp_path)
    scripts = {
        "provider failed": Script(states=["failed"], error="NSFW content detected"),
        "refused": Script(hook=lambda m, p, h: (422, {}, b'{"detail": "bad input"}')),
    }
    with caplog.at_level(logging.INFO):
        if failure == "unreachable":
            backend = ReplicateBackend(
                base_url=f"http://127.0.0.1:{_unused_port()}", sleep=lambda s: None
            )
            take = generate_scene(tmp_path, "arrival", backend=backend)
            says = "could not reach 127.0.0.1"
        else:
            with FakeReplicate(scripts[failure]) as fake:
                take = generate_scene(tmp_path, "arrival", backend=_quick(fake))
            says = {"provider failed": "NSFW", "refused": "HTTP 422: bad input"}[
                failure
            ]
    assert take.status == "failed" and says in take.error, take.error
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
