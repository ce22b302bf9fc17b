"""Memory modes of the LTX backends (``ltx`` and ``ltx2``): what fits a 12-24 GB card.

``settings.memory_mode`` picks one; `MEMORY_MODE_NEEDS` says what each needs
(the studio's Settings page shows it):

- ``none``: every component on the device.
- ``model_offload``: diffusers' ``enable_model_cpu_offload``: whole
  components move to the GPU when used.
- ``sequential_offload``: ``enable_sequential_cpu_offload``: layer by layer
  (slowest, least memory).
- ``vae_tiling``: the VAE decodes in spatial tiles.
- ``fp8``: the transformer blocks' attention and feed-forward linears stored
  as float8 (e4m3) and cast up to the compute dtype at each call (diffusers'
  ``apply_layerwise_casting`` hooks), exactly the layers LTX-2's own cast
  picks (Lightricks/LTX-2 ``ltx-core`` ``quantization/fp8_cast.py``,
  ``_FP8_CAST_LINEAR_SUFFIXES``: ``to_q``, ``to_k``, ``to_v``, ``to_out.0``,
  ``ff.net.0.proj``, ``ff.net.2`` under ``transformer_blocks.``); time
  embeddings, modulation, caption and audio projections stay in the compute
  dtype. The cast runs on the CPU before anything moves, so the device only
  ever receives the float8 weights (the makers cast tensor by tensor while
  loading; diffusers' ``enable_layerwise_casting`` after ``to(device)`` would
  first place the whole bf16 transformer on the GPU).
- ``group_offload``: diffusers' group offloading of the transformer and text
  encoder, one block group at a time, overlapped with compute on a CUDA
  stream: near ``none`` speed with most weights in CPU RAM.

A GGUF transformer (`engine.backends.diffusers.gguf`) is a separate setting
(``settings.transformer_file``), combinable with every mode but ``fp8``.

Modules a pipeline holds as plain attributes (`EXTRA_MODULES`: LTX-2's latent
upsampler, which ``LTX2ConditionPipeline.__init__`` does not name) are not
moved by ``DiffusionPipeline.to`` nor by any offload; they are placed here
with the pipeline's dtype, on the device when the pipeline is resident, else
on the CPU (the sampler brings them to the execution device for their call).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from engine.backend import BackendError, GenerationRequest
from engine.catalog import MEMORY_MODE_NEEDS

__all__ = [
    "MEMORY_MODE_NEEDS",
    "EXTRA_MODULES",
    "FP8_LINEAR_SUFFIXES",
    "apply_memory_mode",
    "fp8_linears",
    "out_of_memory_advice",
]

OFFLOAD_MODES = ("model_offload", "sequential_offload", "group_offload")
# Pipeline attributes diffusers does not place (not in the pipeline's __init__).
EXTRA_MODULES = ("latent_upsampler",)
# LTX-2's fp8 cast: the block linears it stores as float8 (ltx-core fp8_cast.py).
FP8_LINEAR_SUFFIXES = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2")

log = logging.getLogger(__name__)


def apply_memory_mode(
    pipe: Any, device: torch.device, mode: str, dtype: torch.dtype
) -> None:
    """Place ``pipe`` on ``device`` the way ``mode`` asks (see the module doc)."""
    if mode not in MEMORY_MODE_NEEDS:
        raise BackendError(
            f"memory_mode must be one of {', '.join(MEMORY_MODE_NEEDS)}, got {mode!r}"
        )
    cuda = device.type == "cuda"
    _cast_components(pipe, dtype)  # on the CPU, where it was loaded: no move yet
    if mode == "fp8":
        _cast_fp8(pipe.transformer, dtype)  # before anything reaches the device
    offloaded = cuda and mode in OFFLOAD_MODES
    _place_extras(pipe, torch.device("cpu") if offloaded else device, dtype)
    if mode in ("model_offload", "sequential_offload") and cuda:
        if mode == "model_offload":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.enable_sequential_cpu_offload(device=device)
        return
    if mode == "group_offload" and cuda:
        _group_offload(pipe, device)
        return
    if mode in OFFLOAD_MODES:
        log.info("memory_mode %r has no effect on %s", mode, device)
    pipe.to(device)
    if mode == "vae_tiling":
        pipe.vae.enable_tiling()


def fp8_linears(transformer: torch.nn.Module) -> list[tuple[str, torch.nn.Linear]]:
    """The linears LTX-2's fp8 cast stores as float8: the blocks' attention
    projections and feed-forward layers (video and audio), nothing else."""
    return [
        (name, module)
        for name, module in transformer.named_modules()
        if isinstance(module, torch.nn.Linear)
        and name.startswith("transformer_blocks.")
        and name.endswith(FP8_LINEAR_SUFFIXES)
    ]


def _cast_fp8(transformer: Any, dtype: torch.dtype) -> None:
    from diffusers.hooks import apply_layerwise_casting

    if getattr(transformer, "is_quantized", False):
        raise BackendError(
            "memory_mode 'fp8' does not combine with a GGUF transformer "
            "(settings.transformer_file); it is quantized already: choose "
            "memory_mode 'none' or clear transformer_file"
        )
    for _, linear in fp8_linears(transformer):
        apply_layerwise_casting(
            linear,
            storage_dtype=torch.float8_e4m3fn,
            compute_dtype=dtype,
            skip_modules_pattern=(),
        )


def _cast_components(pipe: Any, dtype: torch.dtype) -> None:
    """Every component in ``dtype`` (loaders load in it already: this only
    touches one that differs; a quantized transformer keeps its storage)."""
    for component in pipe.components.values():
        if not isinstance(component, torch.nn.Module):
            continue
        if getattr(component, "is_quantized", False):
            continue
        first = next(component.parameters(), None)
        if first is not None and first.is_floating_point() and first.dtype != dtype:
            component.to(dtype=dtype)


def _place_extras(pipe: Any, device: torch.device, dtype: torch.dtype) -> None:
    for name in EXTRA_MODULES:
        module = getattr(pipe, name, None)
        if isinstance(module, torch.nn.Module):
            module.to(device=device, dtype=dtype)


def _group_offload(pipe: Any, device: torch.device) -> None:
    from diffusers.hooks import apply_group_offloading

    heavy = ("transformer", "text_encoder")
    for name, component in pipe.components.items():
        if not isinstance(component, torch.nn.Module):
            continue
        if name in heavy:
            apply_group_offloading(
                component,
                onload_device=device,
                offload_device=torch.device("cpu"),
                offload_type="leaf_level",
                use_stream=True,
            )
        else:
            component.to(device)


def out_of_memory_advice(request: GenerationRequest) -> str:
    """What to lower after the device ran out of memory, mode by mode."""
    lower = []
    if request.memory_mode in ("none", "vae_tiling"):
        lower.append("set memory_mode to fp8, group_offload or model_offload")
    elif request.memory_mode in ("fp8", "model_offload", "group_offload"):
        lower.append("set memory_mode to sequential_offload, or use a GGUF transformer")
    lower.append(
        f"lower the size ({request.width}x{request.height}) or num_frames "
        f"({request.num_frames})"
    )
    return "the GPU ran out of memory; " + ", or ".join(lower)
