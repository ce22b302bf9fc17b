"""Character and environment references on LTX-2: keyframe tokens at the
makers' pixel frame -1, before the clip, in every window of a long take,
stripped from the output and recorded on the take; in-context references
for an IC-LoRA on the clip's own grid. Tiny random weights, the real
diffusers transformer, hooks on what reaches it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from engine.backend import CancelToken, GenerationRequest, ReferenceImage, WindowPlan
from engine.backends.ltx2.backend import LTX2Backend, loaded_model, release_models
from engine.generate import generate_scene
from engine.loras import read_loras
from engine.references import ReferenceFileError
from kg.schema import (
    Character,
    Environment,
    LoraRef,
    SceneNode,
    Settings,
    Story,
)
from kg.store import load_story, save_story

MODEL = "tiny-random-2.3"
FPS = 24
SIZE = 64


@pytest.fixture(autouse=True)
def _fresh_models() -> Any:
    release_models()
    yield
    release_models()


class Spy:
    """What reaches the transformer at each call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, torch.Tensor]] = []

    def __call__(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        self.calls.append(
            {
                "tokens": kwargs["hidden_states"].detach().clone(),
                "coords": kwargs["video_coords"].detach().clone(),
                "timestep": kwargs["timestep"].detach().clone(),
                "frames": kwargs["num_frames"],
            }
        )


@pytest.fixture
def spy() -> Any:
    pipe = loaded_model(MODEL, "cpu", "none").pipe
    seen = Spy()
    handle = pipe.transformer.register_forward_pre_hook(seen, with_kwargs=True)
    yield seen
    handle.remove()


def _refs(*colours: int, strength: float = 1.0) -> tuple[ReferenceImage, ...]:
    return tuple(
        ReferenceImage(
            f"references/r{j}.png",
            "fox",
            np.full((SIZE, SIZE, 3), c, np.uint8),
            strength,
        )
        for j, c in enumerate(colours)
    )


def _request(**kw: Any) -> GenerationRequest:
    base = dict(
        prompt="a fox", width=SIZE, height=SIZE, num_frames=9, fps=FPS, seed=1,
        steps=2, guidance=1.0, model=MODEL, quality_preset="fast",
    )  # fmt: skip
    return GenerationRequest(**{**base, **kw})


PER = (SIZE // 32) ** 2  # tokens per latent frame


def test_references_are_keyframes_at_pixel_frame_minus_one_in_every_window(
    spy: Spy,
) -> None:
    plan = WindowPlan(frames=17, overlap_frames=8, strength=1.0)
    out = LTX2Backend().generate(
        _request(num_frames=33, references=_refs(30, 220), windows=plan),
        lambda *a: None,
        CancelToken(),
    )
    assert out.frames.shape == (33, SIZE, SIZE, 3)  # reference tokens stripped
    assert len(out.windows) == 2 and len(spy.calls) == 2 * 2  # two steps each
    for call in spy.calls:
        clip = call["frames"] * PER
        assert call["tokens"].shape[1] == clip + 2 * PER
        t = call["coords"][0, 0]  # [tokens, (start, end)] in seconds
        assert (t[:clip, 0] >= 0).all()  # the clip from frame 0 on
        refs = t[clip:]  # both at the makers' pixel frame -1, one frame long
        assert torch.allclose(refs[:, 0], torch.full((2 * PER,), -1 / FPS))
        assert torch.allclose(refs[:, 1], torch.zeros(2 * PER), atol=1e-6)
        steps = call["timestep"][0]
        assert torch.all(steps[clip:] == 0)  # held clean (strength 1)
    # spatial positions are the clip's own
    first = spy.calls[0]
    clip = first["frames"] * PER
    torch.testing.assert_close(
        first["coords"][0, 1:, clip : clip + PER], first["coords"][0, 1:, :PER]
    )


def test_a_weaker_reference_is_held_at_t_times_one_minus_its_strength(spy: Spy) -> None:
    LTX2Backend().generate(
        _request(references=_refs(90, strength=0.3)), lambda *a: None, CancelToken()
    )
    call = spy.calls[0]
    clip = call["frames"] * PER
    steps = call["timestep"][0]
    t = steps[0].item()
    assert torch.allclose(steps[clip:], torch.full((PER,), t * 0.7), atol=1e-3)


def test_an_in_context_lora_reads_the_references_on_the_clips_own_grid(
    tmp_path: Path, spy: Spy
) -> None:
    pipe = loaded_model(MODEL, "cpu", "none").pipe
    layer = pipe.transformer.get_submodule("transformer_blocks.0.attn1.to_k")
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "ingredients.safetensors"
    save_file(
        {
            "transformer.transformer_blocks.0.attn1.to_k.lora_A.weight": torch.randn(
                2, layer.in_features, generator=g
            ),
            "transformer.transformer_blocks.0.attn1.to_k.lora_B.weight": torch.randn(
                layer.out_features, 2, generator=g
            ),
        },
        str(path),
        metadata={"reference_downscale_factor": "2"},
    )
    lora = read_loras(tmp_path, [(LoraRef(file=str(path), in_context=True), "story")])
    LTX2Backend().generate(
        _request(width=128, height=128, references=_refs(40), loras=lora),
        lambda *a: None,
        CancelToken(),
    )
    call = spy.calls[0]
    per = (128 // 32) ** 2
    clip = call["frames"] * per
    ref = call["coords"][0, :, clip:]  # one 64x64 reference: 2x2 tokens
    assert ref.shape[1] == 4
    assert (ref[0, :, 0] >= 0).all()  # from time 0, not before the clip
    # spatial positions scaled back by the factor: two tokens span the clip's 4
    for axis in (1, 2):
        assert set(ref[axis, :, 0].tolist()) == {0.0, 64.0}
        assert set(ref[axis, :, 1].tolist()) == {64.0, 128.0}
    assert torch.all(call["timestep"][0, clip:] == 0)  # clean, as trained


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 48), colour).save(buf, format="PNG")
    return buf.getvalue()


def _story(tmp_path: Path) -> Path:
    (tmp_path / "references").mkdir()
    (tmp_path / "references/fox.png").write_bytes(_png((200, 90, 20)))
    (tmp_path / "references/snow.png").write_bytes(_png((240, 240, 250)))
    story = Story(
        title="Fox",
        settings=Settings(
            backend="ltx2", model=MODEL, width=SIZE, height=SIZE, fps=FPS,
            quality_preset="fast",
        ),
        characters=[Character(id="fox", name="Fox",
                              reference_images=["references/fox.png"])],
        environments=[Environment(id="snow", name="Snow",
                                  reference_images=["references/snow.png"])],
        scenes=[SceneNode(id="run", title="Runs", motion="runs", num_frames=9,
                          character_ids=["fox"], environment_id="snow")],
    )  # fmt: skip
    save_story(story, tmp_path)
    return tmp_path


def test_the_take_records_its_references_and_a_missing_one_is_refused(
    tmp_path: Path, spy: Spy
) -> None:
    story_dir = _story(tmp_path)
    take = generate_scene(story_dir, "run", backend=LTX2Backend())
    assert take.status == "done", take.error
    assert [(r.path, r.entity, r.strength) for r in take.params.references] == [
        ("references/fox.png", "fox", 0.8),
        ("references/snow.png", "snow", 0.8),
    ]
    call = spy.calls[0]
    assert call["tokens"].shape[1] == (call["frames"] + 2) * PER
    (story_dir / "references/snow.png").unlink()
    with pytest.raises(ReferenceFileError, match=r"references/snow.png \(snow\)"):
        generate_scene(story_dir, "run", backend=LTX2Backend(), force=True)
    assert len(load_story(story_dir).scene("run").takes) == 1


def test_the_two_stage_route_keeps_references_loras_and_a_supplied_track(
    tmp_path: Path,
) -> None:
    import wave

    from engine.backend import DialogueAudio
    from engine.backends.ltx2.backend import use_pipeline
    from engine.backends.ltx2.supplied_audio import encode_track
    from engine.backends.ltx2.tiny import build_random_pipeline

    pipe = build_random_pipeline(upsampler=True)
    use_pipeline("tiny-cast-distilled", pipe)
    layer = pipe.transformer.get_submodule("transformer_blocks.0.attn1.to_q")
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "fox.safetensors"
    save_file(
        {
            "transformer.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.randn(
                2, layer.in_features, generator=g
            ),
            "transformer.transformer_blocks.0.attn1.to_q.lora_B.weight": torch.randn(
                layer.out_features, 2, generator=g
            ),
        },
        str(path),
    )
    lora = read_loras(tmp_path, [(LoraRef(file=str(path), weight=0.5), "story")])
    buf = io.BytesIO()
    with wave.open(buf, "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(16_000)
        t = np.arange(12_000) / 16_000
        fh.writeframes((0.3 * np.sin(2 * np.pi * 200 * t) * 32767).astype("<i2"))
    track = DialogueAudio("voices/a.wav", buf.getvalue(), 0.75, "x")
    calls: list[tuple[int, torch.Tensor]] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        calls.append(
            (kwargs["hidden_states"].shape[1], kwargs["audio_hidden_states"].clone())
        )

    pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    refs = tuple(
        ReferenceImage(
            "references/r.png", "fox", np.full((128, 128, 3), 90, np.uint8), 1.0
        )
        for _ in range(1)
    )
    result = LTX2Backend().generate(
        _request(
            model="tiny-cast-distilled", width=128, height=128, num_frames=17, steps=8,
            references=refs, loras=lora, dialogue_audio=track,
        ),
        lambda *a: None,
        CancelToken(),
    )  # fmt: skip
    recipe = result.recipe
    assert recipe is not None and [s.name for s in recipe.stages] == [
        "stage 1",
        "stage 2",
    ]
    assert all(s.loras[:1] == ["fox"] for s in recipe.stages)
    # stage 1 at half size (2x2 tokens a frame), stage 2 at full (4x4), with
    # the reference keyframe in both (averaged 2x2 for stage 1)
    sizes = {n for n, _ in calls}
    assert sizes == {3 * 4 + 4, 3 * 16 + 16}
    held = encode_track(pipe, track, 17, FPS).latents
    for _, audio in calls:
        assert torch.equal(audio.float(), held[:, : audio.shape[1]])
    assert result.audio is not None and result.audio_rate == 16_000
