"""Where an LTX-2 model comes from: ``tiny-random``, a folder, or the HF cache.

- ``tiny-random``: random weights built in code (`engine.backends.ltx2.tiny`), for
  tests and smoke runs; results are labelled random weights.
- a local folder in diffusers format (``model_index.json`` of an LTX-2
  pipeline: transformer, vae, audio_vae, vocoder, connectors, text_encoder,
  tokenizer, scheduler); a ``latent_upsampler/`` folder beside them is loaded
  too (the two-stage route);
- a Hugging Face id (or catalog name) already in the local cache.

Nothing here downloads: `storygraph fetch-models` does that.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import torch

from engine.backend import BackendError
from engine.backends.diffusers.loading import ModelSource, folder_tokenizer
from engine.models import TINY_MODEL_ID, CheckpointMismatchError, resolve_cached

__all__ = ["SUPPORTED_PIPELINES", "resolve_model", "load_pipeline", "load_tokenizer"]

log = logging.getLogger(__name__)

SUPPORTED_PIPELINES = (
    "LTX2Pipeline",
    "LTX2ConditionPipeline",
    "LTX2ImageToVideoPipeline",
)
UPSAMPLER_FOLDER = "latent_upsampler"


def resolve_model(name: str) -> ModelSource:
    """Find ``name`` locally (see the module docstring).

    Raises
    ------
    BackendError
        When it is not available locally, with the command that fetches it.
    """
    if not name:
        raise BackendError(
            "no model set for the ltx2 backend; set settings.model to a local "
            "folder, a Hugging Face id, or 'tiny-random' (see `storygraph models`)"
        )
    if name == TINY_MODEL_ID:
        return ModelSource(name, "tiny")
    path = Path(name).expanduser()
    folder = path if path.is_dir() else resolve_cached(name)
    index = folder / "model_index.json"
    if not index.is_file():
        raise BackendError(
            f"model folder {folder} has no model_index.json; point settings.model "
            "at a diffusers-format LTX-2 folder"
        )
    kind = json.loads(index.read_text()).get("_class_name", "")
    if kind not in SUPPORTED_PIPELINES:
        raise CheckpointMismatchError(
            f"{index} describes a {kind or 'unknown'} pipeline; the ltx2 backend "
            f"loads {', '.join(SUPPORTED_PIPELINES)} folders (for LTX-Video "
            "checkpoints choose the ltx backend)"
        )
    return ModelSource(name, "folder", folder)


@functools.lru_cache(maxsize=4)
def load_tokenizer(name: str) -> Any:
    """The model's Gemma tokenizer alone (no weights), cached per model."""
    source = resolve_model(name)
    if source.kind == "tiny":
        from engine.backends.ltx2.tiny import (
            build_tokenizer,  # test builder, only when asked
        )

        return build_tokenizer()
    return folder_tokenizer(source)


def load_pipeline(source: ModelSource, dtype: torch.dtype) -> Any:
    """Build (tiny) or load (folder) the pipeline on the CPU; the latent
    upsampler, when the folder has one, as ``pipe.latent_upsampler``."""
    if source.kind == "tiny":
        from engine.backends.ltx2.tiny import build_random_pipeline

        return build_random_pipeline(dtype=dtype)
    from diffusers import LTX2ConditionPipeline

    assert source.folder is not None, "folder sources carry their folder"
    log.info("loading LTX-2 from %s (%s)", source.folder, dtype)
    try:
        pipe = LTX2ConditionPipeline.from_pretrained(
            source.folder, torch_dtype=dtype, local_files_only=True
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointMismatchError(
            f"could not load the LTX-2 model in {source.folder}: {exc}"
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    pipe.latent_upsampler = None
    upsampler = source.folder / UPSAMPLER_FOLDER
    if (upsampler / "config.json").is_file():
        from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

        pipe.latent_upsampler = LTX2LatentUpsamplerModel.from_pretrained(
            upsampler, torch_dtype=dtype, local_files_only=True
        ).eval()
    return pipe
