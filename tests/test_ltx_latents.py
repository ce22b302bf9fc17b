"""Causal-VAE frame arithmetic, input checks, latent fit and LTX quality presets."""

from __future__ import annotations

import pytest
import torch

from engine.backend import BackendError
from engine.backends.diffusers.latents import (
    LatentShape,
    check_latent_fit,
    check_size,
    latent_frame_count,
    latent_shape,
    pixel_span,
    tail_latents,
    tail_meta,
    tail_pixel_frames,
)
from engine.catalog import checkpoint_kind, resolve_preset


@pytest.mark.parametrize("k", [0, 1, 2, 12, 20])
def test_latent_frames_cover_every_pixel_frame_once(k: int) -> None:
    num_frames = 8 * k + 1
    n = latent_frame_count(num_frames)
    assert n == k + 1
    covered = [f for i in range(n) for f in pixel_span(i)]
    assert covered == list(range(num_frames))
    assert tail_pixel_frames(n, n) == num_frames
    if n > 1:
        assert tail_pixel_frames(1, n) == 8


def test_bad_sizes_are_refused_with_the_values_and_a_fix() -> None:
    with pytest.raises(BackendError, match=r"multiples of 32, got 500 and 768.*512"):
        check_size(500, 768, 97)
    with pytest.raises(BackendError, match=r"8k \+ 1.*got 96.*89 or 97"):
        check_size(768, 512, 96)
    with pytest.raises(BackendError) as both:
        check_size(70, 64, 10)
    assert "width and height" in str(both.value) and "num_frames" in str(both.value)
    check_size(768, 512, 97)  # valid: no exception


def _meta(**over: str) -> dict[str, str]:
    tail = torch.zeros(1, 8, 2, 2, 3)
    meta = tail_meta(model="m", tail=tail, width=96, height=64, num_frames=17)
    return {**meta, **over}


def test_latent_fit_reasons_name_what_differs() -> None:
    expected = latent_shape(96, 64, 17, channels=8)
    assert expected == LatentShape(1, 8, 3, 2, 3)
    tail = torch.zeros(1, 8, 2, 2, 3)
    assert check_latent_fit(tail, _meta(), model="m", expected=expected).ok
    other_model = check_latent_fit(tail, _meta(), model="n", expected=expected)
    assert not other_model.ok and "'m'" in other_model.reason
    other_size = check_latent_fit(
        tail, _meta(), model="m", expected=latent_shape(64, 64, 17, 8)
    )
    assert not other_size.ok and "96x64" in other_size.reason
    channels = check_latent_fit(
        torch.zeros(1, 4, 2, 2, 3), _meta(), model="m", expected=expected
    )
    assert not channels.ok and "4 channels" in channels.reason
    # a tail longer than the clip fits: the sampler carries its last frames
    long_tail = check_latent_fit(
        tail, _meta(), model="m", expected=latent_shape(96, 64, 1, 8)
    )
    assert long_tail.ok
    empty = torch.zeros(1, 8, 0, 2, 3)
    assert not check_latent_fit(empty, _meta(), model="m", expected=expected).ok
    assert not check_latent_fit(None, {}, model="m", expected=expected).ok


def test_tail_latents_keep_the_last_frames_on_cpu() -> None:
    latents = torch.arange(2 * 5 * 4, dtype=torch.float32).reshape(1, 2, 5, 2, 2)
    tail = tail_latents(latents, 2)
    assert tail.shape == (1, 2, 2, 2, 2)
    assert torch.equal(tail, latents[:, :, 3:])
    assert tail_latents(latents, 10).shape[2] == 5
    meta = tail_meta(model="x", tail=tail, width=64, height=64, num_frames=33)
    assert meta["tail_pixel_frames"] == "16"
    assert all(isinstance(v, str) for v in meta.values())


def test_presets_distilled_get_their_own_steps_and_overrides_win() -> None:
    dev = resolve_preset("ltx", "balanced", "Lightricks/LTX-Video-0.9.5")
    distilled = resolve_preset(
        "ltx", "balanced", "Lightricks/LTX-Video-0.9.7-distilled"
    )
    assert distilled.steps < dev.steps and distilled.guidance == 1.0
    assert resolve_preset("ltx", "fast", "x", steps=7, guidance=2.0).steps == 7
    assert checkpoint_kind("tiny-random") == "tiny"
    with pytest.raises(BackendError, match="quality_preset"):
        resolve_preset("ltx", "ultra", "x")
