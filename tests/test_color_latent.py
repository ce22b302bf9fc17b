"""Colour drift on a latent backend: the AdaIN pull toward the line's anchor.

The tiny random-weight LTX-Video runs for real; a wrapper around its
sampler makes it drift by a fixed step per scene in latent space (each
take keeps the carried tail's per-channel mean and adds 0.1 to every
channel), the way a chained latent look slips. Without correction the
distance of each take's tail statistics from the anchor's grows linearly
over a 20-scene line; with correction ``line`` (AdaIN toward the anchor's
tail statistics before decoding) it stays under 0.05. Random weights decode
to noise, so the bound is on the latents, where the pull acts; the pixel
bound is the frame path's (tests/test_color_correction.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import engine.backends.ltx.backend as ltx_backend
from engine.backends.diffusers.adain import (
    adain_toward,
    channel_stats,
    pull_toward_anchor,
)
from engine.color.anchor import ColorAnchor
from engine.continuity import load_tail_latents
from engine.generate import generate_scene
from kg.paths import resolve_asset
from kg.schema import SceneEdge, SceneNode, Settings, Story, TakeRef
from kg.store import load_story, save_story

STEP = 0.1  # latent drift per scene, every channel
BOUND = 0.05  # the corrected line's tail statistics stay this close


@pytest.fixture
def drifting_ltx(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ltx_backend.sample_windows

    def drifting(pipe: Any, request: Any, carried: Any, *args: Any, **kw: Any) -> Any:
        out = real(pipe, request, carried, *args, **kw)
        own = channel_stats(out.latents)[0]
        held = channel_stats(carried.latents)[0] if carried.latents is not None else own
        shape = (1, -1, 1, 1, 1)
        out.latents = out.latents - own.view(shape) + held.view(shape) + STEP
        return out

    monkeypatch.setattr(ltx_backend, "sample_windows", drifting)


def _line(folder: Path, scenes: int, correction: str) -> list[torch.Tensor]:
    story = Story(
        title="A drifting latent line",
        settings=Settings(
            backend="ltx",
            model="tiny-random",
            width=64,
            height=64,
            quality_preset="fast",
            continuity_mode="latent",
        ),
        scenes=[
            SceneNode(id=f"s{i}", title=f"Scene {i}", num_frames=17)
            for i in range(1, scenes + 1)
        ],
        edges=[SceneEdge(source=f"s{i}", target=f"s{i + 1}") for i in range(1, scenes)],
    )
    story.settings.color.correction = correction  # type: ignore[assignment]
    story.settings.color.strength = 1.0
    save_story(story, folder)
    for i in range(1, scenes + 1):
        take = generate_scene(folder, f"s{i}", backend="ltx")
        assert take.status == "done", take.error
        assert take.params.continuity_used == ("latent" if i > 1 else "none")
    means = []
    for scene in load_story(folder).scenes:
        rel = scene.selected.files.tail_latents
        means.append(channel_stats(load_tail_latents(resolve_asset(folder, rel))[0])[0])
    return means


def test_adain_moves_channel_statistics_by_the_factor() -> None:
    x = torch.randn(1, 4, 3, 5, 5) * 3 + 2
    mean, std = torch.tensor([0.0, 1, 2, 3]), torch.tensor([1.0, 0.5, 2, 1])
    full = adain_toward(x, mean, std, 1.0)
    got_mean, got_std = channel_stats(full)
    assert torch.allclose(got_mean, mean, atol=1e-4)
    assert torch.allclose(got_std, std, atol=1e-4)
    assert torch.equal(adain_toward(x, mean, std, 0.0), x)
    half_mean = channel_stats(adain_toward(x, mean, std, 0.5))[0]
    assert torch.allclose(half_mean, (channel_stats(x)[0] + mean) / 2, atol=1e-4)


def test_anchor_of_another_model_is_left_to_the_pixel_path() -> None:
    x = torch.randn(1, 4, 2, 3, 3)
    anchor = ColorAnchor(
        "line",
        "reinhard",
        1.0,
        latent_mean=torch.zeros(8),
        latent_std=torch.ones(8),
        anchor_take=TakeRef(scene_id="a", take=1),
    )
    same, record = pull_toward_anchor(x, anchor)
    assert record is None and same is x
    assert pull_toward_anchor(x, None) == (x, None)


def test_a_drifting_latent_line_is_held_by_the_pull(
    tmp_path: Path, drifting_ltx: None
) -> None:
    plain = _line(tmp_path / "off", 20, "off")
    distance = np.array([float((m - plain[0]).norm()) for m in plain])
    scene = np.arange(20)
    slope, intercept = np.polyfit(scene, distance, 1)
    residual = distance - (slope * scene + intercept)
    assert slope > 0.1 and np.abs(residual).max() < 0.05, distance.round(3)

    held = _line(tmp_path / "line", 20, "line")
    corrected = np.array([float((m - held[0]).norm()) for m in held])
    assert corrected.max() < BOUND, corrected.round(3)
    take = load_story(tmp_path / "line").scene("s20").selected
    record = take.color_correction
    assert record is not None and record.method == "adain" and record.mode == "line"
    assert record.anchor_take == TakeRef(scene_id="s1", take=1)
    assert record.original_video is None  # a latent pull keeps no second clip
