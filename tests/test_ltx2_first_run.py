"""LTX-2 right on the first real run, checked on tiny random weights with the
real diffusers modules and forward hooks: placement in every memory mode,
the makers' sigma lists stepped as listed, the makers' stage 2, fp8 of
exactly the block linears before any move, the checkpoint kind read from
the checkpoint, the trained frame rates, and the recipe every take records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.ltx2.utils import (
    DISTILLED_SIGMA_VALUES,
    STAGE_2_DISTILLED_SIGMA_VALUES,
)
from safetensors.torch import save_file

from engine.backend import CancelToken, GenerationRequest
from engine.backends.diffusers.memory import apply_memory_mode, fp8_linears
from engine.backends.ltx2.backend import LTX2Backend, release_models, use_pipeline
from engine.backends.ltx2.loading import checkpoint_kind_of
from engine.backends.ltx2.tiny import build_random_pipeline
from engine.catalog import settings_problems
from kg.schema import MEMORY_MODES, Settings

FPS = 24


@pytest.fixture(autouse=True)
def _fresh_models() -> Any:
    release_models()
    yield
    release_models()


def _sampler_modules(pipe: Any) -> dict[str, torch.nn.Module]:
    names = (
        "transformer",
        "vae",
        "audio_vae",
        "vocoder",
        "connectors",
        "text_encoder",
        "latent_upsampler",
    )
    return {name: getattr(pipe, name) for name in names}


@pytest.mark.parametrize("mode", MEMORY_MODES)
def test_every_module_the_sampler_calls_follows_the_pipeline(mode: str) -> None:
    pipe = build_random_pipeline(upsampler=True)  # float32, as loaded
    # float64 stands in for the device dtype: what is not moved stays float32
    apply_memory_mode(pipe, torch.device("cpu"), mode, torch.float64)
    stored = {id(p) for _, m in fp8_linears(pipe.transformer) for p in m.parameters()}
    for name, module in _sampler_modules(pipe).items():
        for param in module.parameters():
            assert param.device.type == "cpu", name
            if mode == "fp8" and id(param) in stored:
                assert param.dtype == torch.float8_e4m3fn, name
            elif param.is_floating_point():
                assert param.dtype == torch.float64, (mode, name, param.dtype)


def test_fp8_casts_exactly_the_block_linears_before_the_move() -> None:
    pipe = build_random_pipeline()
    transformer = pipe.transformer
    total = sum(p.numel() * p.element_size() for p in transformer.parameters())
    moved: list[int] = []
    original = transformer.to

    def size() -> int:
        return sum(p.numel() * p.element_size() for p in transformer.parameters())

    def to(*args: Any, **kwargs: Any) -> Any:
        moved.append(size())
        return original(*args, **kwargs)

    transformer.to = to
    apply_memory_mode(pipe, torch.device("cpu"), "fp8", torch.float32)
    names = {name for name, _ in fp8_linears(transformer)}
    assert names, "the tiny model has block linears"
    suffixes = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2")
    assert all(n.endswith(suffixes) for n in names)
    assert all(n.startswith("transformer_blocks.") for n in names)
    assert any("audio_ff" in n for n in names) and any("audio_attn" in n for n in names)
    for name, param in transformer.named_parameters():
        linear = name.rsplit(".", 1)[0]
        expected = torch.float8_e4m3fn if linear in names else torch.float32
        assert param.dtype == expected, name
    # what reached `to` was already float8 where it is stored so
    assert moved and max(moved) < total


def _sigmas_seen(pipe: Any) -> list[float]:
    """The sigma of every transformer call (the noisiest token's timestep)."""
    seen: list[float] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        train_steps = 1000  # the schedulers' num_train_timesteps
        seen.append(round(float(kwargs["timestep"].max()) / train_steps, 5))

    pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def _shifting(pipe: Any) -> None:
    """A checkpoint scheduler that would reshape any list it is given."""
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        pipe.scheduler.config, use_dynamic_shifting=True, shift_terminal=0.1
    )


