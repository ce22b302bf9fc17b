"""Hosted-API generation: one backend shape for every provider's queue.

A provider (Replicate, fal: `engine.backends.hosted.replicate`,
`engine.backends.hosted.fal`)
turns a request into its model's input, submits it through its official
client, and reads the job's state back. `HostedBackend` does the rest the same
way for all of them:

1. the API key comes from the provider's environment variable (never the
   story, never a log: every message is redacted, `engine.redaction`); a
   missing one says which variable to set;
2. continuity is the previous take's last frame as the model's start image
   (hosted models take images, not another model's latents);
3. one deadline, ``settings.hosted.timeout_s``, covers the whole job:
   submitting, polling, waiting to retry, downloading and decoding
   (`engine.backends.hosted.transport.JobDeadline`); every request of the
   providers' clients runs under it (`ProviderTransport`), every wait ends at
   once on cancel or Ctrl-C, and a job that runs out of time, is cancelled or
   is interrupted is cancelled at the provider too;
4. a 429 or 5xx answer, a timeout or a dropped connection is retried with
   exponential backoff (or the provider's ``Retry-After``, when it fits in the
   deadline) up to ``settings.hosted.max_retries``, then fails with the
   provider's message (sanitised, redacted, bounded);
5. the result is streamed to a temporary file with a size limit, redirects
   followed only within its host, checked to be a video and decoded to at
   most the scene's frames at the story's size
   (`engine.backends.hosted.output`);
6. the cost is the provider's reported charge when it reports one, else the
   price table in the settings (USD per output second, with its date).

The budget check (`engine.budget.check_budget`) runs in the engine before any
take is begun: a job whose estimate would take the story past its budget is
refused.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from engine.backend import (
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    ProgressFn,
    VideoBackend,
    report_phase,
)
from engine.backends.hosted.output import check_video, read_output
from engine.backends.hosted.transport import (
    HostedError,
    HostedRedirectError,
    HostedTimeoutError,
    JobDeadline,
    ProviderHTTPError,
)
from engine.redaction import guard_library_logs, outside_text, redact, remember_secret
from kg.schema import HostedSettings

__all__ = [
    "MAX_DOWNLOAD_BYTES",
    "HostedError",
    "HostedTimeoutError",
    "HostedRedirectError",
    "ProviderHTTPError",
    "JobDeadline",
    "JobState",
    "Job",
    "Provider",
    "HostedBackend",
    "check_video",
    "with_retries",
]

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024  # 1 GiB: minutes of 1080p video


@dataclass(frozen=True)
class JobState:
    """One poll of a provider's job."""

    status: Literal["queued", "running", "succeeded", "failed", "canceled"]
    output_url: str | None = None
    error: str | None = None
    cost_usd: float | None = None  # when the provider reports its charge
    usage: dict[str, float] = field(default_factory=dict)


class Job(Protocol):
    def poll(self) -> JobState: ...

    def cancel(self) -> None: ...


class Provider(Protocol):
    """One provider's official client, behind the calls the backend needs.

    Both calls send their requests through a
    `engine.backends.hosted.transport.ProviderTransport` on ``deadline``.
    """

    name: str
    key_env: str  # where the API key comes from

    def submit(
        self, key: str, request: GenerationRequest, model: str, deadline: JobDeadline
    ) -> Job:
        """Submit the job; raise `ProviderHTTPError` for an HTTP answer."""

    def download(self, url: str, dest: Path, limit: int, deadline: JobDeadline) -> None:
        """Stream the output file into ``dest`` (at most ``limit`` bytes,
        `engine.backends.hosted.output.fetch_output`)."""


def with_retries(
    call: Callable[[], Any],
    *,
    retries: int,
    deadline: JobDeadline,
    base_s: float = 1.0,
    what: str = "the request",
) -> Any:
    """``call()``, again after 1, 2, 4 ... s (or the provider's
    ``Retry-After``) while it answers 429 or 5xx or does not answer, within
    ``deadline``; a ``Retry-After`` past the deadline fails at once."""
    for attempt in range(retries + 1):
        deadline.check(f"while {what}")
        try:
            return call()
        except ProviderHTTPError as exc:
            if not exc.retryable or attempt == retries:
                tried = f" after {attempt + 1} tries" if attempt else ""
                raise HostedError(f"{what} failed{tried}: {exc.describe()}") from None
            asked = exc.retry_after
            if asked is not None and asked >= deadline.remaining():
                raise deadline.expired(
                    f"while {what}: {exc.describe()}, asked to retry in {asked:g} s"
                ) from None
            wait = max(base_s * 2**attempt, asked or 0.0)
            log.info("%s: %s, retrying in %.1f s", what, exc.describe(), wait)
            deadline.pause(wait, f"while {what}")
    raise AssertionError("unreachable")


