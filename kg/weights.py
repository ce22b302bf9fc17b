"""Model weights on this machine: a folder, or a snapshot in the local HF cache.

The one lookup every model loader uses (the video backends through
``engine.models``, the observer's encoders through ``scoring.encoders``); it
lives in the bottom layer because both sides need it and neither may import
the other. It never downloads: ``storygraph fetch-models`` does that.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["WeightsUnavailable", "local_weights"]


class WeightsUnavailable(RuntimeError):
    """Weights are not on this machine; the message says what to run."""


def local_weights(
    source: str | os.PathLike[str],
    *,
    allow_patterns: tuple[str, ...] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    fetch_hint: str = "storygraph fetch-models",
) -> Path:
    """``source`` itself when it is a folder, else its local Hugging Face snapshot.

    Raises `WeightsUnavailable` (saying to run ``fetch_hint``) when neither
    exists; huggingface_hub's several not-found errors all end there.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            str(source),
            allow_patterns=list(allow_patterns) if allow_patterns else None,
            local_files_only=True,
            cache_dir=cache_dir,
        )
    except Exception as exc:  # LocalEntryNotFoundError, HFValidationError, ...
        raise WeightsUnavailable(
            f"model {str(source)!r} is neither a folder nor in the local Hugging "
            f"Face cache ({type(exc).__name__}); run '{fetch_hint}'"
        ) from None
    return Path(folder)