def _request(model: str, **kw: Any) -> GenerationRequest:
    base = dict(
        prompt="rain on a window", width=128, height=128, num_frames=17, fps=FPS,
        seed=0, steps=8, guidance=1.0, model=model,
    )  # fmt: skip
    return GenerationRequest(**{**base, **kw})


def test_distilled_stages_step_the_makers_sigmas_exactly() -> None:
    pipe = build_random_pipeline(upsampler=True)
    _shifting(pipe)
    use_pipeline("tiny-shifting-distilled", pipe)
    seen = _sigmas_seen(pipe)
    result = LTX2Backend().generate(
        _request("tiny-shifting-distilled"), lambda *a: None, CancelToken()
    )
    expected = [round(s, 5) for s in DISTILLED_SIGMA_VALUES]
    expected += [round(s, 5) for s in STAGE_2_DISTILLED_SIGMA_VALUES]
    assert seen == expected
    recipe = result.recipe
    assert recipe is not None and recipe.checkpoint_kind == "distilled"
    assert [s.name for s in recipe.stages] == ["stage 1", "stage 2"]
    assert recipe.stages[0].sigmas == pytest.approx(DISTILLED_SIGMA_VALUES, abs=1e-5)
    assert recipe.stages[1].sigmas == pytest.approx(
        STAGE_2_DISTILLED_SIGMA_VALUES, abs=1e-5
    )
    assert recipe.stages[1].guidance == 1.0 and recipe.loras == []


def test_ltx_video_steps_its_own_schedule_with_a_shifting_config() -> None:
    from diffusers.pipelines.ltx.pipeline_ltx_condition import (
        linear_quadratic_schedule,
    )

    from engine.backends.ltx.backend import LTXBackend
    from engine.backends.ltx.backend import release_models as release_ltx
    from engine.backends.ltx.backend import use_pipeline as use_ltx
    from engine.backends.ltx.tiny import build_random_pipeline as ltx_video

    pipe = ltx_video()
    _shifting(pipe)
    use_ltx("tiny-shifting", pipe)
    seen = _sigmas_seen(pipe)
    try:
        LTXBackend().generate(
            _request("tiny-shifting", width=32, height=32, steps=4),
            lambda *a: None,
            CancelToken(),
        )
    finally:
        release_ltx()
    expected = [round(float(s), 5) for s in linear_quadratic_schedule(4)]
    assert seen == expected


def _distilled_lora(folder: Path) -> Path:
    """A LoRA for the tiny transformer, written by diffusers' own saver."""
    from diffusers import LTX2ConditionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = build_random_pipeline().transformer
    transformer.add_adapter(
        LoraConfig(
            r=2,
            lora_alpha=2,
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
            init_lora_weights=False,
        )
    )
    LTX2ConditionPipeline.save_lora_weights(
        folder,
        transformer_lora_layers=get_peft_model_state_dict(transformer),
        weight_name="tiny-distilled-lora.safetensors",
    )
    return folder / "tiny-distilled-lora.safetensors"


def test_dev_two_stage_refines_with_the_distilled_lora_without_guidance(
    tmp_path: Path,
) -> None:
    pipe = build_random_pipeline(upsampler=True)
    pipe.distilled_lora_file = _distilled_lora(tmp_path)
    use_pipeline("tiny-dev", pipe)
    calls: list[tuple[int, bool]] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        # is the LoRA in the forward pass? its layers are enabled and weighted
        layers = [m for m in module.modules() if hasattr(m, "lora_A")]
        on = any(
            not m.disable_adapters and m.scaling.get("distilled", 0) for m in layers
        )
        calls.append((kwargs["hidden_states"].shape[0], on))

    pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    result = LTX2Backend().generate(
        _request("tiny-dev", steps=2, guidance=3.0, quality_preset="fast"),
        lambda *a: None,
        CancelToken(),
    )
    # stage 1: CFG (a batch of 2) without the LoRA; stage 2: one pass per
    # step, no guidance, with it
    assert calls == [(2, False), (2, False), (1, True), (1, True), (1, True)]
    recipe = result.recipe
    assert recipe is not None and recipe.checkpoint_kind == "dev"
    assert recipe.stages[0].guidance == 3.0 and recipe.stages[0].loras == []
    assert recipe.stages[1].guidance == 1.0 and recipe.stages[1].loras == ["distilled"]
    assert [lora.file for lora in recipe.loras] == [str(pipe.distilled_lora_file)]
    assert "distilled LoRA" in result.continuity_note


