"""Where an LTX-2 model comes from: ``tiny-random``, a folder, or the HF cache.

- ``tiny-random`` (LTX-2.0), ``tiny-random-2.3``, ``tiny-random-2.3-distilled``,
  ``tiny-random-2.5``: random weights built in code (`engine.backends.ltx2.tiny`),
  for tests and smoke runs; results are labelled random weights.
- a local folder in diffusers format (``model_index.json`` of an LTX-2
  pipeline: transformer, vae, audio_vae, vocoder, connectors, text_encoder,
  tokenizer, scheduler); a ``latent_upsampler/`` folder beside them is loaded
  too (the two-stage route);
- a Hugging Face id (or catalog name) already in the local cache.

Which LTX-2 release a folder holds (`model_version_of`) is read from its
configs, the entries diffusers' own classes switch on (the catalog's
`engine.catalog.LTX2_VERSIONS` says which): a Gemma 4 text encoder, a
feed-forward without bias, timestep-independent prompt modulation or a
duration head mean 2.5; prompt modulation, gated attention or per-modality
text projections mean 2.3; none of them 2.0.

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
from engine.catalog import checkpoint_kind
from engine.models import (
    DISTILLED_LORA_FILE,
    CheckpointMismatchError,
    is_tiny,
    read_safetensors_header,
    resolve_cached,
)

__all__ = [
    "SUPPORTED_PIPELINES",
    "resolve_model",
    "load_pipeline",
    "load_tokenizer",
    "checkpoint_kind_of",
    "model_version_of",
    "distilled_lora",
]

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
    if is_tiny(name):
        from engine.backends.ltx2.tiny import VERSION_OF_TINY

        if name not in VERSION_OF_TINY:
            raise BackendError(
                f"model {name!r} is not a random-weight LTX-2 build; choose one of "
                f"{', '.join(sorted(VERSION_OF_TINY))}"
            )
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


def transformer_class() -> type:
    """The class of LTX-2's transformer (what a GGUF file loads into)."""
    from diffusers import LTX2VideoTransformer3DModel

    return LTX2VideoTransformer3DModel


