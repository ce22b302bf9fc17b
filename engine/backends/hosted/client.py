"""Hosted-API generation: one backend shape for every provider's queue.

A provider (Replicate, fal: `engine.backends.hosted.replicate`,
`engine.backends.hosted.fal`)
turns a request into its model's input, submits it through its official
client, and reads the job's state back. `HostedBackend` does the rest the same
way for all of them:

1. the API key comes from the provider's environment variable (never the
   story, never a log); a missing one says which variable to set;
2. continuity is the previous take's last frame as the model's start image
   (hosted models take images, not another model's latents);
3. submitting retries a 429 or 5xx answer with exponential backoff up to
   ``settings.hosted.max_retries``, then fails with the provider's message;
4. the job is polled until it ends; cancel asks the provider to cancel it,
   and a job running past ``timeout_s`` is cancelled and fails;
5. the result is downloaded with a size limit and checked to be a video
   (an mp4/mov ``ftyp`` box or a WebM header) before it becomes frames,
   cropped to the story's size and cut to the scene's length;
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
from typing import Any, Literal, Protocol

import numpy as np

from engine.backend import (
    BackendError,
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    ProgressFn,
    VideoBackend,
)
from kg.schema import HostedSettings

__all__ = [
    "download",
    "MAX_DOWNLOAD_BYTES",
    "HostedError",
    "JobState",
    "Job",
    "Provider",
    "HostedBackend",
    "check_video",
    "with_retries",
]

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024  # 1 GiB: minutes of 1080p video
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HostedError(BackendError):
    """The provider refused or failed the job; the message is the provider's."""


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
    """One provider's official client, behind the calls the backend needs."""

    name: str
    key_env: str  # where the API key comes from

    def submit(self, key: str, request: GenerationRequest, model: str) -> Job:
        """Submit the job; raise `ProviderHTTPError` for an HTTP answer."""

    def download(self, key: str, url: str, limit: int) -> bytes:
        """The output file's bytes (at most ``limit + 1`` of them)."""


class ProviderHTTPError(Exception):
    """An HTTP error answer of a provider (status and its message)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


def with_retries(
    call: Callable[[], Any],
    *,
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
    base_s: float = 1.0,
    what: str = "the request",
) -> Any:
    """``call()``, again after 1, 2, 4 ... s while it answers 429 or 5xx."""
    for attempt in range(retries + 1):
        try:
            return call()
        except ProviderHTTPError as exc:
            if exc.status not in RETRY_STATUSES or attempt == retries:
                tried = f" after {attempt + 1} tries" if attempt else ""
                raise HostedError(
                    f"{what} failed{tried}: HTTP {exc.status}: {exc}"
                ) from None
            wait = base_s * 2**attempt
            log.info("%s: HTTP %s, retrying in %.1f s", what, exc.status, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def check_video(data: bytes, limit: int = MAX_DOWNLOAD_BYTES) -> None:
    """Refuse a download that is too large or not a video container."""
    if len(data) > limit:
        raise HostedError(
            f"the provider's output is larger than {limit // (1024 * 1024)} MB; "
            "not stored"
        )
    is_mp4 = len(data) >= 12 and data[4:8] == b"ftyp"
    is_webm = data[:4] == b"\x1a\x45\xdf\xa3"
    if not (is_mp4 or is_webm):
        head = data[:16].decode("ascii", "replace")
        raise HostedError(
            f"the provider's output is not a video (starts {head!r}); not stored"
        )


def data_uri(frame: np.ndarray) -> str:
    """A ``[H, W, 3]`` uint8 frame as a PNG data URI (a start image)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _fit_frames(frames: np.ndarray, request: GenerationRequest) -> np.ndarray:
    """Frames cropped to fill the request's size and cut to its length."""
    from PIL import Image, ImageOps

    size = (request.width, request.height)
    frames = frames[: request.num_frames]
    if frames.shape[1:3] == (request.height, request.width):
        return frames
    return np.stack(
        [np.asarray(ImageOps.fit(Image.fromarray(f), size)) for f in frames]
    ).astype(np.uint8)