def test_dev_without_the_lora_stays_in_one_stage_and_says_so() -> None:
    pipe = build_random_pipeline(upsampler=True)
    use_pipeline("tiny-dev", pipe)
    tokens: list[int] = []
    pipe.transformer.register_forward_pre_hook(
        lambda m, a, kw: tokens.append(kw["hidden_states"].shape[1]), with_kwargs=True
    )
    result = LTX2Backend().generate(
        _request("tiny-dev", steps=2, guidance=3.0, quality_preset="fast"),
        lambda *a: None,
        CancelToken(),
    )
    assert tokens == [3 * 4 * 4] * 2  # full size, two steps, no second stage
    assert "distilled LoRA" in result.continuity_note
    assert result.recipe is not None and len(result.recipe.stages) == 1


def test_a_distilled_folder_is_known_by_its_configs_not_its_name(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("weights") / "my-video-model"
    (folder / "transformer").mkdir(parents=True)
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": "LTX2Pipeline"})
    )
    (folder / "transformer" / "config.json").write_text(json.dumps({}))
    weights = folder / "transformer" / "model.safetensors"
    save_file(
        {"x": torch.zeros(1)},
        str(weights),
        metadata={"config": json.dumps({"model_version": "ltx-2-19b-distilled"})},
    )
    kind, how = checkpoint_kind_of(str(folder))
    assert kind == "distilled" and "model.safetensors metadata" in how
    save_file({"x": torch.zeros(1)}, str(weights), metadata={"config": "{}"})
    checkpoint_kind_of.cache_clear()
    assert checkpoint_kind_of(str(folder))[0] == "dev"
    # a name is only believed when nothing can be read
    assert checkpoint_kind_of("someone/ltx-2-distilled")[1].startswith("the model's")


@pytest.mark.parametrize("fps", [48, 50, 120])
def test_fps_outside_ltx2_training_is_refused_with_the_trained_rates(fps: int) -> None:
    problems = dict(settings_problems(Settings(backend="ltx2", fps=fps)))
    assert "fps" in problems and "24, 25, 30, 60" in problems["fps"]
    for good in (24, 25, 30, 60):
        assert "fps" not in dict(settings_problems(Settings(backend="ltx2", fps=good)))
    assert settings_problems(Settings(backend="animatic", fps=fps)) == []


def test_a_gguf_transformer_never_loads_the_folder_s_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import LTX2VideoTransformer3DModel

    from engine.backends.diffusers.gguf import write_gguf
    from engine.backends.ltx2.backend import loaded_model

    folder = tmp_path / "ltx2-folder"
    pipe = build_random_pipeline()
    pipe.save_pretrained(folder)
    gguf = write_gguf(pipe.transformer, tmp_path / "t.gguf")
    loads: list[object] = []
    original = LTX2VideoTransformer3DModel.from_pretrained.__func__

    def spy(cls: type, *args: object, **kwargs: object) -> object:
        loads.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(
        LTX2VideoTransformer3DModel, "from_pretrained", classmethod(spy)
    )
    loaded = loaded_model(str(folder), transformer_file=str(gguf)).pipe
    assert loads == []
    assert getattr(loaded.transformer, "is_quantized", False)
