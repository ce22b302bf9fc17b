"""Where a diffusers model's weights come from, and the device it runs on.

Shared by the LTX-Video and LTX-2 loaders (each resolves its own model names
and checks its own checkpoints): the resolved source, the best device with
its dtype, and a folder's tokenizer read offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

__all__ = ["ModelSource", "device_and_dtype", "folder_tokenizer"]


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights come from."""

    name: str
    kind: Literal["tiny", "folder"]
    folder: Path | None = None

    @property
    def random_weights(self) -> bool:
        return self.kind == "tiny"


def device_and_dtype(device: str | None = None) -> tuple[torch.device, torch.dtype]:
    """The best device, and its dtype: bf16 on CUDA, fp32 on CPU."""
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return chosen, torch.bfloat16 if chosen.type == "cuda" else torch.float32


def folder_tokenizer(source: ModelSource) -> Any:
    """The tokenizer of a diffusers folder (``tokenizer/``), offline."""
    from transformers import AutoTokenizer

    assert source.folder is not None, "folder sources carry their folder"
    return AutoTokenizer.from_pretrained(
        source.folder / "tokenizer", local_files_only=True
    )
