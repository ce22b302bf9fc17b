"""Random-weight CLIP and DINOv2 encoders built from configs, for tests and benches.

Like diffusers' ``get_dummy_components``: the real encoder classes and
preprocessing with tiny (or full-size) random weights, so the metrics run for
real without downloading anything. Never imported by the studio or the CLI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.encoders import (
    OPENAI_MEAN,
    OPENAI_STD,
    ClipEncoder,
    DinoEncoder,
    ImagePrep,
    _clip_tokenizer,
    _default_dino_processor,
    _dino_prep,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "TINY_CLIP_CONFIG",
    "tiny_clip",
    "random_clip",
    "save_clip",
    "tiny_dino",
    "random_dino",
]

# A CLIP small enough for unit tests (~3 M parameters, mostly the token table).
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {
        "context_length": 77,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
    },
}


def _clip_from_config(
    model_cfg: dict[str, Any], model_id: str, seed: int, device: Any
) -> ClipEncoder:
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    cfg = json.loads(json.dumps(model_cfg))
    model = CLIP(
        embed_dim=cfg["embed_dim"],
        vision_cfg=cfg["vision_cfg"],
        text_cfg=cfg["text_cfg"],
        quick_gelu=cfg.get("quick_gelu", False),
    )
    size = cfg["vision_cfg"]["image_size"]
    prep = ImagePrep(size, (size, size), OPENAI_MEAN, OPENAI_STD)
    encoder = ClipEncoder(
        model,
        prep,
        _clip_tokenizer(cfg),
        model_id=model_id,
        random_weights=True,
        device=device,
    )
    encoder.model_cfg = cfg  # so save_clip can write it back out
    return encoder


def tiny_clip(seed: int = 0, device: torch.device | str | None = None) -> ClipEncoder:
    """A 32-pixel CLIP with random weights and the real tokenizer (tests)."""
    return _clip_from_config(TINY_CLIP_CONFIG, "tiny-clip", seed, device)


def random_clip(
    model_name: str = "ViT-B-32",
    seed: int = 0,
    device: torch.device | str | None = None,
) -> ClipEncoder:
    """The real architecture ``model_name`` with random weights (benchmarks)."""
    import open_clip

    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        raise ValueError(
            f"unknown open_clip model {model_name!r}; pick one of "
            "open_clip.list_models()"
        )
    return _clip_from_config(cfg, model_name, seed, device)


def save_clip(encoder: ClipEncoder, folder: str | os.PathLike[str]) -> Path:
    """Write a CLIP as an open_clip model folder `load_clip` reads back."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_cfg": encoder.model_cfg,
        "preprocess_cfg": {
            "mean": list(encoder.prep.mean),
            "std": list(encoder.prep.std),
        },
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    state = {
        k: v.detach().cpu().contiguous() for k, v in encoder.model.state_dict().items()
    }
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return folder


def _dino_from_config(
    config: Any, processor: Any, model_id: str, seed: int, device: Any
) -> DinoEncoder:
    import torch
    from transformers import Dinov2Model

    torch.manual_seed(seed)
    model = Dinov2Model(config)
    encoder = DinoEncoder(
        model,
        _dino_prep(processor),
        model_id=model_id,
        random_weights=True,
        device=device,
    )
    encoder.processor = processor  # so tests can save it with save_pretrained
    return encoder


def tiny_dino(seed: int = 0, device: torch.device | str | None = None) -> DinoEncoder:
    """A 32-pixel DINOv2 with random weights (tests)."""
    from transformers import Dinov2Config

    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=8,
        image_size=32,
    )
    return _dino_from_config(
        config, _default_dino_processor(36, 32), "tiny-dino", seed, device
    )


def random_dino(seed: int = 0, device: torch.device | str | None = None) -> DinoEncoder:
    """The dinov2-small architecture with random weights (benchmarks)."""
    from transformers import Dinov2Config

    # facebook/dinov2-small: ViT-S/14, 12 layers, 6 heads, width 384.
    config = Dinov2Config(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        patch_size=14,
        image_size=518,
    )
    return _dino_from_config(
        config, _default_dino_processor(), "dinov2-small-architecture", seed, device
    )
