"""The ``replicate`` backend: LTX-Video on Replicate through its official client.

The model is ``settings.model`` (``owner/name`` or ``owner/name:version``;
default ``lightricks/ltx-video``) and the key ``REPLICATE_API_TOKEN``. The
input follows that model's schema on Replicate: ``prompt``,
``negative_prompt``, ``length`` (frames), ``target_size``, ``aspect_ratio``,
``steps``, ``cfg``, ``seed`` and, to continue a scene, ``image`` (the
previous take's last frame as a data URI). Everything else is
`engine.backends.hosted.client.HostedBackend`'s.
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

__all__ = ["ReplicateBackend", "ReplicateProvider"]

# The aspect ratios the model offers, as width / height.
ASPECTS = {"1:1": 1.0, "3:2": 1.5, "2:3": 2 / 3, "16:9": 16 / 9, "9:16": 9 / 16,
           "4:3": 4 / 3, "3:4": 3 / 4}  # fmt: skip
_STATUS = {
    "starting": "queued",
    "processing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}


def replicate_input(request: GenerationRequest) -> dict[str, Any]:
    """The model input of a request (see the module docstring)."""
    ratio = request.width / request.height
    aspect = min(ASPECTS, key=lambda a: abs(ASPECTS[a] - ratio))
    payload: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "length": request.num_frames,
        "target_size": min(request.width, request.height),
        "aspect_ratio": aspect,
        "steps": request.steps,
        "cfg": request.guidance,
        "seed": request.seed,
    }
    carried = request.continuity
    if carried is not None and carried.last_frame is not None:
        payload["image"] = data_uri(carried.last_frame)
    return payload


def _http_error(exc: Exception) -> ProviderHTTPError:
    # error answers reach us as ProviderHTTPError from the transport already;
    # this is the client's own complaint (the message is sanitised and redacted)
    status = getattr(exc, "status", None)
    detail = getattr(exc, "detail", None) or getattr(exc, "title", None) or str(exc)
    return ProviderHTTPError(status, str(detail))


class _ReplicateJob:
    def __init__(self, prediction: Any) -> None:
        self.prediction = prediction

    def poll(self) -> JobState:
        from replicate.exceptions import ReplicateError

        try:
            self.prediction.reload()
        except ReplicateError as exc:
            raise _http_error(exc) from None
        p = self.prediction
        output = p.output[0] if isinstance(p.output, list) and p.output else p.output
        metrics = {k: float(v) for k, v in (p.metrics or {}).items()
                   if isinstance(v, int | float)}  # fmt: skip
        return JobState(
            status=_STATUS.get(p.status, "running"),  # type: ignore[arg-type]
            output_url=str(output) if output else None,
            error=str(p.error) if p.error else None,
            usage=metrics,
        )

    def cancel(self) -> None:
        from replicate.exceptions import ReplicateError

        try:
            self.prediction.cancel()
        except ReplicateError as exc:
            raise _http_error(exc) from None


class ReplicateProvider:
    name = "Replicate"
    key_env = "REPLICATE_API_TOKEN"

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url  # None: Replicate's own API

    def _client(self, key: str, deadline: JobDeadline) -> Any:
        import replicate

        # every request under the job's deadline; error answers never reach
        # the client's own retry loop (it sleeps through any Retry-After)
        return replicate.Client(
            api_token=key,
            base_url=self.base_url,
            transport=ProviderTransport(deadline=deadline),
        )

    def submit(
        self, key: str, request: GenerationRequest, model: str, deadline: JobDeadline
    ) -> Job:
        from replicate.exceptions import ReplicateError

        client = self._client(key, deadline)
        where = (
            {"version": model.split(":", 1)[1]} if ":" in model else {"model": model}
        )
        try:
            prediction = client.predictions.create(
                input=replicate_input(request), **where
            )
        except ReplicateError as exc:
            raise _http_error(exc) from None
        return _ReplicateJob(prediction)

    def download(self, url: str, dest: Path, limit: int, deadline: JobDeadline) -> None:
        fetch_output(url, dest, limit, deadline)


class ReplicateBackend(HostedBackend):
    name = "replicate"
    version = "1"
    default_model = "lightricks/ltx-video"

    def __init__(self, *, base_url: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.provider = ReplicateProvider(base_url)


register_backend("replicate", ReplicateBackend)
