"""Memory modes of the LTX backends (``ltx`` and ``ltx2``): what fits a 12-24 GB card.

``settings.memory_mode`` picks one; `MEMORY_MODE_NEEDS` says what each needs
(the studio's Settings page shows it):

- ``none``: every component on the device.
- ``model_offload``: diffusers' ``enable_model_cpu_offload``: whole
  components move to the GPU when used.
- ``sequential_offload``: ``enable_sequential_cpu_offload``: layer by layer
  (slowest, least memory).
- ``vae_tiling``: the VAE decodes in spatial tiles.
- ``fp8``: the transformer's weights stored as float8 (e4m3) and cast to
  the compute dtype layer by layer (diffusers' ``enable_layerwise_casting``):
  about half the transformer's memory of bf16; norms and embeddings stay in
  the compute dtype (diffusers' default skip list).
- ``group_offload``: diffusers' group offloading of the transformer and text
  encoder, one block group at a time, overlapped with compute on a CUDA
  stream: near ``none`` speed with most weights in CPU RAM.

A GGUF transformer (`engine.backends.diffusers.gguf`) is a separate setting
(``settings.transformer_file``), combinable with every mode but ``fp8``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from engine.backend import BackendError, GenerationRequest
from engine.catalog import MEMORY_MODE_NEEDS

__all__ = ["MEMORY_MODE_NEEDS", "apply_memory_mode", "out_of_memory_advice"]

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
    if mode in ("model_offload", "sequential_offload") and cuda:
        if mode == "model_offload":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.enable_sequential_cpu_offload(device=device)
        return
    if mode == "group_offload" and cuda:
        _group_offload(pipe, device)
        return
    if mode in ("model_offload", "sequential_offload", "group_offload"):
        log.info("memory_mode %r has no effect on %s", mode, device)
    pipe.to(device)
    if mode == "vae_tiling":
        pipe.vae.enable_tiling()
    if mode == "fp8":
        transformer = pipe.transformer
        if getattr(transformer, "is_quantized", False):
            raise BackendError(
                "memory_mode 'fp8' does not combine with a GGUF transformer "
                "(settings.transformer_file); it is quantized already: choose "
                "memory_mode 'none' or clear transformer_file"
            )
        transformer.enable_layerwise_casting(
            storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype
        )


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
