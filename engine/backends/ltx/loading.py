"""Resolve and load LTX-Video pipelines; refuse checkpoints that mismatch configs.

A model name is one of:

- ``tiny-random``: random weights built in code (`engine.backends.ltx.tiny`);
- a local folder in diffusers format (``model_index.json`` + components);
- a Hugging Face id (or a catalog name from `engine.models`) resolved from the
  local cache with ``local_files_only=True``: generation never downloads;
  ``storygraph fetch-models`` does.

Before weights are loaded, every component's ``config.json`` is compared with
the tensor names and shapes in its ``.safetensors`` headers (read without
loading tensors), and the checkpoint kind the config claims (dev/distilled) with
the one the weights declare. A mismatch raises `CheckpointMismatchError` naming
the weight file and the config, not a stack trace from deep in a loader.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import torch

from engine.backend import BackendError
from engine.backends.diffusers.loading import (
    ModelSource,
    device_and_dtype,
    folder_tokenizer,
)
from engine.backends.ltx.pipeline import pipeline_class
from engine.models import (
    TINY_MODEL_ID,
    CheckpointMismatchError,
    read_safetensors_header,
    resolve_cached,
)

__all__ = [
    "load_tokenizer",
    "CheckpointMismatchError",
    "ModelSource",
    "resolve_model",
    "read_safetensors_header",
    "check_checkpoint",
    "load_pipeline",
    "folder_tokenizer",
    "device_and_dtype",
    "save_pipeline",
    "pipeline_class",
]

log = logging.getLogger(__name__)


SUPPORTED_PIPELINES = ("LTXConditionPipeline", "LTXPipeline", "LTXImageToVideoPipeline")
_CHECKED_COMPONENTS = ("transformer", "vae", "text_encoder")
# T5 ties its input embedding to ``shared.weight``; checkpoints keep only one.
_TIED_SUFFIXES = ("embed_tokens.weight",)


def resolve_model(name: str) -> ModelSource:
    """Find ``name`` locally: ``tiny-random``, a folder, or the HF cache.

    Raises
    ------
    BackendError
        When the model is not available locally; the message gives the
        ``storygraph fetch-models`` command that fetches it.
    """
    if not name:
        raise BackendError(
            "no model set for the ltx backend; set settings.model to a local "
            "folder, a Hugging Face id, or 'tiny-random' (see `storygraph models`)"
        )
    if name == TINY_MODEL_ID:
        return ModelSource(name, "tiny")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise BackendError(
                f"model folder {path} has no model_index.json; point settings.model "
                "at a diffusers-format LTX-Video folder"
            )
        return ModelSource(name, "folder", path)
    return ModelSource(name, "folder", resolve_cached(name))


def _weight_files(component_dir: Path) -> list[Path]:
    return sorted(component_dir.glob("*.safetensors"))


def _expected_shapes(component: str, config: dict[str, Any]) -> dict[str, list[int]]:
    """Parameter shapes a component built from ``config`` has (on the meta device)."""
    with torch.device("meta"):
        if component == "text_encoder":
            from transformers import T5Config, T5EncoderModel

            model = T5EncoderModel(T5Config.from_dict(_strip_private(config)))
        else:
            from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel

            cls = (
                LTXVideoTransformer3DModel
                if component == "transformer"
                else AutoencoderKLLTXVideo
            )
            model = cls.from_config(config)
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _strip_private(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _declared_kind(text: str) -> str | None:
    lowered = text.lower()
    if "distill" in lowered:
        return "distilled"
    if "-dev" in lowered or '"dev"' in lowered:
        return "dev"
    return None


def _check_component(folder: Path, component: str) -> None:
    component_dir = folder / component
    config_path = component_dir / "config.json"
    files = _weight_files(component_dir)
    if not config_path.is_file() or not files:
        raise CheckpointMismatchError(
            f"{component_dir} needs config.json and .safetensors weights; "
            "re-fetch the model with `storygraph fetch-models`"
        )
    config = json.loads(config_path.read_text())
    found: dict[str, list[int]] = {}
    metadata_text = ""
    for file in files:
        shapes, metadata = read_safetensors_header(file)
        found.update(shapes)
        metadata_text += json.dumps(metadata) + file.name
    expected = _expected_shapes(component, config)
    names = ", ".join(f.name for f in files)
    wrong = [
        f"{k}: weights {found[k]} vs config {expected[k]}"
        for k in expected
        if k in found and found[k] != expected[k]
    ]
    unexpected = sorted(set(found) - set(expected))
    missing = sorted(
        k for k in set(expected) - set(found) if not k.endswith(_TIED_SUFFIXES)
    )
    if wrong or unexpected or missing:
        details = wrong[:3] + [f"unexpected {k}" for k in unexpected[:3]]
        details += [f"missing {k}" for k in missing[:3]]
        raise CheckpointMismatchError(
            f"weights {component_dir / names} do not match config {config_path}: "
            f"{len(wrong)} shape mismatches, {len(unexpected)} unexpected and "
            f"{len(missing)} missing tensors (e.g. {'; '.join(details)}). The "
            "weights belong to another model size or version: re-fetch the model "
            "or use the config that came with these weights"
        )
    config_kind = _declared_kind(json.dumps(config.get("_name_or_path", "")))
    weights_kind = _declared_kind(metadata_text)
    if config_kind and weights_kind and config_kind != weights_kind:
        raise CheckpointMismatchError(
            f"config {config_path} is for a {config_kind} checkpoint but weights "
            f"{component_dir / names} are {weights_kind}; use the config that came "
            f"with these weights (a {weights_kind} model needs its own config and "
            "step counts)"
        )


def check_checkpoint(folder: Path) -> None:
    """Refuse a diffusers folder whose weights do not match its configs.

    Raises
    ------
    CheckpointMismatchError
        Naming the weight file and the config that disagree.
    """
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    pipeline_class = index.get("_class_name", "")
    if pipeline_class not in SUPPORTED_PIPELINES:
        raise CheckpointMismatchError(
            f"{index_path} describes a {pipeline_class or 'unknown'} pipeline; the "
            f"ltx backend loads {', '.join(SUPPORTED_PIPELINES)} folders"
        )
    for component in _CHECKED_COMPONENTS:
        _check_component(folder, component)


@functools.lru_cache(maxsize=4)
def load_tokenizer(name: str) -> Any:
    """The model's T5 tokenizer alone (cheap: no weights), cached per model."""
    source = resolve_model(name)
    if source.kind == "tiny":
        from engine.backends.ltx.tiny import (
            build_tokenizer,  # test builder, only when asked
        )

        return build_tokenizer()
    return folder_tokenizer(source)


