"""What a user reads when a backend fails, and the check of what it returned.

A backend that raises, runs out of memory, or returns frames of the wrong
type or size leaves a ``failed`` take (`engine.outcome.fail`) whose message
says what to change; these are those messages.
"""

from __future__ import annotations

import sys

import numpy as np

from engine.backend import (
    BackendError,
    GenerationRequest,
    GenerationResult,
    OutOfMemoryError,
)
from engine.redaction import redact

__all__ = ["is_out_of_memory", "failure_message", "check_result"]


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the backend ran out of memory (ours, Python's or
    torch's own error)."""
    if isinstance(exc, (OutOfMemoryError, MemoryError)):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch else None
    return oom is not None and isinstance(exc, oom)


def failure_message(
    exc: BaseException, backend: str, request: GenerationRequest
) -> str:
    """What a user reads when backend ``backend`` failed with ``exc`` (secrets
    redacted: an exception may quote a provider's key)."""
    if is_out_of_memory(exc):
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (
            f"out of memory in backend {backend!r} at {request.width}x"
            f"{request.height}, {request.num_frames} frames"
            + (f" ({detail})" if detail else "")
            + "; lower settings.width/height or the scene's duration, set "
            "settings.memory_mode to 'model_offload' or 'sequential_offload', "
            "or choose the 'fast' quality preset"
        )
    if isinstance(exc, BackendError):
        return redact(exc)
    return (
        f"backend {backend!r} failed: {type(exc).__name__}: {redact(exc)}; "
        "see the log for details"
    )


def check_result(result: GenerationResult, request: GenerationRequest) -> None:
    """Refuse a result whose frames are not what was asked (a `BackendError`)."""
    want = (request.num_frames, request.height, request.width, 3)
    frames = result.frames
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise BackendError(
            f"the backend returned frames of type {type(frames).__name__}, "
            "expected a uint8 numpy array"
        )
    if frames.shape[1:] != want[1:] or frames.shape[0] < 1:
        raise BackendError(
            f"the backend returned frames of shape {tuple(frames.shape)}, "
            f"expected {want}"
        )
