"""A LoRA stack on LTX-2: LoRAs written in code for the tiny random-weight
transformer, loaded through diffusers' adapter API (the real peft layers),
scaled by their weights, refused before any weight is read when they are
made for another architecture, recorded on the take and in its cache key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from engine.backend import CancelToken, GenerationRequest, LoraFile
from engine.backends.ltx2 import loras as stack_module
from engine.backends.ltx2.backend import LTX2Backend, loaded_model, release_models
from engine.generate import generate_scene
from engine.loras import LoraFileError, chosen_loras, read_loras
from kg.schema import Character, LoraRef, SceneNode, Settings, Story
from kg.store import load_story, save_story, update_story

MODEL = "tiny-random-2.3"
LAYER = "transformer_blocks.0.attn1.to_q"


@pytest.fixture(autouse=True)
def _fresh_models() -> Any:
    release_models()
    yield
    release_models()


def write_lora(
    path: Path,
    sizes: tuple[int, int],
    *,
    prefix: str = "transformer.",
    layer: str = LAYER,
    seed: int = 0,
    metadata: dict[str, str] | None = None,
) -> Path:
    """A rank-2 LoRA on one linear layer (``sizes``: its in and out)."""
    g = torch.Generator().manual_seed(seed)
    size_in, size_out = sizes
    save_file(
        {
            f"{prefix}{layer}.lora_A.weight": torch.randn(2, size_in, generator=g),
            f"{prefix}{layer}.lora_B.weight": torch.randn(size_out, 2, generator=g),
        },
        str(path),
        metadata=metadata,
    )
    return path


def _sizes() -> tuple[int, int]:
    layer = loaded_model(MODEL, "cpu", "none").pipe.transformer.get_submodule(LAYER)
    return layer.in_features, layer.out_features


def _lora(path: Path, weight: float = 1.0, **kw: Any) -> LoraFile:
    return read_loras(
        path.parent, [(LoraRef(file=str(path), weight=weight, **kw), "story")]
    )[0]


def _request(**kw: Any) -> GenerationRequest:
    base = dict(
        prompt="a fox in snow", width=64, height=64, num_frames=9, fps=24, seed=3,
        steps=2, guidance=1.0, model=MODEL, quality_preset="fast",
    )  # fmt: skip
    return GenerationRequest(**{**base, **kw})


def _first_output(request: GenerationRequest) -> tuple[torch.Tensor, torch.Tensor]:
    """The tiny transformer's first video prediction, and the LoRA'd layer's
    first output, for ``request``."""
    pipe = loaded_model(MODEL, "cpu", "none").pipe
    seen: dict[str, torch.Tensor] = {}

    def model_out(module: Any, args: Any, kwargs: Any, out: Any) -> None:
        seen.setdefault("pred", out[0].detach().clone())

    def layer_out(module: Any, args: Any, out: torch.Tensor) -> None:
        seen.setdefault("layer", out.detach().clone())

    hooks = [pipe.transformer.register_forward_hook(model_out, with_kwargs=True)]
    hooks.append(pipe.transformer.get_submodule(LAYER).register_forward_hook(layer_out))
    try:
        LTX2Backend().generate(request, lambda *a: None, CancelToken())
    finally:
        for h in hooks:
            h.remove()
    return seen["pred"], seen["layer"]


def test_a_lora_changes_the_output_by_its_weight_and_not_once_detached(
    tmp_path: Path,
) -> None:
    base, _ = _first_output(_request())
    path = write_lora(tmp_path / "fox.safetensors", _sizes())
    full, _ = _first_output(_request(loras=(_lora(path),)))
    assert not torch.allclose(full, base, atol=1e-4)  # attached: it changes
    # the layer the LoRA wraps now: its output moves linearly with the weight
    _, off = _first_output(_request())
    assert torch.equal(_first_output(_request())[0], base)  # detached: as before
    _, one = _first_output(_request(loras=(_lora(path, 1.0),)))
    _, half = _first_output(_request(loras=(_lora(path, 0.5),)))
    _, minus = _first_output(_request(loras=(_lora(path, -1.0),)))
    torch.testing.assert_close(half - off, 0.5 * (one - off), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(minus - off, -(one - off), atol=1e-5, rtol=1e-4)
    assert (one - off).abs().max() > 1e-3


def test_a_fused_stack_gives_the_unfused_output_and_unfuses_back(
    tmp_path: Path,
) -> None:
    pipe = loaded_model(MODEL, "cpu", "none").pipe
    path = write_lora(tmp_path / "fox.safetensors", _sizes())
    layer = pipe.transformer.get_submodule(LAYER)
    x = torch.randn(3, layer.in_features, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = pipe.transformer.get_submodule(LAYER)(x)
    adapters = stack_module.load_stack(pipe, [_lora(path, 0.7)])
    stack_module.activate(pipe, [(a.name, a.weight) for a in adapters])
    with torch.no_grad():
        unfused = pipe.transformer.get_submodule(LAYER)(x)
        stack_module.fuse(pipe, adapters)
        fused = pipe.transformer.get_submodule(LAYER).base_layer(x)
        stack_module.unfuse(pipe, adapters)
        stack_module.activate(pipe, [])
        after = pipe.transformer.get_submodule(LAYER)(x)
    torch.testing.assert_close(fused, unfused, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(unfused, before, atol=1e-4)


def test_the_makers_lora_names_load_through_diffusers_conversion(
    tmp_path: Path,
) -> None:
    path = write_lora(tmp_path / "m.safetensors", _sizes(), prefix="diffusion_model.")
    stack_module.check_stack(MODEL, [_lora(path)])  # fits: nothing raised
    pipe = loaded_model(MODEL, "cpu", "none").pipe
    stack_module.load_stack(pipe, [_lora(path)])
    assert hasattr(pipe.transformer.get_submodule(LAYER), "lora_A")


def _story(tmp_path: Path, loras: list[LoraRef]) -> Path:
    story = Story(
        title="Fox",
        settings=Settings(
            backend="ltx2", model=MODEL, width=64, height=64, fps=24,
            quality_preset="fast", loras=loras[:1],
        ),
        characters=[Character(id="fox", name="Fox", loras=loras[1:])],
        scenes=[SceneNode(id="run", title="Runs", motion="runs", num_frames=9,
                          character_ids=["fox"])],
    )  # fmt: skip
    save_story(story, tmp_path)
    return tmp_path


def test_a_lora_for_another_architecture_is_refused_before_any_weight_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = write_lora(tmp_path / "ltx-video.safetensors", (2048, 2048))
    image = write_lora(
        tmp_path / "sdxl.safetensors", (320, 320), prefix="lora_unet_", layer="down.0"
    )
    read: list[str] = []
    import safetensors.torch

    def spy(path: Any, *a: Any, **kw: Any) -> Any:
        read.append(str(path))
        raise AssertionError("a LoRA's weights were read")

    monkeypatch.setattr(safetensors.torch, "load_file", spy)
    story_dir = _story(
        tmp_path, [LoraRef(file=str(wide)), LoraRef(file=str(image), weight=0.5)]
    )
    with pytest.raises(LoraFileError) as err:
        generate_scene(story_dir, "run", backend=LTX2Backend())
    text = str(err.value)
    assert f"{wide} (story)" in text and f"{image} (character fox)" in text
    assert "another architecture" in text and "2048" in text
    assert read == [] and load_story(story_dir).scene("run").takes == []


def test_a_missing_lora_is_named_and_no_take_begins(tmp_path: Path) -> None:
    story_dir = _story(tmp_path, [LoraRef(file="loras/gone.safetensors")])
    with pytest.raises(
        LoraFileError, match=r"loras/gone.safetensors \(story\): the file is missing"
    ):
        generate_scene(story_dir, "run", backend=LTX2Backend())
    assert load_story(story_dir).scene("run").takes == []


def test_the_take_records_its_stack_and_the_cache_key_follows_it(
    tmp_path: Path,
) -> None:
    sizes = _sizes()
    (tmp_path / "loras").mkdir()
    write_lora(tmp_path / "loras" / "snow.safetensors", sizes, seed=1)
    fox = write_lora(tmp_path / "fox.safetensors", sizes, seed=2)
    story_dir = _story(
        tmp_path,
        [LoraRef(file="loras/snow.safetensors", weight=0.5), LoraRef(file=str(fox))],
    )
    story = load_story(story_dir)
    assert [(x.file, s) for x, s in chosen_loras(story, "run")] == [
        ("loras/snow.safetensors", "story"),
        (str(fox), "character fox"),
    ]
    take = generate_scene(story_dir, "run", backend=LTX2Backend())
    assert take.status == "done", take.error
    recipe = take.params.recipe
    assert recipe is not None
    assert [(x.name, x.weight, x.scope, x.fused) for x in recipe.loras] == [
        ("snow", 0.5, "story", False),
        ("fox", 1.0, "character fox", False),
    ]
    assert all(s.loras[:2] == ["snow", "fox"] for s in recipe.stages)
    keys = {take.params.cache_key}

    def weigh(story: Story) -> None:
        story.characters[0].loras[0].weight = 0.25

    update_story(story_dir, weigh)
    again = generate_scene(story_dir, "run", backend=LTX2Backend())
    keys.add(again.params.cache_key)

    def drop(story: Story) -> None:
        story.characters[0].loras = []

    update_story(story_dir, drop)
    plain = generate_scene(story_dir, "run", backend=LTX2Backend())
    keys.add(plain.params.cache_key)
    assert len(keys) == 3
    assert [x.name for x in plain.params.recipe.loras] == ["snow"]  # type: ignore[union-attr]


def test_backends_without_loras_or_sound_neither_read_nor_record_them(
    tmp_path: Path,
) -> None:
    story_dir = _story(tmp_path, [LoraRef(file="loras/gone.safetensors")])

    def voice(story: Story) -> None:
        story.settings.backend = "animatic"
        story.scene("run").dialogue_audio = "voices/gone.wav"

    update_story(story_dir, voice)
    take = generate_scene(story_dir, "run")
    assert take.status == "done", take.error
    assert take.params.recipe is None and take.params.dialogue_audio is None


def test_the_cache_key_follows_the_stack_and_the_dialogue_track() -> None:
    from engine.backend import DialogueAudio
    from engine.cache import cache_key

    def key(**kw: Any) -> str:
        return cache_key(
            backend="ltx2", backend_version="2", model=MODEL,
            request=_request(**kw), source=None, source_key="",
            continuity_mode="none",
        )  # fmt: skip

    lora = LoraFile("a.safetensors", "/x/a.safetensors", 1.0, "story", digest="d1")
    track = DialogueAudio("voices/a.wav", b"RIFF", 1.0, "s1")
    keys = {
        key(),
        key(loras=(lora,)),
        key(loras=(LoraFile(**{**lora.__dict__, "weight": 0.5}),)),
        key(loras=(LoraFile(**{**lora.__dict__, "digest": "d2"}),)),
        key(loras=(LoraFile(**{**lora.__dict__, "in_context": True}),)),
        key(dialogue_audio=track),
        key(dialogue_audio=DialogueAudio("voices/a.wav", b"RIFX", 1.0, "s2")),
    }
    assert len(keys) == 7
    assert key(loras=(lora,)) == key(loras=(lora,))
