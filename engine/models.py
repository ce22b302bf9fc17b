"""The model catalog: what StoryGraph can fetch, what is local, and what each needs.

`fetch_models` downloads through huggingface_hub's ``snapshot_download`` with
allow-patterns (only the files a model needs; interrupted downloads resume)
and then verifies what it fetched (every required file present, safetensors
headers readable). `model_status` reports what is available from the local
cache without touching the network; generation resolves models the same way
(`resolve_cached`), so it never downloads.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.errors import BackendError, CheckpointMismatchError
from kg.weights import WeightsUnavailable, local_weights

__all__ = [
    "TINY_MODEL_ID",
    "is_tiny",
    "CheckpointMismatchError",
    "read_safetensors_header",
    "ModelSpec",
    "CATALOG",
    "ModelStatus",
    "get_spec",
    "resolve_cached",
    "model_status",
    "verify_model",
    "fetch_models",
    "DISTILLED_LORA_FILE",
]

log = logging.getLogger(__name__)

# The random-weight LTX-Video built in code for smoke runs (engine.backends.ltx.tiny).
TINY_MODEL_ID = "tiny-random"


def is_tiny(model: str) -> bool:
    """Whether ``model`` names a random-weight build made in code:
    ``tiny-random`` or a versioned one (``tiny-random-2.3``).

    >>> is_tiny("tiny-random"), is_tiny("tiny-random-2.3-distilled"), is_tiny("x")
    (True, True, False)
    """
    return model == TINY_MODEL_ID or model.startswith(TINY_MODEL_ID + "-")


def read_safetensors_header(path: Path) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Tensor shapes and ``__metadata__`` of a ``.safetensors`` file (header only).

    Plain file reading (no torch): `verify_model` checks a snapshot with it,
    so listing the models stays fast.
    """
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise CheckpointMismatchError(
                f"{path} is not a safetensors file (too short)"
            )
        (length,) = struct.unpack("<Q", raw)
        if length > 100_000_000:
            raise CheckpointMismatchError(f"{path} has an implausible header size")
        header = json.loads(handle.read(length))
    metadata = header.pop("__metadata__", None) or {}
    return {key: list(info["shape"]) for key, info in header.items()}, metadata


_DIFFUSERS_PATTERNS = (
    "model_index.json",
    "scheduler/*.json",
    "tokenizer/*",
    "text_encoder/*.json",
    "text_encoder/*.safetensors",
    "transformer/*.json",
    "transformer/*.safetensors",
    "vae/*.json",
    "vae/*.safetensors",
)
# LTX-2 in diffusers format: the folders of its model_index.json (LTX2Pipeline:
# transformer, vae, audio_vae, vocoder, connectors, text_encoder, tokenizer,
# scheduler), plus the latent upsampler when the repository has one. The
# repository's root also holds the original single-file checkpoints
# (tens of GB each), which the patterns leave out.
_LTX2_PATTERNS = (
    "model_index.json",
    "scheduler/*.json",
    "tokenizer/*",
    *(
        f"{c}/{ext}"
        for c in (
            "text_encoder",
            "transformer",
            "vae",
            "audio_vae",
            "vocoder",
            "connectors",
            "latent_upsampler",
        )
        for ext in ("*.json", "*.safetensors")
    ),
)
_LTX2_REQUIRED = (
    "model_index.json",
    "transformer/config.json",
    "vae/config.json",
    "audio_vae/config.json",
    "vocoder/config.json",
    "connectors/config.json",
    "text_encoder/config.json",
)
_DIFFUSERS_REQUIRED = (
    "model_index.json",
    "transformer/config.json",
    "vae/config.json",
    "text_encoder/config.json",
)


@dataclass(frozen=True)
class ModelSpec:
    """One fetchable model."""

    name: str  # short catalog name used on the command line
    repo_id: str
    role: Literal["video", "observer"]
    allow_patterns: tuple[str, ...]
    required: tuple[str, ...]  # files that must exist after a fetch
    needs: str  # what it takes to use: download size, memory
    description: str = ""
    # what could not be checked against stored sources ("" when all was)
    unverified: str = ""
    backend: str = ""  # the video backend that loads it ("" for observers)
    # the model family's release (engine.catalog.LTX2_VERSIONS) it holds; the
    # backend still reads it from the downloaded configs
    version: str = ""


# The makers' stage-2 LoRA for LTX-2 19B dev (Lightricks/LTX-2, repo root).
DISTILLED_LORA_FILE = "ltx-2-19b-distilled-lora-384.safetensors"

