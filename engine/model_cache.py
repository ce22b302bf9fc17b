"""One owner of loaded models: a cache keyed by family, released by family.

Loading a checkpoint takes seconds to minutes, so a model stays loaded across
scenes, runs and stories until its owner releases it. Every heavy model of a
process goes through one `ModelCache`: the diffusers pipelines of the LTX
backends (family ``ltx`` or ``ltx2``) and, when the front ends wire them so,
the scoring encoders (``clip``, ``dino``). The front ends' wiring
(`studio.wiring.models`) owns the process's cache and hands it to the
backends it builds and to the observer; `PROCESS_MODELS` is that instance.

A family holds one model at a time (a new model name, device or memory mode
for ``ltx`` replaces the loaded ``ltx`` one), and ``release("ltx")`` frees
only that family: a loaded ``ltx2`` pipeline stays. Used as a context
manager, a cache frees everything it holds on exit (LTX-2's own
``ltx_pipelines`` hold their models the same way, in a ``with`` block).

A family marked ``exclusive`` (the GPU-sized pipelines) frees the other
exclusive families on the same device before it loads, so two 20-60 GB
pipelines never meet on one GPU; on the CPU both stay.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["ModelCache", "PROCESS_MODELS", "free_device_memory"]

M = TypeVar("M")


@dataclass
class _Entry:
    key: Hashable
    model: Any
    device: str
    exclusive: bool


class ModelCache:
    """Loaded models by family; each family one model; released per family."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.RLock()

    def get(
        self,
        family: str,
        key: Hashable,
        load: Callable[[], M],
        *,
        device: str = "cpu",
        exclusive: bool = False,
    ) -> M:
        """The family's model for ``key``, loaded with ``load()`` when it is not
        the one held (the family's previous model is freed first)."""
        with self._lock:
            entry = self._entries.get(family)
            if entry is not None and entry.key == key:
                return entry.model
            self._make_room(family, device, exclusive)
            model = load()
            self._entries[family] = _Entry(key, model, device, exclusive)
            return model

    def put(
        self,
        family: str,
        key: Hashable,
        model: M,
        *,
        device: str = "cpu",
        exclusive: bool = False,
    ) -> M:
        """Hold an already built ``model`` as the family's (tests, benchmarks)."""
        with self._lock:
            self._make_room(family, device, exclusive)
            self._entries[family] = _Entry(key, model, device, exclusive)
            return model

    def held(self, family: str) -> Any | None:
        """The family's loaded model, or None."""
        with self._lock:
            entry = self._entries.get(family)
            return None if entry is None else entry.model

    def families(self) -> list[str]:
        """The families with a model loaded now."""
        with self._lock:
            return sorted(self._entries)

    def release(self, family: str | None = None) -> None:
        """Free ``family``'s model (every family's when None) and its memory."""
        with self._lock:
            for name in [family] if family is not None else list(self._entries):
                self._drop(name)
        free_device_memory()

    def _make_room(self, family: str, device: str, exclusive: bool) -> None:
        """Free the family's model and, for an exclusive one on a GPU, the
        other exclusive families' on that device."""
        self._drop(family)
        if exclusive and device != "cpu":
            for other, held in list(self._entries.items()):
                if held.exclusive and held.device == device:
                    self._drop(other)
        free_device_memory()

    def _drop(self, family: str) -> None:
        self._entries.pop(family, None)

    def __enter__(self) -> ModelCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def free_device_memory() -> None:
    """Collect garbage and return cached CUDA memory (when torch is loaded)."""
    gc.collect()
    torch = sys.modules.get("torch")  # never imported: no device memory to free
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


#: the process's cache: the front ends' wiring owns it and hands it on
PROCESS_MODELS = ModelCache()
