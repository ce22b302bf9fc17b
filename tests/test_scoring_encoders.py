"""Encoders: tiny random models, batched preprocessing, the real loading code."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from scoring import encoders, held
from scoring.encoders import (
    FETCH_COMMAND,
    ImagePrep,
    WeightsUnavailable,
    load_clip,
    load_dino,
)
from scoring.testing import save_clip, tiny_clip, tiny_dino


@pytest.fixture(scope="module")
def clip():
    return tiny_clip(device="cpu")


@pytest.fixture(scope="module")
def dino():
    return tiny_dino(device="cpu")


@pytest.fixture(scope="module")
def frames():
    return (np.random.default_rng(0).random((5, 40, 56, 3)) * 255).astype(np.uint8)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.delenv(encoders.CLIP_ENV, raising=False)
    monkeypatch.delenv(encoders.DINO_ENV, raising=False)


def _unit_rows(x: torch.Tensor) -> None:
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(len(x)))


def test_image_prep_normalises_a_constant_frame_exactly():
    prep = ImagePrep(8, (8, 8), (0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    frame = np.full((1, 12, 20, 3), 51, np.uint8)  # 0.2 in every channel
    x = prep(frame, torch.device("cpu"))
    assert x.shape == (1, 3, 8, 8)
    expected = torch.tensor([(0.2 - 0.5) / 0.5, (0.2 - 0.25) / 0.25, 0.2])
    torch.testing.assert_close(x[0, :, 4, 4], expected)


def test_image_prep_crops_the_centre():
    prep = ImagePrep(4, (4, 4), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    frame = np.zeros((1, 4, 12, 3), np.uint8)
    frame[:, :, 4:8] = 255  # only the centre third is white
    x = prep(frame, torch.device("cpu"))
    assert torch.all(x == 1.0)


def test_clip_features_are_unit_rows_and_batch_independent(clip, frames):
    one_by_one = clip.encode_images(frames, batch_size=1)
    batched = clip.encode_images(frames, batch_size=32)
    assert one_by_one.shape == (5, 32) and one_by_one.dtype == torch.float32
    _unit_rows(batched)
    torch.testing.assert_close(one_by_one, batched, atol=1e-5, rtol=1e-4)


def test_clip_text_features(clip):
    text = clip.encode_text(["a lighthouse in a storm", "a harbour"])
    assert text.shape == (2, 32)
    _unit_rows(text)
    assert not torch.allclose(text[0], text[1])


def test_dino_features(dino, frames):
    feats = dino.encode_images(frames, batch_size=2)
    assert feats.shape == (5, 32)
    _unit_rows(feats)


def test_encoders_reject_float_frames(clip):
    with pytest.raises(ValueError, match="uint8"):
        clip.encode_images(np.zeros((1, 8, 8, 3), np.float32))


def test_labels_mark_random_weights(clip, dino):
    assert clip.label == "tiny-clip (random weights)"
    assert dino.label == "tiny-dino (random weights)"
    assert clip.fingerprint != dino.fingerprint


def test_same_seed_same_model():
    a = tiny_clip(seed=1, device="cpu").encode_text(["x"])
    b = tiny_clip(seed=1, device="cpu").encode_text(["x"])
    torch.testing.assert_close(a, b)


# The real loading code on tiny models saved to disk -----------------------------


def test_clip_round_trips_through_a_local_folder(clip, frames, tmp_path):
    folder = save_clip(clip, tmp_path / "clip")
    loaded = load_clip(folder, device="cpu")
    assert loaded.random_weights is False
    assert loaded.model_id == str(folder)
    torch.testing.assert_close(
        loaded.encode_images(frames), clip.encode_images(frames), atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(loaded.encode_text(["a"]), clip.encode_text(["a"]))


def test_dino_round_trips_through_a_local_folder(dino, frames, tmp_path):
    dino.model.save_pretrained(tmp_path / "dino")
    dino.processor.save_pretrained(tmp_path / "dino")
    loaded = load_dino(tmp_path / "dino", device="cpu")
    assert loaded.prep == dino.prep
    torch.testing.assert_close(
        loaded.encode_images(frames), dino.encode_images(frames), atol=1e-5, rtol=1e-4
    )


def _fake_hf_cache(cache, repo_id: str, files_from) -> None:
    """Lay files out as huggingface_hub's cache does: snapshots + refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(files_from, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)


