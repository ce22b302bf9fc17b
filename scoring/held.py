"""The scoring encoders held once: by the front ends' model cache, or here.

`get_clip` and `get_dino` load an encoder once (`scoring.encoders`) and hand
the same one back; a front end passes its model cache (``models``, the
``engine.model_cache.ModelCache`` the wiring owns, seen here through the
`ModelHolder` protocol: scoring and the engine do not import each other), so
one owner holds the encoders beside the video models and releases them by
family (``clip``, ``dino``). Without one, this module holds them for the
process.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Protocol

from scoring.encoders import ImageEncoder, load_clip, load_dino

if TYPE_CHECKING:
    import torch

    from scoring.encoders import ClipEncoder, DinoEncoder

__all__ = [
    "ModelHolder",
    "ENCODER_FAMILIES",
    "get_clip",
    "get_dino",
    "release_encoders",
]


class ModelHolder(Protocol):
    """The front ends' model cache (``engine.model_cache.ModelCache``), seen
    from here: scoring and the engine do not import each other."""

    def get(self, family: str, key: Any, load: Any, **kw: Any) -> Any: ...

    def release(self, family: str | None = None) -> None: ...


_lock = threading.Lock()
_loaded: dict[tuple[str, str, str], ImageEncoder] = {}
ENCODER_FAMILIES = ("clip", "dino")


def _get(
    kind: str, loader: Any, source: Any, device: Any, models: ModelHolder | None
) -> Any:
    key = (kind, str(source or ""), str(device or ""))
    if models is not None:  # the process's owner holds it
        return models.get(kind, key, lambda: loader(source, device=device))
    with _lock:
        if key not in _loaded:
            _loaded[key] = loader(source, device=device)
        return _loaded[key]


def get_clip(
    source: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = None,
    models: ModelHolder | None = None,
) -> ClipEncoder:
    """`load_clip` once, held by ``models`` (else by this module); a failed
    load is retried next time."""
    return _get("clip", load_clip, source, device, models)


def get_dino(
    source: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = None,
    models: ModelHolder | None = None,
) -> DinoEncoder:
    """`load_dino` once, held by ``models`` (else by this module); a failed
    load is retried next time."""
    return _get("dino", load_dino, source, device, models)


def release_encoders(models: ModelHolder | None = None) -> None:
    """Drop the encoders `get_clip`/`get_dino` hold (in ``models`` when given)
    and return their device memory; other families in ``models`` stay.

    The next ``get_*`` call loads again. An `Observer` that already holds an
    encoder keeps it until the observer itself is dropped.
    """
    if models is not None:
        for family in ENCODER_FAMILIES:
            models.release(family)
    with _lock:
        _loaded.clear()
    gc.collect()
    torch = sys.modules.get("torch")  # never imported: no device memory to return
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
