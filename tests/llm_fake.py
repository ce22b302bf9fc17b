"""A local fake of an OpenAI-compatible chat server (nothing leaves 127.0.0.1).

`FakeChatServer` is a real HTTP server on 127.0.0.1 answering ``POST
/v1/chat/completions`` the way llama.cpp's server, Ollama and vLLM do, from a
script: the answers' contents in turn (the last repeats), the usage each
reports, and the HTTP status of the first requests (e.g. 400 from a server
without structured output). It records every request body and key.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ChatScript:
    contents: list[str] = field(default_factory=lambda: ["{}"])
    statuses: list[int] = field(default_factory=list)  # then 200
    usage: tuple[int, int] = (1_000, 200)  # prompt, completion tokens
    finish_reason: str = "stop"
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)


class FakeChatServer:
    """``with FakeChatServer(script) as server: server.url`` (ends in /v1)."""

    def __init__(self, script: ChatScript) -> None:
        self.script = script
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                s = outer.script
                length = int(self.headers.get("Content-Length") or 0)
                s.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                s.auth.append(self.headers.get("Authorization", ""))
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": "no route"}})
                if s.statuses:
                    code = s.statuses.pop(0)
                    return self._send(code, {"error": {
                        "message": "response_format is not supported",
                        "type": "invalid_request_error"}})  # fmt: skip
                n = len(s.bodies) - 1
                content = s.contents[min(n, len(s.contents) - 1)]
                self._send(200, {
                    "id": f"chatcmpl-{n}", "object": "chat.completion",
                    "created": 1_700_000_000, "model": s.bodies[-1].get("model", ""),
                    "choices": [{"index": 0, "finish_reason": s.finish_reason,
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": s.usage[0],
                              "completion_tokens": s.usage[1],
                              "total_tokens": sum(s.usage)},
                })  # fmt: skip

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