def test_models_load_from_the_hf_cache_by_repo_id(clip, dino, frames, tmp_path):
    cache = tmp_path / "hf"
    _fake_hf_cache(cache, "org/tiny-clip", save_clip(clip, tmp_path / "c"))
    dino.model.save_pretrained(tmp_path / "d")
    _fake_hf_cache(cache, "org/tiny-dino", tmp_path / "d")  # no processor config
    loaded_clip = load_clip("org/tiny-clip", device="cpu", cache_dir=cache)
    loaded_dino = load_dino("org/tiny-dino", device="cpu", cache_dir=cache)
    assert loaded_clip.model_id == "org/tiny-clip"
    torch.testing.assert_close(
        loaded_clip.encode_images(frames),
        clip.encode_images(frames),
        atol=1e-5,
        rtol=1e-4,
    )
    # without preprocessor_config.json the DINOv2 defaults apply (256 -> 224)
    assert loaded_dino.prep.resize == 256 and loaded_dino.prep.crop == (224, 224)


def test_missing_weights_say_how_to_fetch_them(tmp_path):
    for load in (load_clip, load_dino):
        with pytest.raises(WeightsUnavailable, match="fetch-models") as info:
            load(None, device="cpu", cache_dir=tmp_path / "empty-cache")
        assert FETCH_COMMAND in str(info.value)


def test_a_clip_folder_without_weights_is_unavailable(clip, tmp_path):
    folder = save_clip(clip, tmp_path / "clip")
    (folder / "open_clip_model.safetensors").unlink()
    with pytest.raises(WeightsUnavailable, match="no weights"):
        load_clip(folder, device="cpu")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsUnavailable, match="open_clip_config.json"):
        load_clip(empty, device="cpu")
    with pytest.raises(WeightsUnavailable, match="DINOv2"):
        load_dino(empty, device="cpu")


def test_environment_variable_picks_the_model(clip, tmp_path, monkeypatch):
    folder = save_clip(clip, tmp_path / "clip")
    monkeypatch.setenv(encoders.CLIP_ENV, str(folder))
    assert load_clip(device="cpu").model_id == str(folder)


def test_get_clip_loads_once_per_process(clip, tmp_path, monkeypatch):
    folder = save_clip(clip, tmp_path / "clip")
    monkeypatch.setattr(held, "_loaded", {})
    first = held.get_clip(folder, "cpu")
    assert held.get_clip(folder, "cpu") is first
    with pytest.raises(WeightsUnavailable):
        held.get_dino(tmp_path / "nothing-here", "cpu")
    assert len(held._loaded) == 1  # failures are not cached


def test_released_encoders_are_loaded_again(clip, dino, frames, tmp_path, monkeypatch):
    clip_folder = save_clip(clip, tmp_path / "clip")
    dino.model.save_pretrained(tmp_path / "dino")
    monkeypatch.setattr(held, "_loaded", {})
    first_clip = held.get_clip(clip_folder, "cpu")
    first_dino = held.get_dino(tmp_path / "dino", "cpu")
    held.release_encoders()
    assert held._loaded == {}
    again_clip = held.get_clip(clip_folder, "cpu")
    again_dino = held.get_dino(tmp_path / "dino", "cpu")
    assert again_clip is not first_clip and again_dino is not first_dino
    assert held.get_clip(clip_folder, "cpu") is again_clip  # cached again
    torch.testing.assert_close(
        again_clip.encode_images(frames), first_clip.encode_images(frames)
    )
    torch.testing.assert_close(
        again_dino.encode_images(frames), first_dino.encode_images(frames)
    )


def test_release_encoders_empties_the_cuda_cache(monkeypatch):
    emptied = []
    monkeypatch.setattr(held, "_loaded", {})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    held.release_encoders()
    assert emptied == [True]


def test_best_device_is_a_torch_device():
    device = encoders.best_device()
    assert device.type in ("cuda", "mps", "cpu")
    assert (device.type == "cuda") == torch.cuda.is_available()


def test_image_prep_uint8_resize_matches_the_float_path():
    import torch.nn.functional as F

    prep = ImagePrep(32, (32, 32), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    frame = (np.random.default_rng(5).random((2, 64, 96, 3)) * 255).astype(np.uint8)
    x = prep(frame, torch.device("cpu"))
    ref = torch.from_numpy(frame).permute(0, 3, 1, 2).float() / 255
    ref = F.interpolate(ref, size=(32, 48), mode="bicubic", antialias=True)
    ref = ref.clamp(0, 1)[:, :, :, 8:40]
    assert (x - ref).abs().mean() < 2 / 255
    assert (x - ref).abs().max() < 12 / 255
