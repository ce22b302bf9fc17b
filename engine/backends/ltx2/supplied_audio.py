"""Supplied dialogue on LTX-2: the audio stream held to the user's track.

The makers' audio-to-video route (Lightricks/LTX-2 ``ltx-pipelines``
``A2VidPipelineTwoStage``): the track is decoded, turned into the audio
VAE's log-mel spectrogram (``ltx-core`` ``AudioProcessor.waveform_to_mel``:
a Hann-windowed STFT of ``n_fft`` 1024 and the VAE's hop (160 at 16 kHz),
centred with reflection padding, magnitudes, a Slaney-scale Slaney-normed
mel filter bank up to half the sample rate, ``log(max(mel, 1e-5))``),
encoded by the audio VAE (its posterior's mean, ``encode_audio``), cut to the
scene's audio latent count, packed and normalised into the model's audio
token space (diffusers' ``_pack_audio_latents`` and
``_normalize_audio_latents``). The denoising loop then holds those tokens
with conditioning mask 1 at every step (timestep 0, x0 replaced by the
track; the makers' ``frozen`` audio modality, whose noise level reaches the
cross-modal gates as 0), so the picture is generated to match the sound.

The take's sound is the track itself, resampled to the take's rate, not the
audio VAE's reconstruction of it ("return the original input audio instead
of VAE-decoded audio to preserve fidelity", as the makers do). A track
shorter than the scene is padded with silence, a longer one cut at the
scene's end; the take's note says which.

ffmpeg decodes and resamples (`engine.dialogue_audio.decode_track`); the
mel filter bank is ``transformers.audio_utils.mel_filter_bank`` with
Slaney's scale and norm (the same filters as ``torchaudio``'s, which is not
a dependency here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.backend import DialogueAudio
from engine.backends.ltx2.audio import audio_latent_count, latents_per_second
from engine.dialogue_audio import decode_track

__all__ = [
    "N_FFT",
    "Track",
    "encode_track",
    "log_mel",
    "mel_filter_bank",
    "take_waveform",
    "track_note",
]

N_FFT = 1024  # the makers' audio encoder STFT size (``n_fft``, filter_length)
SPARE_SECONDS = 0.2  # encoded past the scene's end: windows round up a latent


@dataclass(frozen=True)
class Track:
    """A supplied track in the model's audio token space: ``latents``
    ``[1, L, D]`` packed normalised, `SPARE_SECONDS` longer than the scene
    (a long take's last window may round up a latent), and how many of them
    the scene itself lasts."""

    latents: torch.Tensor
    scene_latents: int


def mel_filter_bank(rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``[n_fft // 2 + 1, n_mels]`` triangular filters on Slaney's mel scale,
    Slaney-normed, from 0 Hz to ``rate / 2`` (``transformers.audio_utils``:
    the filters of ``torchaudio``'s ``MelSpectrogram`` the makers use)."""
    from transformers.audio_utils import mel_filter_bank as filters

    bank = filters(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=rate / 2.0,
        sampling_rate=rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return np.asarray(bank, dtype=np.float32)


def log_mel(waveform: torch.Tensor, rate: int, hop: int, n_mels: int) -> torch.Tensor:
    """``[B, channels, n]`` to the encoder's input ``[B, channels, frames, n_mels]``."""
    batch, channels, n = waveform.shape
    flat = waveform.reshape(batch * channels, n).float()
    spec = torch.stft(
        flat,
        n_fft=N_FFT,
        hop_length=hop,
        win_length=N_FFT,
        window=torch.hann_window(N_FFT, device=flat.device),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()  # [B*C, freqs, frames], power 1
    bank = torch.from_numpy(mel_filter_bank(rate, N_FFT, n_mels)).to(flat.device)
    mel = torch.matmul(spec.transpose(1, 2), bank)  # [B*C, frames, n_mels]
    mel = torch.log(torch.clamp(mel, min=1e-5))
    return mel.reshape(batch, channels, mel.shape[1], n_mels)


def _fit(samples: np.ndarray, n: int) -> np.ndarray:
    if samples.shape[1] >= n:
        return samples[:, :n]
    pad = np.zeros((samples.shape[0], n - samples.shape[1]), dtype=samples.dtype)
    return np.concatenate([samples, pad], axis=1)


@torch.no_grad()
def encode_track(pipe: Any, audio: DialogueAudio, num_frames: int, fps: int) -> Track:
    """The supplied track in the model's packed normalised audio space, as
    long as the scene's audio latents (and `SPARE_SECONDS` more)."""
    audio_vae = pipe.audio_vae
    rate = int(pipe.audio_sampling_rate)
    seconds = num_frames / fps
    samples = decode_track(audio.data, rate, what=f"the dialogue track {audio.path}")
    padded = _fit(samples, round((seconds + SPARE_SECONDS) * rate))
    device = pipe._execution_device
    wave = torch.from_numpy(padded)[None].to(device)
    mel = log_mel(wave, rate, int(pipe.audio_hop_length), int(pipe.audio_mel_bins))
    dtype = audio_vae.dtype
    latent = audio_vae.encode(mel.to(dtype), return_dict=False)[0].mode().float()
    want = audio_latent_count(num_frames, fps, latents_per_second(pipe))
    spare = want + round(SPARE_SECONDS * latents_per_second(pipe))
    latent = latent[:, :, :spare]  # [1, C, L, M]
    packed = pipe._pack_audio_latents(latent)
    packed = pipe._normalize_audio_latents(
        packed, audio_vae.latents_mean.float(), audio_vae.latents_std.float()
    )
    return Track(packed.float(), want)


def take_waveform(audio: DialogueAudio, rate: int, seconds: float) -> np.ndarray:
    """The track itself resampled to the take's ``rate``, exactly as long as
    the picture (silence after a short track)."""
    samples = decode_track(audio.data, rate, what=f"the dialogue track {audio.path}")
    return _fit(samples, max(1, round(seconds * rate)))


def track_note(audio: DialogueAudio, seconds: float) -> str:
    """What the take says of its supplied sound."""
    note = f"sound supplied: {audio.path} ({audio.seconds:.1f} s)"
    if audio.seconds > seconds + 0.05:
        note += f", cut at the scene's end ({seconds:.1f} s)"
    elif audio.seconds < seconds - 0.05:
        note += f", silence after it to the scene's end ({seconds:.1f} s)"
    return note
