"""Loaded LTX-Video pipelines: one per (model, device, memory mode), kept.

Loading a checkpoint takes seconds to minutes, so a pipeline stays loaded
across scenes and runs until `release_models` (the engine calls it between
heavy stages when ``settings.release_models`` asks); memory modes decide
what is offloaded.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import torch

from engine.ltx.loading import (
    ModelSource,
    device_and_dtype,
    load_pipeline,
    resolve_model,
)

__all__ = [
    "LoadedModel",
    "loaded_model",
    "use_pipeline",
    "release_models",
    "free_device_memory",
]

log = logging.getLogger(__name__)

# The sampler passes LTX-Video's own timesteps to the scheduler, which then
# warns on every call about a schedule we do not choose; keep errors only.
logging.getLogger("diffusers.schedulers.scheduling_flow_match_euler_discrete").setLevel(
    logging.ERROR
)


@dataclass(frozen=True)
class LoadedModel:
    """A pipeline ready on its device, and where its weights came from."""

    pipe: Any  # diffusers' LTXI2VLongMultiPromptPipeline (engine.ltx.extend)
    source: ModelSource
    device: torch.device
    dtype: torch.dtype
    memory_mode: str


_MODELS: dict[tuple[str, str, str], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def loaded_model(
    model: str, device: str | None = None, memory_mode: str = "none"
) -> LoadedModel:
    """Load ``model`` once per process for this device and memory mode."""
    dev, dtype = device_and_dtype(device)
    key = (model, str(dev), memory_mode)
    with _MODELS_LOCK:
        if key not in _MODELS:
            # One model on the device at a time: free the others first.
            _MODELS.clear()
            free_device_memory()
            source = resolve_model(model)
            pipe = load_pipeline(source, dtype)
            _apply_memory_mode(pipe, dev, memory_mode)
            _MODELS[key] = LoadedModel(pipe, source, dev, dtype, memory_mode)
        return _MODELS[key]


def use_pipeline(
    model: str,
    pipe: Any,
    device: str | None = None,
    memory_mode: str = "none",
    random_weights: bool = True,
) -> LoadedModel:
    """Serve an already built pipeline under the name ``model`` (tests, benchmarks)."""
    dev, dtype = device_and_dtype(device)
    source = ModelSource(model, "tiny" if random_weights else "folder")
    _apply_memory_mode(pipe, dev, memory_mode)
    loaded = LoadedModel(pipe, source, dev, dtype, memory_mode)
    with _MODELS_LOCK:
        _MODELS.clear()
        _MODELS[(model, str(dev), memory_mode)] = loaded
    return loaded


def release_models() -> None:
    """Drop every loaded pipeline and return its device memory."""
    with _MODELS_LOCK:
        _MODELS.clear()
    free_device_memory()


def free_device_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _apply_memory_mode(pipe: Any, device: torch.device, mode: str) -> None:
    offload = mode in ("model_offload", "sequential_offload")
    if offload and device.type == "cuda":
        if mode == "model_offload":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.enable_sequential_cpu_offload(device=device)
        return
    if offload:
        log.info("memory_mode %r has no effect on %s", mode, device)
    pipe.to(device)
    if mode == "vae_tiling":
        pipe.vae.enable_tiling()