CATALOG: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="ltx-video",
        repo_id="Lightricks/LTX-Video-0.9.5",
        role="video",
        allow_patterns=_DIFFUSERS_PATTERNS,
        required=_DIFFUSERS_REQUIRED,
        needs="~25 GB download (T5-XXL included); CUDA GPU with 12+ GB "
        "(model_offload) or 24+ GB (none)",
        description="LTX-Video 2B dev, 768x512 at 24 fps",
        backend="ltx",
    ),
    ModelSpec(
        name="ltx-video-13b-distilled",
        repo_id="Lightricks/LTX-Video-0.9.7-distilled",
        role="video",
        allow_patterns=_DIFFUSERS_PATTERNS,
        required=_DIFFUSERS_REQUIRED,
        needs="~45 GB download; CUDA GPU with 24+ GB (model_offload) or 48+ GB",
        description="LTX-Video 13B distilled: 8 steps, no guidance",
        backend="ltx",
    ),
    ModelSpec(
        name="ltx-2",
        repo_id="Lightricks/LTX-2",
        role="video",
        allow_patterns=_LTX2_PATTERNS,
        required=_LTX2_REQUIRED,
        needs="~80 GB download (Gemma 3 12B included); CUDA GPU with 24+ GB "
        "(fp8 + group_offload, or a GGUF Q8 transformer) or 80 GB (none)",
        description="LTX-2 19B dev: video with synchronized sound (ltx2 backend)",
        version="2.0",
        unverified="repo id, model_index.json (LTX2Pipeline) and the connectors/, "
        "tokenizer/ and vocoder/ configs seen in stored sources; file sizes and "
        "a latent_upsampler/ folder not verified",
        backend="ltx2",
    ),
    ModelSpec(
        name="ltx-2-distilled",
        repo_id="blanchon/LTX-2-Distilled-diffusers",
        role="video",
        allow_patterns=_LTX2_PATTERNS,
        required=_LTX2_REQUIRED,
        needs="~80 GB download; as ltx-2, 8 steps without guidance",
        description="LTX-2 19B distilled in diffusers format (a community "
        "conversion of Lightricks' distilled checkpoint)",
        unverified="a community repository: only its vocoder/config.json was seen "
        "in stored sources; Lightricks publishes the distilled model as a single "
        "file (ltx-2-19b-distilled) in Lightricks/LTX-2",
        backend="ltx2",
        version="2.0",
    ),
    ModelSpec(
        name="ltx-2.3",
        repo_id="diffusers/LTX-2.3-Diffusers",
        role="video",
        allow_patterns=_LTX2_PATTERNS,
        required=_LTX2_REQUIRED,
        needs="~90 GB download (Gemma 3 12B included); CUDA GPU with 32+ GB "
        "(fp8 + group_offload) or 80 GB (none)",
        description="LTX-2.3 22B dev: the makers' recipe is 30 steps with CFG, "
        "STG and modality guidance (4 transformer passes a step)",
        unverified="repo id from diffusers' LTX-2 documentation; file list, sizes "
        "and configs not seen",
        backend="ltx2",
        version="2.3",
    ),
    ModelSpec(
        name="ltx-2.3-distilled",
        repo_id="diffusers/LTX-2.3-Distilled-Diffusers",
        role="video",
        allow_patterns=_LTX2_PATTERNS,
        required=_LTX2_REQUIRED,
        needs="~90 GB download; as ltx-2.3, 8 steps without guidance",
        description="LTX-2.3 22B distilled: 8 steps, one pass a step",
        unverified="repo id from diffusers' LTX-2 documentation; file list, sizes "
        "and configs not seen",
        backend="ltx2",
        version="2.3",
    ),
    ModelSpec(
        name="ltx-2.5",
        repo_id="Lightricks/LTX-2.5-Diffusers",
        role="video",
        allow_patterns=_LTX2_PATTERNS,
        required=_LTX2_REQUIRED,
        needs="~90 GB download (a Gemma 4 text encoder); CUDA GPU with 32+ GB "
        "(fp8 + group_offload) or 80 GB (none)",
        description="LTX-2.5 22B with a Gemma 4 text encoder (2.3's recipe; its "
        "DFR detail decoder and duration head are not used here)",
        unverified="repo id from diffusers' LTX-2 documentation; file list, sizes "
        "and configs not seen",
        backend="ltx2",
        version="2.5",
    ),
    ModelSpec(
        name="ltx-2-distilled-lora",
        repo_id="Lightricks/LTX-2",
        role="video",
        allow_patterns=(DISTILLED_LORA_FILE,),
        required=(DISTILLED_LORA_FILE,),
        needs="~7 GB download; used by the ltx2 backend's stage 2 with a dev model",
        description="LTX-2 19B distilled LoRA (rank 384): the makers' stage-2 "
        "refiner on the dev transformer (ltx_pipelines TI2VidTwoStagesPipeline)",
        unverified="file name from Lightricks/LTX-2's README (January 2026); its "
        "size and that diffusers' LTX2 LoRA loader reads it as is not verified",
        backend="ltx2",
    ),
    ModelSpec(
        name="clip-vit-b-32",
        repo_id="timm/vit_base_patch32_clip_224.openai",
        role="observer",
        allow_patterns=("open_clip_config.json", "open_clip_model.safetensors"),
        required=("open_clip_config.json", "open_clip_model.safetensors"),
        needs="~0.6 GB download; CPU or GPU",
        description="CLIP ViT-B/32 for the observer (open_clip "
        "hf-hub:timm/vit_base_patch32_clip_224.openai)",
    ),
    ModelSpec(
        name="dinov2-small",
        repo_id="facebook/dinov2-small",
        role="observer",
        allow_patterns=("config.json", "model.safetensors", "preprocessor_config.json"),
        required=("config.json", "model.safetensors"),
        needs="~0.1 GB download; CPU or GPU",
        description="DINOv2 ViT-S/14 for the observer's subject consistency",
    ),
)


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    folder: Path | None  # the local snapshot, None when not fetched
    problems: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.folder is not None and not self.problems


