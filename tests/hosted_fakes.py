"""Local fakes of the hosted providers' HTTP APIs (nothing leaves 127.0.0.1).

`FakeReplicate` is a real HTTP server on 127.0.0.1 speaking the part of
Replicate's API its official client uses (create a prediction for a model,
read it, cancel it) and serving the output file. `fal_transport` is an httpx
transport answering fal's queue API (submit, status, result, cancel) under
fal's own client. Both follow a script: what each call answers, and
``hook``: a function of (method, path, headers) that may answer a request
itself, ``(status, headers, body)``, or block until a test releases it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Answer = tuple[int, dict[str, str], bytes]
Hook = Callable[[str, str, dict[str, str]], Answer | None]


@dataclass
class Script:
    """What the fake answers: HTTP statuses for the first creates, the job's
    states in turn (the last repeats), and the output file."""

    create_statuses: list[int] = field(default_factory=list)  # then 201
    states: list[str] = field(default_factory=lambda: ["processing", "succeeded"])
    error: str | None = None
    output: bytes = b""
    calls: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    canceled: bool = False
    polls: int = 0
    hook: Hook | None = None  # answers a request itself when it returns one

    def next_state(self) -> str:
        if self.canceled:
            return "canceled"
        state = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        return state


def _prediction(script: Script, base: str, status: str) -> dict[str, Any]:
    return {
        "id": "p1",
        "model": "lightricks/ltx-video",
        "version": "v1",
        "status": status,
        "input": script.bodies[-1].get("input", {}) if script.bodies else {},
        "output": [f"{base}/files/out.mp4"] if status == "succeeded" else None,
        "logs": "",
        "error": script.error if status == "failed" else None,
        "metrics": {"predict_time": 4.2} if status == "succeeded" else {},
        "created_at": "2026-11-23T00:00:00Z",
        "urls": {
            "get": f"{base}/v1/predictions/p1",
            "cancel": f"{base}/v1/predictions/p1/cancel",
        },
    }


class FakeReplicate:
    """Replicate's API on 127.0.0.1 (start with ``with FakeReplicate(s) as f``)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(
                self,
                status: int,
                body: Any,
                ctype: str = "application/json",
                headers: dict[str, str] | None = None,
            ):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                headers = dict(headers or {})
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                if headers.pop("X-No-Length", None) is None:  # else: till close
                    self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _hooked(self, method: str) -> bool:
                s = outer.script
                if s.hook is None:
                    return False
                answer = s.hook(method, self.path, dict(self.headers))
                if answer is None:
                    return False
                status, headers, body = answer
                ctype = headers.pop("Content-Type", "application/json")
                self._send(status, body, ctype, headers)
                return True

            def do_POST(self) -> None:  # noqa: N802
                s = outer.script
                s.calls.append(("POST", self.path))
                s.auth.append(self.headers.get("Authorization", ""))
                if self._hooked("POST"):
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/cancel"):
                    s.canceled = True
                    return self._send(200, _prediction(s, outer.url, "canceled"))
                s.bodies.append(body)
                if s.create_statuses:
                    code = s.create_statuses.pop(0)
                    return self._send(code, {"title": "busy", "detail": "slow down",
                                             "status": code})  # fmt: skip
                return self._send(201, _prediction(s, outer.url, "starting"))

            def do_GET(self) -> None:  # noqa: N802
                s = outer.script
                s.calls.append(("GET", self.path))
                if self._hooked("GET"):
                    return
                if self.path.startswith("/files/"):
                    return self._send(200, s.output, "video/mp4")
                return self._send(200, _prediction(s, outer.url, s.next_state()))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeReplicate:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def fal_transport(script: Script) -> httpx.MockTransport:
    """fal's queue API, answered at the HTTP transport under fal's client."""
    base = "https://queue.fal.run/fal-ai/ltx-2/requests/r1"

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        script.calls.append((request.method, str(request.url)))
        script.auth.append(request.headers.get("Authorization", ""))
        if script.hook is not None:
            answer = script.hook(request.method, path, dict(request.headers))
            if answer is not None:
                status, headers, body = answer
                return httpx.Response(status, headers=headers, content=body)
        if request.method == "POST":
            script.bodies.append({"app": path, "input": json.loads(request.content)})
            if script.create_statuses:
                code = script.create_statuses.pop(0)
                return httpx.Response(code, json={"detail": "rate limited"})
            urls = {"response_url": base, "status_url": base + "/status",
                    "cancel_url": base + "/cancel"}  # fmt: skip
            return httpx.Response(200, json={"request_id": "r1", **urls})
        if request.method == "PUT" and path.endswith("/cancel"):
            script.canceled = True
            return httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"})
        if path.endswith("/status"):
            state = script.next_state()
            if state in ("processing", "starting"):
                return httpx.Response(200, json={"status": "IN_PROGRESS", "logs": []})
            return httpx.Response(200, json={
                "status": "COMPLETED", "logs": [], "metrics": {"inference_time": 3.0},
                "error": script.error if state == "failed" else None})  # fmt: skip
        if path.startswith("/files/"):
            return httpx.Response(200, content=script.output)
        if path.endswith("/requests/r1"):
            return httpx.Response(
                200, json={"video": {"url": "https://v3.fal.media/files/out.mp4"}}
            )
        return httpx.Response(404, json={"detail": f"no route {path}"})

    return httpx.MockTransport(handle)