def load_pipeline(
    source: ModelSource, dtype: torch.dtype, *, transformer: bool = True
) -> Any:
    """Build (tiny) or load (folder) the pipeline on the CPU; the latent
    upsampler, when the folder has one, as ``pipe.latent_upsampler``;
    ``transformer=False`` leaves a folder's transformer unloaded (a GGUF
    file takes its place)."""
    if source.kind == "tiny":
        from engine.backends.ltx2.tiny import VERSION_OF_TINY, build_random_pipeline

        version, _ = VERSION_OF_TINY[source.name]
        return build_random_pipeline(dtype=dtype, version=version)
    from diffusers import LTX2ConditionPipeline

    assert source.folder is not None, "folder sources carry their folder"
    log.info("loading LTX-2 from %s (%s)", source.folder, dtype)
    try:
        skip = {} if transformer else {"transformer": None}
        pipe = LTX2ConditionPipeline.from_pretrained(
            source.folder, torch_dtype=dtype, local_files_only=True, **skip
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
    # a dev model's stage 2 refines with the makers' distilled LoRA, when here
    pipe.distilled_lora_file = distilled_lora(source)
    return pipe


@functools.lru_cache(maxsize=16)
def checkpoint_kind_of(model: str) -> tuple[str, str]:
    """``(kind, how it was decided)`` of an LTX-2 model: ``dev``, ``distilled``
    or ``tiny``, read from the checkpoint where it can be.

    A folder says so when its transformer's weights metadata (the makers'
    single files carry their ``config`` and ``model_version`` there) or its
    ``model_index.json``, ``transformer/config.json`` or
    ``scheduler/scheduler_config.json`` (``_name_or_path`` of a conversion)
    names a distilled checkpoint; otherwise the model's name decides, and
    the recipe says so. The makers' own code never guesses: their
    pipelines take the distilled checkpoint as a separate argument.
    """
    if is_tiny(model):
        if "distill" in model:
            return "distilled", "a distilled random-weight build (made in code)"
        return "tiny", "random weights built in code"
    try:
        source = resolve_model(model)
    except BackendError:
        return checkpoint_kind(model), "the model's name (not available locally)"
    if source.folder is None:
        return "tiny", "random weights built in code"
    for where, text in _declarations(source.folder):
        if "distill" in text.lower():
            return "distilled", f"{where} names a distilled checkpoint"
    kind = checkpoint_kind(model)
    if kind == "distilled":
        return kind, "the model's name (its configs and weights do not say)"
    return "dev", "nothing in its configs or weights names a distilled checkpoint"


def _declarations(folder: Path) -> list[tuple[str, str]]:
    """What a folder's configs and weight headers say of themselves."""
    found = []
    for rel in (
        "model_index.json",
        "transformer/config.json",
        "scheduler/scheduler_config.json",
    ):
        path = folder / rel
        if path.is_file() and path.stat().st_size < 1_000_000:
            found.append(
                (rel, json.dumps(json.loads(path.read_text()).get("_name_or_path", "")))
            )
    for weights in sorted((folder / "transformer").glob("*.safetensors"))[:1]:
        try:
            _, metadata = read_safetensors_header(weights)
        except (OSError, ValueError):
            continue
        found.append((f"transformer/{weights.name} metadata", json.dumps(metadata)))
    return found


def distilled_lora(source: ModelSource) -> Path | None:
    """The makers' distilled LoRA for a dev model's stage 2, when it is here:
    in the model folder (its root or ``loras/``), else the catalog's
    ``ltx-2-distilled-lora`` in the local Hugging Face cache. None: absent."""
    if source.folder is not None:
        for candidate in (
            source.folder / DISTILLED_LORA_FILE,
            *sorted(source.folder.glob("*distilled-lora*.safetensors")),
            *sorted((source.folder / "loras").glob("*distilled-lora*.safetensors")),
        ):
            if candidate.is_file():
                return candidate
    try:
        cached = resolve_cached("ltx-2-distilled-lora") / DISTILLED_LORA_FILE
    except BackendError:
        return None
    return cached if cached.is_file() else None


@functools.lru_cache(maxsize=16)
def model_version_of(model: str) -> tuple[str, str]:
    """``(version, how it was read)`` of an LTX-2 model: ``2.0``, ``2.3`` or
    ``2.5``, from its configs (see the module docstring); a model not here
    is taken as 2.0 and the answer says so.

    >>> model_version_of("tiny-random-2.3")
    ('2.3', 'a random-weight LTX-2.3 build (made in code)')
    """
    if is_tiny(model):
        from engine.backends.ltx2.tiny import VERSION_OF_TINY

        version = VERSION_OF_TINY.get(model, ("2.0", False))[0]
        return version, f"a random-weight LTX-{version} build (made in code)"
    try:
        source = resolve_model(model)
    except BackendError:
        return "2.0", "taken as LTX-2.0: the model is not available locally"
    assert source.folder is not None, "folder sources carry their folder"
    return version_of_folder(source.folder)


def _config(folder: Path, rel: str) -> dict[str, Any]:
    path = folder / rel
    if not path.is_file() or path.stat().st_size > 1_000_000:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def version_of_folder(folder: Path) -> tuple[str, str]:
    """The release a diffusers-format LTX-2 folder holds, and the entry that
    says so (the first marker found, newest release first)."""
    transformer = _config(folder, "transformer/config.json")
    text = _config(folder, "text_encoder/config.json")
    connectors = _config(folder, "connectors/config.json")
    model_type = str(text.get("model_type", ""))
    if model_type.startswith("gemma4"):
        return "2.5", f"text_encoder/config.json model_type is {model_type}"
    if transformer.get("use_prompt_adaln_single") is False:
        return "2.5", "transformer/config.json use_prompt_adaln_single is false"
    if transformer.get("ff_bias") is False:
        return "2.5", "transformer/config.json ff_bias is false"
    if (folder / "duration_head" / "config.json").is_file():
        return "2.5", "the folder has a duration_head"
    for key in ("cross_attn_mod", "gated_attn"):
        if transformer.get(key) is True:
            return "2.3", f"transformer/config.json {key} is true"
    if connectors.get("per_modality_projections") is True:
        return "2.3", "connectors/config.json per_modality_projections is true"
    return "2.0", "no LTX-2.3 or 2.5 marker in its configs"
