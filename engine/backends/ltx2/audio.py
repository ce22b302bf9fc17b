"""LTX-2 audio latents: their rate, the tail carried across a join, decoding.

LTX-2's audio VAE encodes a 16 kHz mel spectrogram (hop 160: 100 mel frames
a second) four times smaller in time, so the model's audio stream runs at 25
latent frames a second whatever the video's fps. In the pipeline's own
denoising space an audio latent frame is one token: the latent channels times
the latent mel bins, packed (``[B, L, C * M]``), normalised per feature with
the audio VAE's statistics (`pipe._normalize_audio_latents`). Tails are kept
in that space, as video tails are kept in the video's normalised space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "AUDIO_NORMALISATION",
    "latents_per_second",
    "audio_latent_count",
    "audio_tail_count",
    "decode_audio",
    "fit_duration",
]

AUDIO_NORMALISATION = "ltx2-audio-packed-mean-std"


def latents_per_second(pipe: Any) -> float:
    """Audio latent frames per second of the pipeline (25 for LTX-2)."""
    return (
        pipe.audio_sampling_rate
        / pipe.audio_hop_length
        / float(pipe.audio_vae_temporal_compression_ratio)
    )


def audio_latent_count(num_frames: int, fps: float, per_second: float) -> int:
    """Audio latent frames for a clip of ``num_frames`` at ``fps`` (the pipeline's
    own rounding).

    >>> audio_latent_count(121, 24, 25.0)
    126
    """
    return max(1, round(num_frames / fps * per_second))


def audio_tail_count(pixel_frames: int, fps: float, per_second: float) -> int:
    """Audio latent frames that last as long as ``pixel_frames`` video frames.

    >>> audio_tail_count(17, 24, 25.0)
    18
    """
    return max(1, round(pixel_frames / fps * per_second))


def decode_audio(pipe: Any, latents: torch.Tensor) -> tuple[np.ndarray, int]:
    """Packed normalised audio latents ``[1, L, D]`` to a waveform.

    Returns ``[channels, samples]`` float32 in [-1, 1] and the sample rate
    (the vocoder's output rate).
    """
    audio_vae = pipe.audio_vae
    mel_bins = pipe.audio_mel_bins // pipe.audio_vae_mel_compression_ratio
    z = pipe._denormalize_audio_latents(
        latents.float(), audio_vae.latents_mean, audio_vae.latents_std
    )
    z = pipe._unpack_audio_latents(z, latents.shape[1], num_mel_bins=mel_bins)
    with torch.no_grad():
        mel = audio_vae.decode(z.to(audio_vae.dtype), return_dict=False)[0]
        wave = pipe.vocoder(mel.to(pipe.vocoder.dtype))
    rate = int(pipe.vocoder.config.output_sampling_rate)
    samples = wave[0].float().clamp(-1.0, 1.0).cpu().numpy()
    return np.ascontiguousarray(samples, dtype=np.float32), rate


def fit_duration(samples: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    """``samples`` ``[channels, n]`` cut or padded with silence to ``seconds``.

    The model's audio lasts its latent count times 40 ms, which differs from
    the video's frames / fps by up to half a latent; the take's sound is made
    exactly as long as its picture so they stay in step when takes follow
    each other.
    """
    want = max(1, round(seconds * rate))
    have = samples.shape[1]
    if have >= want:
        return samples[:, :want]
    pad = np.zeros((samples.shape[0], want - have), dtype=samples.dtype)
    return np.concatenate([samples, pad], axis=1)
