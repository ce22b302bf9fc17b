"""The studio's server: Streamlit with a guard in front of every route.

``python -m studio.serve [SCRIPT.py] [streamlit run options]`` is ``streamlit
run studio/app.py`` (or ``SCRIPT.py``) with `HostGuard` in front of all that
Streamlit serves: the page, static files, health, media, uploads, components
and the WebSocket. ``run_studio.sh``, the browser tests and the benchmarks
start the studio this way.

- A request whose ``Host`` is not one of the studio's names is refused (403;
  a WebSocket is closed before it is accepted, which is a 403 too): a page on
  another site that points its own name at 127.0.0.1 (DNS rebinding) reaches
  nothing. The names are ``localhost``, ``127.0.0.1``, ``::1``,
  ``STORYGRAPH_HOST`` and ``STORYGRAPH_ALLOWED_HOSTS`` (comma-separated),
  passed to Streamlit as ``server.allowedHosts`` (which its WebSocket checks
  as well) and read back from there, so there is one list.
- Every answer says ``X-Frame-Options: SAMEORIGIN`` and
  ``Content-Security-Policy: frame-ancestors 'self'``: no other site's page
  can frame the studio and click its buttons (delete, spend), while the
  studio's own pages still frame its own components (the story graph is a
  component served from the studio, in an iframe).

The hook: Streamlit 1.67 serves through Starlette under uvicorn, and builds its
application in ``streamlit.web.server.starlette.starlette_app``, taking its
middleware from ``create_streamlit_middleware()``. `install` wraps that one
function, in this process only, so the guard is the outermost middleware;
Streamlit's code and configuration stay as they are. Should a later Streamlit
move it, `install` fails and the studio does not start unguarded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "FRAMING_HEADERS",
    "allowed_hosts",
    "host_allowed",
    "HostGuard",
    "install",
    "main",
]

APP = Path(__file__).resolve().parent / "app.py"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
FRAMING_HEADERS = (
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"content-security-policy", b"frame-ancestors 'self'"),
)
REFUSED = (
    b"This studio answers only to its own host names; add yours with "
    b"STORYGRAPH_ALLOWED_HOSTS.\n"
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def allowed_hosts(env: Mapping[str, str] = os.environ) -> list[str]:
    """The host names the studio answers to (see the module docstring).

    >>> allowed_hosts({"STORYGRAPH_HOST": "0.0.0.0",
    ...                "STORYGRAPH_ALLOWED_HOSTS": "studio.example, x.test"})[-3:]
    ['0.0.0.0', 'studio.example', 'x.test']
    """
    hosts = list(LOCAL_HOSTS)
    own = env.get("STORYGRAPH_HOST", "").strip()
    extra = env.get("STORYGRAPH_ALLOWED_HOSTS", "").split(",")
    for name in (own, *extra):
        name = name.strip()
        if name and name not in hosts:
            hosts.append(name)
    return hosts


def host_allowed(host: str | None, allowed: list[str]) -> bool:
    """Whether a ``Host`` header names one of ``allowed`` (``*`` and
    ``*.domain`` patterns too), with or without a port.

    >>> host_allowed("127.0.0.1:8501", ["127.0.0.1"]), host_allowed("evil.test", [])
    (True, False)
    """
    if not host:
        return False
    try:
        parsed = urlparse(f"//{host}")
        name, _ = parsed.hostname, parsed.port  # the port must be a number
    except ValueError:
        return False
    if not name or parsed.username or parsed.password or parsed.path:
        return False
    name = name.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.strip().lower().rstrip(".").strip("[]")
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def _configured_hosts() -> list[str]:
    from streamlit import config

    return list(config.get_option("server.allowedHosts") or ()) or allowed_hosts()


class HostGuard:
    """ASGI middleware: foreign hosts refused, framing refused (module docstring)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)  # lifespan
        headers = dict(scope.get("headers") or ())
        host = headers.get(b"host", b"").decode("latin-1")
        if not host_allowed(host, _configured_hosts()):
            return await self._refuse(scope, receive, send)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)

        async def framed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_framing(message.get("headers") or ())
            await send(message)

        await self.app(scope, receive, framed)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})  # HTTP 403
            return
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": _with_framing(
                    [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(REFUSED)).encode()),
                    ]
                ),
            }
        )
        await send({"type": "http.response.body", "body": REFUSED})


def _with_framing(headers: Any) -> list[tuple[bytes, bytes]]:
    """Headers with ours in place of any framing policy the app set."""
    out: list[tuple[bytes, bytes]] = []
    policy: bytes | None = None
    for key, value in headers:
        name = bytes(key).lower()
        if name == b"x-frame-options":
            continue
        if name == b"content-security-policy":
            policy = bytes(value)
            continue
        out.append((key, value))
    out.append(FRAMING_HEADERS[0])
    if policy and b"frame-ancestors" not in policy:
        out.append((b"content-security-policy", policy + b"; frame-ancestors 'self'"))
    else:
        out.append(FRAMING_HEADERS[1])
    return out


def install() -> None:
    """Put `HostGuard` in front of Streamlit's middleware (idempotent)."""
    from starlette.middleware import Middleware
    from streamlit.web.server.starlette import starlette_app

    original = starlette_app.create_streamlit_middleware
    if getattr(original, "storygraph_guard", False):
        return

    def guarded() -> list[Middleware]:
        return [Middleware(HostGuard), *original()]

    guarded.storygraph_guard = True  # type: ignore[attr-defined]
    starlette_app.create_streamlit_middleware = guarded


def main(argv: list[str] | None = None) -> None:
    """``streamlit run`` of the studio (or a script given first), guarded."""
    args = list(sys.argv[1:] if argv is None else argv)
    script = args.pop(0) if args and args[0].endswith(".py") else str(APP)
    install()
    from streamlit.web import cli

    hosts = [f"--server.allowedHosts={h}" for h in allowed_hosts()]
    sys.argv = ["streamlit", "run", script, *hosts, *args]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