def transformer_class() -> type:
    """The class of LTX-Video's transformer (what a GGUF file loads into)."""
    from diffusers import LTXVideoTransformer3DModel

    return LTXVideoTransformer3DModel


def load_pipeline(
    source: ModelSource, dtype: torch.dtype, *, transformer: bool = True
) -> Any:
    """Build (tiny) or load (folder, after `check_checkpoint`) the pipeline on
    CPU; ``transformer=False`` leaves a folder's transformer unloaded (a GGUF
    file takes its place)."""
    if source.kind == "tiny":
        from engine.backends.ltx.tiny import build_random_pipeline

        return build_random_pipeline(dtype=dtype)
    assert source.folder is not None, "folder sources carry their folder"
    check_checkpoint(source.folder)
    log.info("loading LTX-Video from %s (%s)", source.folder, dtype)
    try:
        skip = {} if transformer else {"transformer": None}
        pipe = pipeline_class().from_pretrained(
            source.folder, torch_dtype=dtype, local_files_only=True, **skip
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointMismatchError(
            f"could not load the model in {source.folder}: {exc}"
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_pipeline(pipe: Any, folder: Path) -> Path:
    """Save a pipeline as a standard diffusers ``LTXConditionPipeline`` folder.

    The folder loads with plain diffusers as well as with `load_pipeline`
    (both pipelines hold the same five components).
    """
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXConditionPipeline

    LTXConditionPipeline(**pipe.components).save_pretrained(folder)
    return folder
