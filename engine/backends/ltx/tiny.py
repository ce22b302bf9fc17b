"""Random-weight LTX-Video components built in code from configs.

The way diffusers' own test suite builds its dummy components: tiny
transformer, VAE and T5 text encoder from small configs, and a Unigram
tokenizer built in memory (no files, no network). The VAE keeps the real
compression (8 in time, 32 in space) so every frame and size rule of the real
model holds for the tiny one.

Selectable as model ``tiny-random``; every result from it is labelled
``random_weights=True``. ``mid`` and ``ltx-2b`` configs serve the benchmark.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from engine.backends.ltx.pipeline import pipeline_class
from engine.models import TINY_MODEL_ID

__all__ = [
    "TINY_MODEL_ID",
    "tiny_transformer_config",
    "tiny_vae_config",
    "mid_vae_config",
    "ltx_2b_transformer_config",
    "ltx_vae_config",
    "build_tokenizer",
    "build_random_pipeline",
]


_NO_SCALING_LAST = (True, True, True, False)  # 3 x 2 in time and space, as LTX


def tiny_transformer_config() -> dict[str, Any]:
    """One-layer transformer over 8 latent channels, 16-wide text features."""
    return dict(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=1,
        caption_channels=16,
    )


def tiny_vae_config() -> dict[str, Any]:
    """8-channel causal VAE with LTX's compression (patch 4 x 2^3 = 32, 2^3 = 8)."""
    return dict(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=_NO_SCALING_LAST,
        decoder_spatio_temporal_scaling=_NO_SCALING_LAST,
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4,
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )


def mid_vae_config() -> dict[str, Any]:
    """A VAE a few times smaller than LTX's (benchmarks the encode cost on CPU)."""
    config = tiny_vae_config()
    config.update(
        block_out_channels=(32, 64, 64, 64),
        decoder_block_out_channels=(32, 64, 64, 64),
        layers_per_block=(2, 2, 2, 2, 2),
        decoder_layers_per_block=(2, 2, 2, 2, 2),
    )
    return config


def ltx_2b_transformer_config() -> dict[str, Any]:
    """LTX-Video 2B (0.9.x) transformer: 28 layers, 32 heads x 64, T5-XXL text."""
    return dict(
        in_channels=128,
        out_channels=128,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=32,
        attention_head_dim=64,
        cross_attention_dim=2048,
        num_layers=28,
        caption_channels=4096,
    )


def ltx_vae_config() -> dict[str, Any]:
    """LTX-Video 0.9.x VAE (diffusers' defaults for ``AutoencoderKLLTXVideo``)."""
    return {}


def build_tokenizer(max_length: int = 128) -> Any:
    """T5 tokenizer over a-z built in memory (a Unigram model, no files)."""
    from transformers import T5TokenizerFast

    letters = [(chr(ord("a") + i), -2.0 - 0.01 * i) for i in range(26)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0), *letters]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=max_length)


def _text_encoder(d_model: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=32, d_model=d_model, d_kv=8, d_ff=32, num_layers=1, num_heads=2
    )
    return T5EncoderModel(config)


def build_random_pipeline(
    transformer: Literal["tiny", "ltx-2b"] = "tiny",
    vae: Literal["tiny", "mid", "ltx"] = "tiny",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Any:
    """Random-weight pipeline from configs; deterministic for a given ``seed``.

    Examples
    --------
    >>> pipe = build_random_pipeline()
    >>> pipe.vae_spatial_compression_ratio, pipe.vae_temporal_compression_ratio
    (32, 8)
    """
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXVideoTransformer3DModel,
    )

    t_config = (
        tiny_transformer_config()
        if transformer == "tiny"
        else ltx_2b_transformer_config()
    )
    v_config = {"tiny": tiny_vae_config, "mid": mid_vae_config, "ltx": ltx_vae_config}[
        vae
    ]()
    if v_config.get("latent_channels", 128) != t_config["in_channels"]:
        raise ValueError(
            f"vae {vae!r} has {v_config.get('latent_channels', 128)} latent channels, "
            f"transformer {transformer!r} expects {t_config['in_channels']}"
        )
    torch.manual_seed(seed)
    transformer_model = LTXVideoTransformer3DModel(**t_config)
    torch.manual_seed(seed)
    vae_model = AutoencoderKLLTXVideo(**v_config)
    torch.manual_seed(seed)
    text_encoder = _text_encoder(t_config["caption_channels"])
    pipe = pipeline_class()(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae_model.eval(),  # built modules start in training mode (dropout)
        text_encoder=text_encoder.eval(),
        tokenizer=build_tokenizer(),
        transformer=transformer_model.eval(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
