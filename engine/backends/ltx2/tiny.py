"""Random-weight LTX-2 components built in code from configs (no files, no network).

The way diffusers' own LTX-2 tests build their dummy components, with two
differences: the video VAE keeps LTX-2's real compression (8 in time, 32 in
space) so every frame and size rule of the real model holds for the tiny one,
and the text side needs no download: a two-layer Gemma 3 built from a config
and a Gemma tokenizer whose Unigram vocabulary (a-z) is made in memory, the
way the tiny LTX-Video builds its T5 tokenizer (`engine.backends.ltx.tiny`). The
vocoder upsamples by the mel hop (160), so a second of latents is a second of
sound, as in the real model.

Selectable as model ``tiny-random`` (LTX-2.0), ``tiny-random-2.3``,
``tiny-random-2.3-distilled`` or ``tiny-random-2.5`` of the ``ltx2`` backend;
every result is labelled ``random_weights=True``. ``mid`` serves the
benchmark, ``full`` is LTX-2's own transformer architecture (19B with the
audio stream; GPU only).

Versions differ the way diffusers' classes tell them apart (their arguments'
documentation in ``transformer_ltx2.py`` and ``connectors.py``):

- **2.3**: gated attention and prompt (cross-attention) modulation in the
  transformer, STG through its perturbed-attention processor, per-modality
  text projections in the connectors (so no caption projection in the
  transformer). The tiny one has two blocks; its presets perturb the last
  (`engine.catalog`), the real model's the makers' block 28. Built with
  ``layers=29`` it has block 28 too (the recipe tests).
- **2.5**: as 2.3, with a feed-forward without bias, timestep-independent
  prompt modulation (``use_prompt_adaln_single=False``) and a Gemma 4
  (``gemma4_unified``) text encoder.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

__all__ = [
    "VERSION_OF_TINY",
    "transformer_config",
    "build_tokenizer",
    "build_text_encoder",
    "build_components",
    "build_random_pipeline",
]

Size = Literal["tiny", "mid", "full"]
Version = Literal["2.0", "2.3", "2.5"]

# tiny model id -> (version, distilled)
VERSION_OF_TINY: dict[str, tuple[Version, bool]] = {
    "tiny-random": ("2.0", False),
    "tiny-random-2.3": ("2.3", False),
    "tiny-random-2.3-distilled": ("2.3", True),
    "tiny-random-2.5": ("2.5", False),
}


def _version_config(version: Version, size: Size) -> dict[str, Any]:
    """What a version changes in the transformer's config (see the module
    docstring)."""
    if version == "2.0":
        return {}
    config: dict[str, Any] = dict(
        gated_attn=True,
        cross_attn_mod=True,
        audio_gated_attn=True,
        audio_cross_attn_mod=True,
        perturbed_attn=True,
        use_prompt_embeddings=False,
    )
    if size == "tiny":
        config["num_layers"] = 2  # STG on block 1 (the tiny presets' block)
    if version == "2.5":
        config.update(ff_bias=False, use_prompt_adaln_single=False)
    return config


_TEXT_WIDTH = 16  # the tiny Gemma's hidden size (caption channels)
_TEXT_LAYERS = 2


def transformer_config(size: Size = "tiny") -> dict[str, Any]:
    """The transformer's config: tiny, mid (benchmark) or LTX-2's full size.

    ``full`` is diffusers' ``LTX2VideoTransformer3DModel`` defaults (LTX-2 19B:
    48 layers, 32 x 128 video heads, 32 x 64 audio heads, Gemma 3 12B text).
    """
    if size == "full":
        return {}
    if size == "mid":
        return dict(
            in_channels=128,
            out_channels=128,
            num_attention_heads=8,
            attention_head_dim=64,
            cross_attention_dim=512,
            audio_in_channels=128,
            audio_out_channels=128,
            audio_num_attention_heads=8,
            audio_attention_head_dim=32,
            audio_cross_attention_dim=256,
            num_layers=4,
            caption_channels=_TEXT_WIDTH,
            rope_double_precision=False,
        )
    return dict(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=8,
        audio_out_channels=8,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=1,
        qk_norm="rms_norm_across_heads",
        caption_channels=_TEXT_WIDTH,
        rope_double_precision=False,
        rope_type="split",
    )


def build_tokenizer(max_length: int = 1024) -> Any:
    """A Gemma tokenizer over a-z built in memory (Unigram model, no files).

    It adds ``<bos>`` like Gemma's and pads on the left like LTX-2's encoder.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import GemmaTokenizerFast

    letters = [(chr(ord("a") + i), -2.0 - 0.01 * i) for i in range(26)]
    specials = [("<pad>", 0.0), ("<eos>", 0.0), ("<bos>", 0.0), ("<unk>", 0.0)]
    vocab = [*specials, ("▁", -1.0), *letters]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", 2)]
    )
    return GemmaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
        model_max_length=max_length,
    )