class HostedBackend(VideoBackend):
    """A provider's hosted model as a backend (see the module docstring)."""

    supports_latent_continuity = False
    charges = True  # every provider bills (the catalog's ``hosted``)
    provider: Provider
    default_model: str = ""
    poll_s: float = 2.0

    def __init__(
        self,
        *,
        settings: HostedSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or HostedSettings()
        self.sleep = sleep
        self.clock = clock

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
        return key

    def generate(
        self, request: GenerationRequest, progress: ProgressFn, cancel: CancelToken
    ) -> GenerationResult:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        settings: HostedSettings = request.hosted or self.settings
        key = self.api_key()
        model = request.model or self.default_model
        if cancel.is_set():
            raise GenerationCancelled("cancelled before the job was submitted")
        job = with_retries(
            lambda: self.provider.submit(key, request, model),
            retries=settings.max_retries,
            sleep=self.sleep,
            what=f"submitting to {self.provider.name}",
        )
        timings["submit"] = time.perf_counter() - start
        state = self._wait(job, cancel, progress, settings)
        if state.status != "succeeded" or not state.output_url:
            why = state.error or f"the job ended {state.status} without an output"
            raise HostedError(f"{self.provider.name} ({model}): {why}")
        mark = time.perf_counter()
        data = with_retries(
            lambda: self.provider.download(key, state.output_url, MAX_DOWNLOAD_BYTES),
            retries=settings.max_retries,
            sleep=self.sleep,
            what=f"downloading the {self.provider.name} output",
        )
        check_video(data, MAX_DOWNLOAD_BYTES)
        frames = _decode(data)
        timings["download"] = time.perf_counter() - mark
        frames = _fit_frames(frames, request)
        timings["total"] = time.perf_counter() - start
        carried = (
            request.continuity is not None and request.continuity.last_frame is not None
        )
        return GenerationResult(
            frames=frames,
            timings=timings,
            continuity_used="frame" if carried else "none",
            continuity_note=(
                f"{self.provider.name} takes a start image, not latents: continued "
                "from the previous take's last frame"
                if request.continuity is not None
                else ""
            ),
            repeated_frames=1 if carried else 0,
            cost=self._cost(state, request, settings),
        )

    def _wait(
        self,
        job: Job,
        cancel: CancelToken,
        progress: ProgressFn,
        settings: HostedSettings,
    ) -> JobState:
        started = self.clock()
        timeout = settings.timeout_s
        while True:
            if cancel.is_set():
                job.cancel()
                raise GenerationCancelled(
                    f"cancelled; the {self.provider.name} job was cancelled too"
                )
            state = with_retries(
                job.poll,
                retries=settings.max_retries,
                sleep=self.sleep,
                what=f"asking {self.provider.name} about the job",
            )
            if state.status in ("succeeded", "failed", "canceled"):
                progress(100, 100)
                return state
            elapsed = self.clock() - started
            if elapsed > timeout:
                job.cancel()
                raise HostedError(
                    f"{self.provider.name} did not finish within {timeout} s "
                    "(settings.hosted.timeout_s); the job was cancelled"
                )
            progress(min(99, math.floor(100 * elapsed / timeout)), 100)
            self.sleep(self.poll_s)

    def _cost(
        self, state: JobState, request: GenerationRequest, settings: HostedSettings
    ) -> tuple[float, str] | None:
        if state.cost_usd is not None:
            return state.cost_usd, f"charged by {self.provider.name}"
        return self.estimate_cost(request, settings)


def _decode(data: bytes) -> np.ndarray:
    from engine.video import read_video

    with tempfile.NamedTemporaryFile(suffix=".mp4") as tmp:
        tmp.write(data)
        tmp.flush()
        return read_video(tmp.name)


def download(url: str, limit: int, headers: dict[str, str]) -> bytes:
    """GET ``url``'s bytes, stopping past ``limit``; HTTP errors as
    `ProviderHTTPError` (so a 429 or 5xx is retried)."""
    import httpx

    with httpx.stream(
        "GET", url, headers=headers, follow_redirects=True, timeout=60.0
    ) as resp:
        if resp.status_code >= 400:
            resp.read()
            raise ProviderHTTPError(resp.status_code, resp.text[:500])
        chunks, size = [], 0
        for chunk in resp.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        return b"".join(chunks)
