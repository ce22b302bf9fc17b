"""Secrets never leave: provider keys and tokens out of every message.

Whatever a provider, a client library or an exception says may echo the API
key it was given (an error body quoting the ``Authorization`` header, a
redirect URL with ``?token=``, a validation error showing an input value).
Every message the engine stores in a story (`engine.outcome.fail`), logs or
hands a front end to show goes through `redact` first:

- the known secrets are cut wherever they appear, as they are or URL-encoded:
  the values of `SECRET_ENV_VARS` in the environment and every key a hosted
  client was given (`remember_secret`);
- so is anything shaped like a credential: ``Authorization`` values,
  ``Bearer``/``Key`` tokens, ``key=``/``token=``/``secret=``... parameters
  (query strings, forms, JSON, headers), user:password in URLs, and the token
  formats of the providers (``r8_...``, ``hf_...``).

`outside_text` is the one door for text that came from outside (response
bodies, provider errors): decoded, control characters removed, whitespace
collapsed, redacted and bounded. `redacted_traceback` is a traceback for
the log with the same treatment; `RedactingFilter` does it for the records
of client libraries (httpx logs every URL it requests).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import traceback
from urllib.parse import quote, quote_plus

__all__ = [
    "SECRET_ENV_VARS",
    "REDACTED",
    "remember_secret",
    "redact",
    "outside_text",
    "redacted_traceback",
    "RedactingFilter",
    "guard_library_logs",
]

# Environment variables holding provider keys and tokens (never shown).
SECRET_ENV_VARS = (
    "REPLICATE_API_TOKEN",
    "FAL_KEY",
    "FAL_KEY_ID",
    "FAL_KEY_SECRET",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
)
REDACTED = "[redacted]"
MIN_SECRET = 6  # shorter values would cut ordinary words out of messages

_remembered: set[str] = set()
_guard = threading.Lock()

_TOKEN = r"[A-Za-z0-9._~+/=:%-]"
_DONE = r"(?!\[redacted\])"  # a value redacted already stays as it is
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer x / "authorization": "Key x" / Proxy-Authorization
    (
        re.compile(
            r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)"
            rf"(?:(bearer|basic|key|token|digest)\s+)?+{_DONE}[^\s\"',;}}\]]+"
        ),
        lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + REDACTED,
    ),
    (re.compile(rf"(?i)\b(bearer|basic)\s+{_TOKEN}{{6,}}"), rf"\1 {REDACTED}"),
    (re.compile(rf"\b(Key)\s+{_TOKEN}{{16,}}"), rf"\1 {REDACTED}"),
    # key=..., "api_key": "...", token: ..., X-Amz-Signature=...
    (
        re.compile(
            r"(?i)((?:x-amz-)?(?:api[_-]?|access[_-]?|auth[_-]?|client[_-]?"
            r"|private[_-]?|session[_-]?|security[_-]?|refresh[_-]?)?"
            r"(?:key|token|secret|password|passwd|signature|credential)s?)"
            rf"([\"']?\s*(?:=|:)\s*[\"']?){_DONE}([^\s\"'&,;}}\]<>]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
    # https://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{REDACTED}@"),
    # the providers' token formats
    (re.compile(r"\b(?:r8|hf)_[A-Za-z0-9]{10,}"), REDACTED),
)


def remember_secret(value: str | None) -> None:
    """Redact ``value`` (a key a client was given) from every later message."""
    value = (value or "").strip()
    if len(value) >= MIN_SECRET:
        with _guard:
            _remembered.add(value)


def _known_secrets() -> list[str]:
    found = set()
    for name in SECRET_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if len(value) >= MIN_SECRET:
            found.add(value)
    with _guard:
        found |= _remembered
    # a fal key is "id:secret": either half may be echoed alone
    for value in list(found):
        found.update(p for p in value.split(":") if len(p) >= MIN_SECRET)
    spelled = set()
    for value in found:
        spelled |= {value, quote(value, safe=""), quote_plus(value)}
    return sorted(spelled, key=len, reverse=True)  # the longest first


def redact(text: object) -> str:
    """``text`` with every secret and credential-shaped value replaced.

    >>> redact("HTTP 401: Authorization: Bearer abc123456789 refused")
    'HTTP 401: Authorization: Bearer [redacted] refused'
    >>> redact("GET https://cdn.example/out.mp4?token=s3cr3t&size=2")
    'GET https://cdn.example/out.mp4?token=[redacted]&size=2'
    >>> redact('{"api_key": "abc", "detail": "bad key"}')
    '{"api_key": "[redacted]", "detail": "bad key"}'
    """
    out = str(text)
    for secret in _known_secrets():
        out = out.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)  # type: ignore[arg-type]
    return out


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def outside_text(raw: bytes | str | None, limit: int = 300) -> str:
    """Text that came from outside (a response body, a provider's error), fit
    to store and show: decoded, controls removed, whitespace collapsed,
    redacted, at most ``limit`` characters.

    >>> outside_text(b"<p>\\x1b[31m token=abc\\n\\n  gone</p>", 40)
    '<p>[31m token=[redacted] gone</p>'
    """
    if raw is None:
        return ""
    # cut far beyond the limit first (a body may be megabytes), but far enough
    # that a secret cut in two there is cut off again below
    head = raw[: limit * 4 + 1024]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    text = " ".join(_CONTROLS.sub("", text).split())
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redacted_traceback(exc: BaseException) -> str:
    """``exc``'s traceback as text, redacted (for ``log.error``)."""
    return redact("".join(traceback.format_exception(exc)).rstrip())


class RedactingFilter(logging.Filter):
    """Redacts a record's message (and drops its arguments) before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot format
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.msg}\n{redacted_traceback(record.exc_info[1])}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


_FILTER = RedactingFilter()


# The loggers of the HTTP clients (a filter on a logger sees only its own
# records, not its children's, so each is named; httpcore logs the headers
# of every answer at DEBUG).
LIBRARY_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "replicate",
    "fal_client",
    "fal_client.client",
)


def guard_library_logs(names: tuple[str, ...] = ()) -> None:
    """Redact the records of the client libraries the engine uses (idempotent)."""
    for name in (*LIBRARY_LOGGERS, *names):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
