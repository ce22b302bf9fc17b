"""The ``fal`` backend: LTX-2 on fal's queue through its official client.

``settings.model`` names the model (default ``fal-ai/ltx-2``): a scene that
continues from a previous take goes to its ``image-to-video`` endpoint with
that take's last frame as ``image_url`` (a data URI), any other to its
``text-to-video`` endpoint; a full endpoint id is used as given. The key is
``FAL_KEY``. The input follows fal's LTX-2 schema: ``prompt``, ``duration``
(6, 8 or 10 s: the shortest that holds the scene; fal bills it, and the clip
is cut back to the scene's length) and ``resolution``. Prices in the default
table are fal's per-second prices for 1080p as published on 2026-01-07
(LTX-2 Pro $0.06/s, Fast $0.04/s); check them before relying on a budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.backend import GenerationRequest, register_backend
from engine.backends.hosted.client import (
    HostedBackend,
    Job,
    JobDeadline,
    JobState,
    ProviderHTTPError,
    data_uri,
)
from engine.backends.hosted.output import fetch_output
from engine.backends.hosted.transport import ProviderTransport

__all__ = ["FalBackend", "FalProvider", "endpoint", "DURATIONS"]

DURATIONS = (6, 8, 10)  # seconds fal's LTX-2 makes


def endpoint(model: str, image: bool) -> str:
    """The fal endpoint of a model for a scene with or without a start image.

    >>> endpoint("fal-ai/ltx-2", image=True)
    'fal-ai/ltx-2/image-to-video'
    >>> endpoint("fal-ai/ltx-2/fast", image=False)
    'fal-ai/ltx-2/text-to-video/fast'
    >>> endpoint("fal-ai/ltx-2/image-to-video", image=True)
    'fal-ai/ltx-2/image-to-video'
    """
    kind = "image-to-video" if image else "text-to-video"
    if model.endswith("/fast"):
        return f"{model.removesuffix('/fast')}/{kind}/fast"
    if "-to-video" in model:
        return model
    return f"{model}/{kind}"


def fal_seconds(request: GenerationRequest) -> int:
    wanted = request.num_frames / request.fps
    return next((d for d in DURATIONS if d >= wanted - 1e-9), DURATIONS[-1])


def fal_input(request: GenerationRequest) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "prompt": request.prompt,
        "duration": str(fal_seconds(request)),
        "resolution": "1080p",
    }
    carried = request.continuity
    if carried is not None and carried.last_frame is not None:
        payload["image_url"] = data_uri(carried.last_frame)
    return payload


def _http_error(exc: Exception) -> ProviderHTTPError:
    return ProviderHTTPError(getattr(exc, "status_code", None), str(exc))


class _FalJob:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def poll(self) -> JobState:
        import fal_client

        try:
            status = self.handle.status()
            if isinstance(status, fal_client.Queued):
                return JobState("queued")
            if isinstance(status, fal_client.InProgress):
                return JobState("running")
            if status.error:
                return JobState("failed", error=str(status.error))
            result = self.handle.get()
        except fal_client.FalClientHTTPError as exc:
            raise _http_error(exc) from None
        video = result.get("video") if isinstance(result, dict) else None
        url = video.get("url") if isinstance(video, dict) else None
        if not url:
            return JobState("failed", error=f"no video in the result: {result!r:.300}")
        return JobState("succeeded", output_url=url, usage=dict(status.metrics or {}))

    def cancel(self) -> None:
        import fal_client

        try:
            self.handle.cancel()
        except fal_client.FalClientHTTPError as exc:
            raise _http_error(exc) from None


class FalProvider:
    name = "fal"
    key_env = "FAL_KEY"

    def __init__(self, transport: Any = None) -> None:
        # an httpx transport under fal's own client (tests use a local fake)
        self.transport = transport

    def _client(self, key: str, deadline: JobDeadline) -> Any:
        import fal_client
        import httpx
        from fal_client.client import USER_AGENT, BackupDomainTransport

        client = fal_client.SyncClient(key=key)
        # fal's own client with its transport under ours: every request under
        # the job's deadline, error answers never in fal's sleeping retry loop
        inner = self.transport or BackupDomainTransport()
        client.__dict__["_client"] = httpx.Client(
            transport=ProviderTransport(inner, deadline),
            headers={"Authorization": f"Key {key}", "User-Agent": USER_AGENT},
            follow_redirects=True,
        )
        return client

    def submit(
        self, key: str, request: GenerationRequest, model: str, deadline: JobDeadline
    ) -> Job:
        import fal_client

        payload = fal_input(request)
        try:
            handle = self._client(key, deadline).submit(
                endpoint(model, "image_url" in payload), arguments=payload
            )
        except fal_client.FalClientHTTPError as exc:
            raise _http_error(exc) from None
        return _FalJob(handle)

    def download(self, url: str, dest: Path, limit: int, deadline: JobDeadline) -> None:
        fetch_output(url, dest, limit, deadline, transport=self.transport)


class FalBackend(HostedBackend):
    name = "fal"
    version = "1"
    default_model = "fal-ai/ltx-2"

    def __init__(self, *, transport: Any = None, **options: Any) -> None:
        super().__init__(**options)
        self.provider = FalProvider(transport)

    def billed_seconds(self, request: GenerationRequest) -> float:
        return float(fal_seconds(request))

    def price_keys(self, request: GenerationRequest) -> list[str]:
        """The endpoint's price, else the model's."""
        model = request.model or self.default_model
        carried = request.continuity
        image = carried is not None and carried.last_frame is not None
        return [endpoint(model, image), model]


register_backend("fal", FalBackend)
