"""Loaded LTX pipelines: one per (family, model, device, memory mode, GGUF), kept.

Loading a checkpoint takes seconds to minutes, so a pipeline stays loaded
across scenes and runs until `release_models` (the engine calls it between
heavy stages when ``settings.release_models`` asks); memory modes decide
what is offloaded (`engine.ltx.memory`). Both LTX backends share it
(``family`` ``ltx``: LTX-Video, ``ltx2``: LTX-2), so only one model is on the
device at a time whichever backend asked last.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import torch

from engine.ltx.loading import ModelSource, device_and_dtype
from engine.ltx.memory import apply_memory_mode

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

    pipe: Any  # ltx: LTXI2VLongMultiPromptPipeline; ltx2: LTX2ConditionPipeline
    source: ModelSource
    device: torch.device
    dtype: torch.dtype
    memory_mode: str
    transformer_file: str = ""


_MODELS: dict[tuple[str, ...], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def _loader(family: str) -> Any:
    if family == "ltx2":
        from engine.ltx2 import loading as ltx2_loading

        return ltx2_loading
    from engine.ltx import loading

    return loading


def loaded_model(
    model: str,
    device: str | None = None,
    memory_mode: str = "none",
    *,
    family: str = "ltx",
    transformer_file: str = "",
) -> LoadedModel:
    """Load ``model`` once per process for this device, memory mode and GGUF
    transformer (``transformer_file``, "" for the checkpoint's own)."""
    dev, dtype = device_and_dtype(device)
    key = (family, model, str(dev), memory_mode, transformer_file)
    with _MODELS_LOCK:
        if key not in _MODELS:
            # One model on the device at a time: free the others first.
            _MODELS.clear()
            free_device_memory()
            loading = _loader(family)
            source = loading.resolve_model(model)
            pipe = loading.load_pipeline(source, dtype)
            if transformer_file:
                pipe.transformer = _gguf_transformer(
                    pipe, source, family, transformer_file, dtype
                )
            apply_memory_mode(pipe, dev, memory_mode, dtype)
            _MODELS[key] = LoadedModel(
                pipe, source, dev, dtype, memory_mode, transformer_file
            )
        return _MODELS[key]


def _gguf_transformer(
    pipe: Any, source: ModelSource, family: str, file: str, dtype: torch.dtype
) -> Any:
    """The GGUF ``file`` loaded in place of the checkpoint's transformer, after
    checking it holds this family's architecture at this width."""
    import tempfile

    from engine.ltx.gguf import check_gguf, load_gguf

    transformer = pipe.transformer
    width = (
        transformer.config.num_attention_heads * transformer.config.attention_head_dim
    )
    check_gguf(file, family, width)  # type: ignore[arg-type]
    if source.folder is not None:
        return load_gguf(type(transformer), file, source.folder / "transformer", dtype)
    with tempfile.TemporaryDirectory() as folder:  # a built model: its config
        transformer.save_config(folder)
        return load_gguf(type(transformer), file, folder, dtype)


def use_pipeline(
    model: str,
    pipe: Any,
    device: str | None = None,
    memory_mode: str = "none",
    random_weights: bool = True,
    *,
    family: str = "ltx",
    transformer_file: str = "",
) -> LoadedModel:
    """Serve an already built pipeline under the name ``model`` (tests,
    benchmarks), with its transformer replaced by ``transformer_file`` (GGUF)."""
    dev, dtype = device_and_dtype(device)
    source = ModelSource(model, "tiny" if random_weights else "folder")
    if transformer_file:
        pipe.transformer = _gguf_transformer(
            pipe, source, family, transformer_file, dtype
        )
    apply_memory_mode(pipe, dev, memory_mode, dtype)
    loaded = LoadedModel(pipe, source, dev, dtype, memory_mode, transformer_file)
    with _MODELS_LOCK:
        _MODELS.clear()
        _MODELS[(family, model, str(dev), memory_mode, transformer_file)] = loaded
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
