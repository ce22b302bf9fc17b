"""Loaded diffusers pipelines of the LTX backends, held in the model cache.

Each LTX family (``ltx``: LTX-Video, ``ltx2``: LTX-2) keeps one pipeline in
the `engine.model_cache.ModelCache` it is given (the process's by default),
per (model, device, memory mode, GGUF transformer); memory modes decide what
is offloaded (`engine.backends.diffusers.memory`). The family's backend
passes its loader, so this module imports no backend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.backends.diffusers.loading import ModelSource, device_and_dtype
from engine.backends.diffusers.memory import apply_memory_mode
from engine.model_cache import PROCESS_MODELS, ModelCache, free_device_memory

__all__ = [
    "Family",
    "LoadedModel",
    "loaded_model",
    "use_pipeline",
    "release_models",
    "free_device_memory",
]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class LoadedModel:
    """A pipeline ready on its device, and where its weights came from."""

    pipe: Any  # ltx: LTXI2VLongMultiPromptPipeline; ltx2: LTX2ConditionPipeline
    source: ModelSource
    device: torch.device
    dtype: torch.dtype
    memory_mode: str
    transformer_file: str = ""


def loaded_model(
    model: str,
    device: str | None = None,
    memory_mode: str = "none",
    *,
    family: str = "ltx",
    loader: Any = None,
    transformer_file: str = "",
    cache: ModelCache | None = None,
) -> LoadedModel:
    """Load ``model`` once into ``cache`` (the process's by default) for this
    device, memory mode and GGUF transformer (``transformer_file``, "" for the
    checkpoint's own). ``loader`` resolves and loads the family's checkpoints
    (``resolve_model(name)``, ``load_pipeline(source, dtype)``); the backend
    of the family passes its own."""
    dev, dtype = device_and_dtype(device)
    key = (model, str(dev), memory_mode, transformer_file)

    def load() -> LoadedModel:
        if loader is None:
            raise ValueError(f"no {family} model is loaded and no loader was given")
        source = loader.resolve_model(model)
        if transformer_file and source.folder is not None:
            # the GGUF file instead of the checkpoint's transformer: never
            # both in memory (peak RAM would be the two together)
            pipe = loader.load_pipeline(source, dtype, transformer=False)
            pipe.transformer = _gguf_from_folder(
                loader, source.folder, family, transformer_file, dtype
            )
        else:
            pipe = loader.load_pipeline(source, dtype)
        if transformer_file and source.folder is None:
            pipe.transformer = _gguf_transformer(
                pipe, source, family, transformer_file, dtype
            )
        apply_memory_mode(pipe, dev, memory_mode, dtype)
        return LoadedModel(pipe, source, dev, dtype, memory_mode, transformer_file)

    return (cache or PROCESS_MODELS).get(
        family, key, load, device=_device_key(dev), exclusive=True
    )


def _gguf_from_folder(
    loader: Any, folder: Path, family: str, file: str, dtype: torch.dtype
) -> Any:
    """The GGUF ``file`` as the transformer of the checkpoint in ``folder``
    (its ``transformer/config.json``), checked for family and width first."""
    import json

    from engine.backends.diffusers.gguf import check_gguf, load_gguf

    config = json.loads((folder / "transformer" / "config.json").read_text())
    width = config.get("num_attention_heads", 0) * config.get("attention_head_dim", 0)
    check_gguf(file, family, width or None)  # type: ignore[arg-type]
    return load_gguf(loader.transformer_class(), file, folder / "transformer", dtype)


def _gguf_transformer(
    pipe: Any, source: ModelSource, family: str, file: str, dtype: torch.dtype
) -> Any:
    """The GGUF ``file`` loaded in place of the checkpoint's transformer, after
    checking it holds this family's architecture at this width."""
    import tempfile

    from engine.backends.diffusers.gguf import check_gguf, load_gguf

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
    cache: ModelCache | None = None,
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
    key = (model, str(dev), memory_mode, transformer_file)
    return (cache or PROCESS_MODELS).put(
        family, key, loaded, device=_device_key(dev), exclusive=True
    )


def release_models(family: str | None = None, cache: ModelCache | None = None) -> None:
    """Drop ``family``'s loaded pipeline (every family's when None)."""
    (cache or PROCESS_MODELS).release(family)


def _device_key(device: torch.device) -> str:
    """``cuda`` and ``cuda:0`` are one GPU to the cache (its eviction compares)."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


@dataclass(frozen=True)
class Family:
    """One LTX family's runtime: its model cache family and its loader
    (``resolve_model``, ``load_pipeline``), bound once by its backend."""

    name: str
    loader: Any

    def loaded(
        self,
        model: str,
        device: str | None = None,
        memory_mode: str = "none",
        *,
        transformer_file: str = "",
        cache: ModelCache | None = None,
    ) -> LoadedModel:
        """The family's pipeline ``model``, loaded once into ``cache``."""
        return loaded_model(
            model,
            device,
            memory_mode,
            family=self.name,
            loader=self.loader,
            transformer_file=transformer_file,
            cache=cache,
        )

    def use(
        self, model: str, pipe: Any, device: str | None = None, **kw: Any
    ) -> LoadedModel:
        """Serve a built pipeline of the family as ``model`` (tests, benchmarks)."""
        return use_pipeline(model, pipe, device, family=self.name, **kw)

    def release(self, cache: ModelCache | None = None) -> None:
        """Free the family's loaded pipeline; other families' stay."""
        release_models(self.name, cache)
