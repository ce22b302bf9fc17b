"""The studio's HTTP layer (issue 24): every route refuses a foreign Host and
every answer refuses framing. The real server (``python -m studio.serve``, as
run_studio.sh starts it) runs in a subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.serve import allowed_hosts, host_allowed
from studio.testing import free_port, serve_command, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = ("evil.example", "evil.example:8501", "127.0.0.1.nip.io", "localhost.evil")


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    outputs = tmp_path_factory.mktemp("outputs")
    env = {**os.environ, "STORYGRAPH_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1",
           "STORYGRAPH_ALLOWED_HOSTS": "studio.example"}  # fmt: skip
    log = open(tmp_path_factory.mktemp("log") / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        serve_command(ROOT / "studio" / "app.py", port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, 90)  # a bounded poll
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _get(port: int, path: str, host: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, headers, resp.read()
    finally:
        conn.close()


def _routes(port: int) -> list[str]:
    """The page, one of its static scripts, health, media and a component."""
    _, _, html = _get(port, "/", f"127.0.0.1:{port}")
    script = re.search(rb'src="\.?(/static/[^"]+\.js)"', html)
    assert script, html[:500]
    return [
        "/",
        script.group(1).decode(),
        "/_stcore/health",
        "/_stcore/host-config",
        "/media/nothing.png",
        "/storyboard",
    ]


def test_every_route_refuses_foreign_hosts_and_framing(studio: int) -> None:
    port = studio
    for path in _routes(port):
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "studio.example"):
            status, headers, _ = _get(port, path, host)
            assert status < 500, (path, host, status)
            assert headers.get("x-frame-options") == "SAMEORIGIN", (path, host)
            assert "frame-ancestors 'self'" in headers.get(
                "content-security-policy", ""
            ), (path, host)
        assert _get(port, path, f"127.0.0.1:{port}")[0] == 200 or path.startswith(
            "/media/"
        )
        for host in FOREIGN:
            status, headers, body = _get(port, path, host)
            assert 400 <= status < 500, (path, host, status)
            assert b"<html" not in body.lower() and body != b"ok"
            assert headers.get("x-frame-options") == "SAMEORIGIN"


def _websocket_status(port: int, host: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request.encode())
        return sock.recv(4096).split(b"\r\n", 1)[0]


def test_the_websocket_refuses_foreign_hosts(studio: int) -> None:
    assert b" 101 " in _websocket_status(studio, f"127.0.0.1:{studio}")
    for host in FOREIGN:
        assert b" 403 " in _websocket_status(studio, host), host


def test_the_host_names_come_from_the_settings_of_the_studio() -> None:
    env = {"STORYGRAPH_HOST": "10.0.0.5", "STORYGRAPH_ALLOWED_HOSTS": "a.test,,b.test"}
    hosts = allowed_hosts(env)
    assert hosts[:3] == ["localhost", "127.0.0.1", "::1"]
    assert hosts[-3:] == ["10.0.0.5", "a.test", "b.test"]
    assert host_allowed("[::1]:8501", hosts) and host_allowed("A.TEST.", hosts)
    for bad in ("", "evil.test", "user@127.0.0.1", "127.0.0.1:port", "127.0.0.1/x"):
        assert not host_allowed(bad, hosts), bad