def _text_config(vocab_size: int) -> dict[str, Any]:
    """The tiny Gemma's text model (Gemma 3 and Gemma 4 alike)."""
    return dict(
        vocab_size=vocab_size,
        hidden_size=_TEXT_WIDTH,
        intermediate_size=32,
        num_hidden_layers=_TEXT_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=2048,
        sliding_window=64,
    )


def build_text_encoder(vocab_size: int = 31, version: Version = "2.0") -> Any:
    """A two-layer Gemma 3 (text and a one-layer vision tower) from a config;
    for 2.5 a two-layer Gemma 4 (``Gemma4UnifiedForConditionalGeneration``,
    the class diffusers' ``LTX2Pipeline`` takes for LTX-2.5), text only."""
    if version == "2.5":
        from transformers.models.gemma4_unified import (
            Gemma4UnifiedConfig,
            Gemma4UnifiedForConditionalGeneration,
        )

        config4 = Gemma4UnifiedConfig(
            text_config=dict(
                **_text_config(vocab_size),
                layer_types=["sliding_attention", "full_attention"],
            ),
            vision_config=None,
            audio_config=None,
        )
        return Gemma4UnifiedForConditionalGeneration(config4)
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    config = Gemma3Config(
        text_config=_text_config(vocab_size),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        ),
        mm_tokens_per_image=4,
        boi_token_index=0,
        eoi_token_index=0,
        image_token_index=0,
    )
    return Gemma3ForConditionalGeneration(config)


def _connectors(version: Version, transformer: dict[str, Any]) -> Any:
    from diffusers.pipelines.ltx2 import LTX2TextConnectors

    if version != "2.0":  # per-modality projections to the transformer's widths
        video = transformer.get("cross_attention_dim", 4096)
        audio = transformer.get("audio_cross_attention_dim", 2048)
        return LTX2TextConnectors(
            caption_channels=_TEXT_WIDTH,
            text_proj_in_factor=_TEXT_LAYERS + 1,
            video_connector_num_attention_heads=2,
            video_connector_attention_head_dim=video // 2,
            video_connector_num_layers=1,
            video_connector_num_learnable_registers=None,
            video_gated_attn=True,
            audio_connector_num_attention_heads=2,
            audio_connector_attention_head_dim=audio // 2,
            audio_connector_num_layers=1,
            audio_connector_num_learnable_registers=None,
            audio_gated_attn=True,
            connector_rope_base_seq_len=32,
            rope_double_precision=False,
            rope_type="split",
            per_modality_projections=True,
            video_hidden_dim=video,
            audio_hidden_dim=audio,
        )
    return LTX2TextConnectors(
        caption_channels=_TEXT_WIDTH,
        text_proj_in_factor=_TEXT_LAYERS + 1,
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_double_precision=False,
        rope_type="split",
    )


def _video_vae(latent_channels: int) -> Any:
    """Causal VAE with LTX-2's compression: patch 4 x 2^3 = 32, 2^3 = 8 in time."""
    from diffusers import AutoencoderKLLTX2Video

    return AutoencoderKLLTX2Video(
        latent_channels=latent_channels,
        block_out_channels=(8, 8, 8),
        decoder_block_out_channels=(8, 8, 8),
        layers_per_block=(1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False,) * 4,
        downsample_type=("spatiotemporal",) * 3,
        upsample_type=("spatiotemporal",) * 3,
        upsample_residual=(False,) * 3,
        upsample_factor=(1, 1, 1),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )


