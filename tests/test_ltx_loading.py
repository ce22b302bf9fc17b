"""Loading LTX-Video from a folder or the HF cache, checkpoint checks, model commands.

The tiny random-weight pipeline is saved with ``save_pretrained`` and loaded
back through the real loading code; the Hugging Face cache is a folder laid
out the way huggingface_hub lays it out, so nothing touches the network.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from engine.backend import BackendError, CancelToken, GenerationRequest
from engine.backends.ltx.backend import LTXBackend, release_models
from engine.backends.ltx.loading import (
    CheckpointMismatchError,
    check_checkpoint,
    resolve_model,
    save_pipeline,
)
from engine.backends.ltx.tiny import build_random_pipeline, tiny_transformer_config

REQUEST = GenerationRequest(
    prompt="a lighthouse at dusk",
    width=64,
    height=64,
    num_frames=9,
    fps=24,
    seed=0,
    steps=2,
    guidance=1.0,
)


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny-ltx"
    return save_pipeline(build_random_pipeline(), folder)


@pytest.fixture
def tiny_copy(saved_tiny: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_tiny, tmp_path / "copy"))


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def _snapshot_dir(cache: Path, repo_id: str) -> Path:
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def test_saved_folder_loads_through_the_backend(saved_tiny: Path) -> None:
    release_models()
    backend = LTXBackend(model=str(saved_tiny))
    result = backend.generate(REQUEST, lambda s, t: None, CancelToken())
    assert result.frames.shape == (9, 64, 64, 3)
    assert result.random_weights is False  # a folder: the backend cannot tell
    assert result.latent_meta["model"] == str(saved_tiny)
    release_models()


def test_transformer_of_another_size_is_refused_naming_file_and_config(
    tiny_copy: Path,
) -> None:
    config_path = tiny_copy / "transformer" / "config.json"
    config = json.loads(config_path.read_text())
    config["num_layers"] = 2
    config["attention_head_dim"] = 16
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError) as refused:
        LTXBackend(model=str(tiny_copy)).generate(
            REQUEST, lambda s, t: None, CancelToken()
        )
    message = str(refused.value)
    assert "diffusion_pytorch_model.safetensors" in message
    assert str(config_path) in message
    assert "shape mismatches" in message and "missing" in message
    assert "Traceback" not in message


def test_distilled_config_with_dev_weights_is_refused(tiny_copy: Path) -> None:
    transformer = tiny_copy / "transformer"
    config_path = transformer / "config.json"
    config = json.loads(config_path.read_text())
    config["_name_or_path"] = "Lightricks/LTX-Video-0.9.7-distilled"
    config_path.write_text(json.dumps(config))
    weights = transformer / "diffusion_pytorch_model.safetensors"
    save_file(load_file(weights), weights, metadata={"variant": "ltxv-2b-0.9.7-dev"})
    with pytest.raises(CheckpointMismatchError, match="distilled.*dev") as refused:
        check_checkpoint(tiny_copy)
    assert str(weights) in str(refused.value)


def test_folder_without_weights_and_unknown_pipeline_are_refused(
    tiny_copy: Path,
) -> None:
    (tiny_copy / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointMismatchError, match="vae needs config.json"):
        check_checkpoint(tiny_copy)
    index = tiny_copy / "model_index.json"
    index.write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(CheckpointMismatchError, match="FluxPipeline"):
        check_checkpoint(tiny_copy)


def test_model_not_in_the_cache_names_the_fetch_command(hf_cache: Path) -> None:
    with pytest.raises(BackendError, match="storygraph fetch-models ltx-video"):
        resolve_model("ltx-video")
    with pytest.raises(BackendError, match="settings.model"):
        resolve_model("")


def test_catalog_model_resolves_from_the_cache(
    saved_tiny: Path, hf_cache: Path
) -> None:
    snapshot = _snapshot_dir(hf_cache, "Lightricks/LTX-Video-0.9.5")
    shutil.copytree(saved_tiny, snapshot, dirs_exist_ok=True)
    source = resolve_model("ltx-video")
    assert source.folder is not None and source.folder.resolve() == snapshot.resolve()
    check_checkpoint(source.folder)


def test_models_command_lists_local_and_incomplete(hf_cache: Path) -> None:
    from studio.cli import app

    snapshot = _snapshot_dir(hf_cache, "facebook/dinov2-small")
    (snapshot / "config.json").write_text("{}")
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "tiny-random" in result.output
    assert "missing model.safetensors" in result.output
    assert "clip-vit-b-32" in result.output


def test_fetch_models_verifies_what_it_fetched(
    hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.models as models

    calls = []

    def fake_download(repo_id: str, patterns: tuple[str, ...] | None, **kw: object):
        calls.append((repo_id, patterns, kw))
        snapshot = _snapshot_dir(hf_cache, repo_id)
        save_file({"w": torch.zeros(2)}, snapshot / "model.safetensors")
        return snapshot

    monkeypatch.setattr(models, "_snapshot", fake_download)
    statuses = models.fetch_models(["dinov2-small"])
    assert calls[0][0] == "facebook/dinov2-small" and "config.json" in calls[0][1]
    assert statuses[0].problems == ("missing config.json",)
    with pytest.raises(BackendError, match="unknown model 'nope'"):
        models.fetch_models(["nope"])


def test_tiny_transformer_config_matches_saved_weights(saved_tiny: Path) -> None:
    saved = json.loads((saved_tiny / "transformer" / "config.json").read_text())
    assert {k: saved[k] for k in tiny_transformer_config()} == {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in tiny_transformer_config().items()
    }


def test_models_command_imports_no_torch_with_a_model_folder(tmp_path: Path) -> None:
    """Listing models reads safetensors headers, never torch (7 s to import)."""
    import subprocess
    import sys

    from safetensors.numpy import save_file

    cache = tmp_path / "hub"
    snapshot = _snapshot_dir(cache, "facebook/dinov2-small")
    (snapshot / "config.json").write_text("{}")
    save_file({"w": np.zeros((2, 2), np.float32)}, str(snapshot / "model.safetensors"))
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from studio.cli import app\n"
        "result = CliRunner().invoke(app, ['models'], env={'COLUMNS': '200'})\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'dinov2-small' in result.output\n"
        "print('torch' in sys.modules, 'yes' in result.output)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["False", "True"], out


def test_a_gguf_transformer_loads_without_the_checkpoint_s_own(
    saved_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import LTXVideoTransformer3DModel

    from engine.backends.diffusers.gguf import write_gguf
    from engine.backends.ltx.backend import loaded_model

    gguf = write_gguf(
        build_random_pipeline().transformer, tmp_path / "t.gguf", family="ltx"
    )
    loads: list[str] = []
    original = LTXVideoTransformer3DModel.from_pretrained.__func__

    def spy(cls: type, *args: object, **kwargs: object) -> object:
        loads.append(str(args[0] if args else kwargs))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(LTXVideoTransformer3DModel, "from_pretrained", classmethod(spy))
    release_models()
    try:
        pipe = loaded_model(str(saved_tiny), transformer_file=str(gguf)).pipe
        assert loads == []  # the checkpoint's transformer was never loaded
        assert getattr(pipe.transformer, "is_quantized", False)
    finally:
        release_models()