def data_uri(frame: np.ndarray) -> str:
    """A ``[H, W, 3]`` uint8 frame as a PNG data URI (a start image)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class HostedBackend(VideoBackend):
    """A provider's hosted model as a backend (see the module docstring).

    ``sleep`` and ``clock`` stand in for the waits and the time of the
    deadline (tests); by default waits are on the job's cancel event.
    """

    supports_latent_continuity = False
    charges = True  # every provider bills (the catalog's ``hosted``)
    provider: Provider
    default_model: str = ""
    poll_s: float = 2.0

    def __init__(
        self,
        *,
        settings: HostedSettings | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or HostedSettings()
        self.sleep = sleep
        self.clock = clock
        guard_library_logs()  # httpx logs every URL it requests

    # cost -----------------------------------------------------------------------
    def estimate_cost(
        self, request: GenerationRequest, settings: HostedSettings
    ) -> tuple[float, str] | None:
        prices = settings.prices.usd_per_second
        rate = next((prices[k] for k in self.price_keys(request) if k in prices), None)
        if rate is None:
            return None
        seconds = self.billed_seconds(request)
        return (
            seconds * rate,
            f"price table of {settings.prices.as_of}: {seconds:g} s x ${rate:g}/s",
        )

    def price_keys(self, request: GenerationRequest) -> list[str]:
        """Price-table entries that may price a request, first match wins
        (default: the model)."""
        return [request.model or self.default_model]

    def billed_seconds(self, request: GenerationRequest) -> float:
        """Seconds of video the provider bills (default: what was asked)."""
        return request.num_frames / request.fps

    # generation -----------------------------------------------------------------
    def api_key(self) -> str:
        key = os.environ.get(self.provider.key_env, "").strip()
        if not key:
            raise HostedError(
                f"no {self.provider.name} API key: set the environment variable "
                f"{self.provider.key_env} (it is read there, never stored)"
            )
        remember_secret(key)  # never in a message, whatever echoes it
        return key

    def generate(
        self, request: GenerationRequest, progress: ProgressFn, cancel: CancelToken
    ) -> GenerationResult:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        settings: HostedSettings = request.hosted or self.settings
        key = self.api_key()
        model = request.model or self.default_model
        name = self.provider.name
        if cancel.is_set():
            raise GenerationCancelled("cancelled before the job was submitted")
        deadline = JobDeadline(
            name, settings.timeout_s, cancel, clock=self.clock, sleep=self.sleep
        )
        report_phase(progress, "load")  # submitted and waiting at the provider
        job = self._retry(
            lambda: self.provider.submit(key, request, model, deadline),
            settings,
            deadline,
            f"submitting to {name}",
        )
        timings["submit"] = time.perf_counter() - start
        state = self._wait(job, deadline, progress, settings)
        if state.status != "succeeded" or not state.output_url:
            why = state.error or f"the job ended {state.status} without an output"
            raise HostedError(f"{name} ({model}): {outside_text(why, 1000)}")
        mark = time.perf_counter()
        report_phase(progress, "decode")  # downloading and decoding the output
        url = state.output_url
        with tempfile.TemporaryDirectory(prefix="storygraph-hosted-") as tmp:
            path = Path(tmp) / "output"
            self._retry(
                lambda: self.provider.download(url, path, MAX_DOWNLOAD_BYTES, deadline),
                settings,
                deadline,
                f"downloading the {name} output",
            )
            frames = read_output(path, request, deadline)
        timings["download"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - start
        carried = (
            request.continuity is not None and request.continuity.last_frame is not None
        )
        return GenerationResult(
            frames=frames,
            timings=timings,
            continuity_used="frame" if carried else "none",
            continuity_note=(
                f"{name} takes a start image, not latents: continued "
                "from the previous take's last frame"
                if request.continuity is not None
                else ""
            ),
            repeated_frames=1 if carried else 0,
            cost=self._cost(state, request, settings),
        )

    def _retry(
        self,
        call: Callable[[], Any],
        settings: HostedSettings,
        deadline: JobDeadline,
        what: str,
    ) -> Any:
        return with_retries(
            call, retries=settings.max_retries, deadline=deadline, what=what
        )

    def _wait(
        self,
        job: Job,
        deadline: JobDeadline,
        progress: ProgressFn,
        settings: HostedSettings,
    ) -> JobState:
        """Poll until the job ends; cancelled, out of time or interrupted, the
        job is cancelled at the provider too."""
        name = self.provider.name
        try:
            while True:
                deadline.check("while waiting for the job")
                state = self._retry(
                    job.poll, settings, deadline, f"asking {name} about the job"
                )
                if state.status in ("succeeded", "failed", "canceled"):
                    progress(100, 100)
                    return state
                done = deadline.elapsed() / max(deadline.timeout_s, 1e-9)
                progress(min(99, math.floor(100 * done)), 100)
                deadline.pause(self.poll_s, "while waiting for the job")
        except GenerationCancelled:
            self._cancel_job(job, deadline)
            raise GenerationCancelled(
                f"cancelled; the {name} job was cancelled too"
            ) from None
        except HostedTimeoutError as exc:
            self._cancel_job(job, deadline)
            raise HostedTimeoutError(f"{exc}; the job was cancelled") from None
        except BaseException:  # Ctrl-C, or the provider's client failing
            self._cancel_job(job, deadline)
            raise

    def _cancel_job(self, job: Job, deadline: JobDeadline) -> None:
        with deadline.closing():
            try:
                job.cancel()
            except Exception as exc:  # noqa: BLE001 - the job ends here anyway
                log.warning(
                    "could not cancel the %s job: %s", self.provider.name, redact(exc)
                )

    def _cost(
        self, state: JobState, request: GenerationRequest, settings: HostedSettings
    ) -> tuple[float, str] | None:
        if state.cost_usd is not None:
            return state.cost_usd, f"charged by {self.provider.name}"
        return self.estimate_cost(request, settings)