def _audio_vae(latent_channels: int, packed: int) -> Any:
    """Mel VAE at 16 kHz, hop 160 (100 mel frames/s, 25 latents/s), 16 mel bins.

    ``packed``: features per latent frame (channels x latent mel bins), the
    size of its normalisation statistics."""
    from diffusers import AutoencoderKLLTX2Audio

    return AutoencoderKLLTX2Audio(
        base_channels=packed,
        output_channels=2,
        ch_mult=(1, 2, 2),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=latent_channels,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=16,
    )


def _vocoder(mel_bins: int) -> Any:
    """Stereo vocoder upsampling by 160 (the mel hop): 8 x 5 x 4."""
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    return LTX2Vocoder(
        in_channels=2 * mel_bins,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[16, 10, 8],
        upsample_factors=[8, 5, 4],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=16000,
    )


def build_components(version: Version = "2.0", transformer: Size = "tiny") -> Any:
    """``(transformer, connectors)`` of a random-weight build, unseeded: under
    ``torch.device("meta")`` they are its module tree without weights (what
    a LoRA's header is checked against)."""
    from diffusers import LTX2VideoTransformer3DModel

    config = {
        **transformer_config(transformer),
        **_version_config(version, transformer),
    }
    return LTX2VideoTransformer3DModel(**config), _connectors(version, config)


def build_random_pipeline(
    transformer: Size = "tiny",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    upsampler: bool = False,
    version: Version = "2.0",
    layers: int | None = None,
) -> Any:
    """A random-weight ``LTX2ConditionPipeline`` of LTX-2 ``version``;
    deterministic for a ``seed``. ``layers`` overrides the transformer's
    block count (a tiny LTX-2.0 with the makers' STG block 29 needs 30).

    ``upsampler`` also builds a latent upsampler (the two-stage route), kept
    as ``pipe.latent_upsampler``.

    Examples
    --------
    >>> pipe = build_random_pipeline()
    >>> pipe.vae_spatial_compression_ratio, pipe.vae_temporal_compression_ratio
    (32, 8)
    """
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        LTX2ConditionPipeline,
        LTX2VideoTransformer3DModel,
    )

    config = {
        **transformer_config(transformer),
        **_version_config(version, transformer),
    }
    if layers is not None:
        config["num_layers"] = layers
    video_channels = config.get("in_channels", 128)
    audio_channels = config.get("audio_in_channels", 128)
    mel_bins = 16
    audio_latent_channels = audio_channels // (mel_bins // 4)
    torch.manual_seed(seed)
    model = LTX2VideoTransformer3DModel(**config)
    torch.manual_seed(seed)
    text_encoder = build_text_encoder(version=version)
    torch.manual_seed(seed)
    connectors = _connectors(version, config)
    torch.manual_seed(seed)
    vae = _video_vae(video_channels)
    torch.manual_seed(seed)
    audio_vae = _audio_vae(audio_latent_channels, audio_channels)
    torch.manual_seed(seed)
    vocoder = _vocoder(mel_bins)
    pipe = LTX2ConditionPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae.eval(),  # built modules start in training mode (dropout)
        audio_vae=audio_vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=build_tokenizer(),
        connectors=connectors.eval(),
        transformer=model.eval(),
        vocoder=vocoder.eval(),
    )
    pipe.set_progress_bar_config(disable=True)
    pipe.latent_upsampler = None
    if upsampler:
        from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

        torch.manual_seed(seed)
        pipe.latent_upsampler = LTX2LatentUpsamplerModel(
            in_channels=video_channels, mid_channels=32, num_blocks_per_stage=1
        ).eval()
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
        if pipe.latent_upsampler is not None:
            pipe.latent_upsampler.to(dtype=dtype)
    return pipe