def get_spec(name: str) -> ModelSpec | None:
    """The catalog entry for a short name or a repo id, if any."""
    for spec in CATALOG:
        if name in (spec.name, spec.repo_id):
            return spec
    return None


def _snapshot(repo_id: str, patterns: tuple[str, ...] | None, **kwargs: object) -> Path:
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(
            repo_id, allow_patterns=list(patterns) if patterns else None, **kwargs
        )
    )


def resolve_cached(name: str) -> Path:
    """Local snapshot folder of a catalog name or HF id, without any download.

    Raises
    ------
    BackendError
        When it is not in the local cache; the message says how to fetch it.
    """
    spec = get_spec(name)
    repo_id = spec.repo_id if spec else name
    if "/" not in repo_id:
        raise BackendError(
            f"model {name!r} is neither a folder, a Hugging Face id (org/name) nor "
            f"a catalog name ({', '.join(s.name for s in CATALOG)})"
        )
    fetch = spec.name if spec else repo_id
    try:
        return local_weights(
            repo_id, allow_patterns=spec.allow_patterns if spec else None
        )
    except WeightsUnavailable as exc:
        raise BackendError(
            f"model {name!r} is not in the local Hugging Face cache; fetch it with "
            f"`storygraph fetch-models {fetch}` (or point settings.model at a "
            f"local folder)"
        ) from exc


def verify_model(spec: ModelSpec, folder: Path) -> tuple[str, ...]:
    """Problems with a fetched snapshot (missing files, unreadable weights)."""

    problems = [
        f"missing {rel}" for rel in spec.required if not (folder / rel).is_file()
    ]
    weights = list(folder.rglob("*.safetensors"))
    if not weights:
        problems.append("no .safetensors weights")
    for file in weights:
        try:
            read_safetensors_header(file)
        except (BackendError, ValueError, OSError) as exc:
            problems.append(f"{file.relative_to(folder)} unreadable: {exc}")
    return tuple(problems)


def model_status(specs: tuple[ModelSpec, ...] = CATALOG) -> list[ModelStatus]:
    """What is available locally (no network)."""
    statuses = []
    for spec in specs:
        try:
            folder = local_weights(spec.repo_id, allow_patterns=spec.allow_patterns)
        except WeightsUnavailable:  # not in the cache
            statuses.append(ModelStatus(spec, None))
            continue
        statuses.append(ModelStatus(spec, folder, verify_model(spec, folder)))
    return statuses


def fetch_models(
    names: list[str] | None = None,
    *,
    on_fetched: Callable[[ModelStatus], None] | None = None,
) -> list[ModelStatus]:
    """Download (resumably) and verify catalog models; all of them by default.

    Raises
    ------
    BackendError
        For a name that is not in the catalog (nothing is fetched then).
    """
    specs = []
    for name in names or [s.name for s in CATALOG]:
        spec = get_spec(name)
        if spec is None:
            raise BackendError(
                f"unknown model {name!r}; choose from "
                f"{', '.join(s.name for s in CATALOG)}"
            )
        specs.append(spec)
    results = []
    for spec in specs:
        log.info("fetching %s (%s)", spec.name, spec.repo_id)
        folder = _snapshot(spec.repo_id, spec.allow_patterns)
        status = ModelStatus(spec, folder, verify_model(spec, folder))
        results.append(status)
        if on_fetched is not None:
            on_fetched(status)
    return results
