"""Every HTTP exchange with a provider: within the job's deadline, errors named.

A hosted job has one deadline (`JobDeadline`, ``settings.hosted.timeout_s``)
that covers all of it: submitting, polling, waiting to retry, downloading and
decoding. Waits are on the job's cancel event, so cancel and Ctrl-C end them at
once; a provider that asks to retry later than the deadline fails the job
now, not after the wait.

`ProviderTransport` sits under the providers' official clients (and our
downloads) as their httpx transport, so every request of theirs goes through
it: each one's timeouts are cut to what is left of the deadline, a timeout or a
dropped connection is a retryable `ProviderHTTPError`, and an error answer
(4xx, 5xx) becomes a `ProviderHTTPError` at once, with the provider's message
read from at most 64 KB of its body, sanitised, redacted and bounded
(`engine.redaction.outside_text`), and its ``Retry-After`` read. The clients'
own retry loops (which sleep through any ``Retry-After``, an hour included)
never see those answers; `engine.backends.hosted.client.with_retries` retries
them within the deadline.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx

from engine.backend import BackendError, CancelToken, GenerationCancelled
from engine.redaction import outside_text

__all__ = [
    "HostedError",
    "HostedTimeoutError",
    "HostedRedirectError",
    "ProviderHTTPError",
    "RETRY_STATUSES",
    "JobDeadline",
    "ProviderTransport",
    "retry_after_seconds",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
HTTP_TIMEOUT_S = 10.0  # one request's connect/read/write timeout at most
CLOSING_TIMEOUT_S = 5.0  # cancelling a job after its deadline
CANCEL_CHECK_S = 0.25  # how often a wait looks at a cancel flag it cannot wait on
ERROR_BODY_BYTES = 64 * 1024


class HostedError(BackendError):
    """The provider refused or failed the job; the message is the provider's."""


class HostedTimeoutError(HostedError):
    """The job ran into its deadline (``settings.hosted.timeout_s``)."""


class HostedRedirectError(HostedError):
    """A download was redirected away from the host that served it."""


class ProviderHTTPError(Exception):
    """A provider's HTTP error answer, or no answer (``status`` None).

    ``message`` is already fit to store (sanitised, redacted, bounded);
    ``retry_after`` is the seconds the provider asked to wait, if it did.
    """

    def __init__(
        self,
        status: int | None,
        message: str,
        *,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        message = outside_text(message)
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.retryable = status in RETRY_STATUSES if retryable is None else retryable

    def describe(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


def retry_after_seconds(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` header asks for (a number or an HTTP date).

    >>> retry_after_seconds("3600"), retry_after_seconds("soon")
    (3600.0, None)
    """
    value = (value or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class JobDeadline:
    """The one deadline of a hosted job, and its cancel flag.

    ``clock`` measures it (tests pass their own); ``sleep``, when given,
    replaces the waits on the cancel event (tests pass a no-op).
    """

    def __init__(
        self,
        provider: str,
        timeout_s: float,
        cancel: CancelToken,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.provider = provider
        self.timeout_s = timeout_s
        self.cancel = cancel
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self._closing = False

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return self.timeout_s - self.elapsed()

    def expired(self, doing: str) -> HostedTimeoutError:
        return HostedTimeoutError(
            f"{self.provider} did not finish within {self.timeout_s:g} s "
            f"(settings.hosted.timeout_s; it ran out {doing}); raise the timeout "
            "in Settings or try again later"
        )

    def check(self, doing: str) -> None:
        """Raise `GenerationCancelled` once cancelled, the timeout once past."""
        if self.cancel.is_set():
            raise GenerationCancelled(f"cancelled {doing}")
        if not self._closing and self.remaining() <= 0:
            raise self.expired(doing)

    def pause(self, seconds: float, doing: str) -> None:
        """Wait ``seconds`` (at most what is left), ended at once by cancel."""
        self.check(doing)
        wait = max(0.0, min(seconds, self.remaining()))
        if self.sleep is not None:
            self.sleep(wait)
        else:
            end = time.monotonic() + wait
            while (left := end - time.monotonic()) > 0 and not self.cancel.is_set():
                # a cancel flag on another machine (Ray) is only asked, not waited on
                self.cancel.wait(min(left, CANCEL_CHECK_S))
        self.check(doing)

    def request_timeout(self, doing: str) -> float:
        """Seconds one request may take: what is left, at most `HTTP_TIMEOUT_S`."""
        if self._closing:
            return CLOSING_TIMEOUT_S
        left = self.remaining()
        if left <= 0:
            raise self.expired(doing)
        return min(HTTP_TIMEOUT_S, left)

    @contextlib.contextmanager
    def closing(self) -> Iterator[None]:
        """Requests that end the job (cancel it) may run past the deadline,
        briefly."""
        self._closing = True
        try:
            yield
        finally:
            self._closing = False


def _error_text(body: bytes) -> str:
    """The message of an error body: a JSON problem's fields, else the text."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
    if isinstance(doc, dict):
        parts = []
        for name in ("title", "detail", "message", "error"):
            value = doc.get(name)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail")
            if isinstance(value, str | int | float) and str(value) not in parts:
                parts.append(str(value))
        if parts:
            return ": ".join(parts)
    return body.decode("utf-8", "replace")


def _read_error_body(response: httpx.Response) -> bytes:
    data = bytearray()
    try:
        for chunk in response.stream:  # type: ignore[union-attr]
            data += chunk
            if len(data) >= ERROR_BODY_BYTES:
                break
    except httpx.HTTPError:
        pass  # the status says enough
    finally:
        response.close()
    return bytes(data[:ERROR_BODY_BYTES])


class ProviderTransport(httpx.BaseTransport):
    """The httpx transport under a provider's client (see the module docstring)."""

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        deadline: JobDeadline | None = None,
    ) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.deadline = deadline

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if self.deadline is not None:
            seconds = self.deadline.request_timeout(f"while asking {host}")
            request.extensions["timeout"] = dict.fromkeys(
                ("connect", "read", "write", "pool"), seconds
            )
        try:
            response = self.inner.handle_request(request)
        except httpx.TimeoutException:
            if self.deadline is not None:
                self.deadline.check(f"while waiting for {host}")
            raise ProviderHTTPError(
                None, f"{host} did not answer in time", retryable=True
            ) from None
        except httpx.TransportError as exc:
            raise ProviderHTTPError(
                None, f"could not reach {host} ({type(exc).__name__})", retryable=True
            ) from None
        if response.status_code >= 400:
            raise ProviderHTTPError(
                response.status_code,
                _error_text(_read_error_body(response)),
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        return response

    def close(self) -> None:
        self.inner.close()
