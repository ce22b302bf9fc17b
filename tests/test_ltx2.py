"""The ltx2 backend on tiny random LTX-2 weights, through the real diffusers code:
a continuous two-scene story carries both tails (exactly the conditioning
that enters the second scene, with no VAE encode), every clip has sound as
long as its picture; fp8 layerwise casting, a GGUF transformer written with
the gguf package, and a mismatched GGUF refused; the CLI's done-when run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from engine.backend import CancelToken, GenerationCancelled, GenerationRequest
from engine.backends.diffusers.gguf import write_gguf
from engine.backends.ltx2.backend import LTX2Backend, loaded_model, release_models
from engine.continuity import load_tail_audio, load_tail_latents
from engine.generate import generate_scene
from engine.sound import audio_duration, has_audio, read_wav
from engine.video import video_info
from kg.schema import (
    Character,
    DialogueLine,
    SceneEdge,
    SceneNode,
    SceneSound,
    Settings,
    Story,
    WindowSettings,
)
from kg.store import load_story, save_story
from studio.cli import app

SIZE, FRAMES, FPS = 64, 33, 24  # 2x2 latent tokens, 5 latent frames


def _story(tmp_path: Path, **settings: Any) -> Path:
    story = Story(
        title="Talk",
        settings=Settings(
            backend="ltx2",
            model="tiny-random",
            width=SIZE,
            height=SIZE,
            fps=FPS,
            quality_preset="fast",
            continuity_mode="latent",
            windows=WindowSettings(strength=1.0),
            **settings,
        ),
        characters=[Character(id="mara", name="Mara")],
        scenes=[
            SceneNode(
                id="door",
                title="Door",
                character_ids=["mara"],
                motion="Mara opens the door",
                num_frames=FRAMES,
                dialogue=[
                    DialogueLine(
                        character_id="mara", text="Is anyone here?", delivery="quietly"
                    )
                ],
                sound=SceneSound(
                    ambience="rain on the roof", effects=["a door creaks"]
                ),
            ),
            SceneNode(
                id="hall",
                title="Hall",
                character_ids=["mara"],
                motion="Mara walks in",
                num_frames=FRAMES,
            ),
        ],
        edges=[SceneEdge(source="door", target="hall", transition="continuous")],
    )
    save_story(story, tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _fresh_models() -> Any:
    release_models()
    yield
    release_models()


class _Watch:
    """Counts VAE encodes and keeps the transformer's first call's inputs."""

    def __init__(self, pipe: Any) -> None:
        self.encodes = {"vae": 0, "audio_vae": 0}
        self.first: dict[str, torch.Tensor] | None = None
        for name in self.encodes:
            module = getattr(pipe, name)
            original = module.encode

            def counted(*args: Any, _name: str = name, _f: Any = original, **kw: Any):
                self.encodes[_name] += 1
                return _f(*args, **kw)

            module.encode = counted
        pipe.transformer.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if self.first is None:
            self.first = {
                k: v.detach().clone()
                for k, v in kwargs.items()
                if isinstance(v, torch.Tensor)
            }

    def reset(self) -> None:
        self.first = None


def test_continuous_story_carries_video_and_audio_tails(tmp_path: Path) -> None:
    story_dir = _story(tmp_path)
    watch = _Watch(loaded_model("tiny-random").pipe)
    first = generate_scene(story_dir, "door")
    assert first.status == "done", first.error
    watch.reset()
    second = generate_scene(story_dir, "hall")
    assert second.status == "done", second.error

    # what entered the second scene is exactly what the first one stored
    tail, meta = load_tail_latents(story_dir / first.files.tail_latents)
    audio_tail = load_tail_audio(story_dir / first.files.tail_latents)
    assert audio_tail is not None and meta["audio_latents_per_second"] == "25"
    seen = watch.first
    assert seen is not None
    k = tail.shape[2]  # 3 latent frames (overlap 24 frames)
    tokens = tail.shape[3] * tail.shape[4]
    # slots 1..k-1: the tail's last k-1 latents as stored (their spans match)
    carried_video = tail[0, :, 1:].permute(1, 2, 3, 0).reshape((k - 1) * tokens, -1)
    torch.testing.assert_close(
        seen["hidden_states"][0, tokens : k * tokens], carried_video
    )
    # no round trip of the tail: one encode, of the lead frame alone
    assert watch.encodes == {"vae": 1, "audio_vae": 0}
    # slot 0: a genuine one-frame latent of the frame just before them
    from engine.backends.diffusers.frames import encode_frame
    from engine.video import last_frames

    clip = story_dir / load_story(story_dir).scene("door").selected.files.video
    lead = last_frames(clip, 1 + 8 * (k - 1))[0]
    request = GenerationRequest(
        prompt="", width=SIZE, height=SIZE, num_frames=FRAMES, fps=FPS, seed=0,
        steps=1, guidance=1.0,
    )  # fmt: skip
    one_frame = encode_frame(loaded_model("tiny-random").pipe, lead, request)
    torch.testing.assert_close(
        seen["hidden_states"][0, :tokens],
        one_frame[0].permute(1, 2, 3, 0).reshape(tokens, -1),
    )
    assert torch.all(seen["timestep"][0, : k * tokens] == 0)
    assert torch.all(seen["timestep"][0, k * tokens :] > 0)
    held = round((1 + 8 * (k - 1)) / FPS * 25)  # 17 frames of sound: 18 latents
    torch.testing.assert_close(
        seen["audio_hidden_states"][0, :held], audio_tail[0, -held:]
    )
    assert torch.all(seen["audio_timestep"][0, :held] == 0)
    assert torch.all(seen["audio_timestep"][0, held:] > 0)

    story = load_story(story_dir)
    take = story.scene("hall").selected
    assert take.params.continuity_used == "latent"
    assert take.params.audio_continuity == "latent"
    # held the makers' way at the join, and the recipe says so
    recipe = take.params.recipe
    assert recipe is not None and recipe.join_strength == 1.0
    assert recipe.checkpoint_kind == "tiny" and recipe.stages[0].sigmas
    assert take.overlap_frames == 17
    assert story.scene("door").selected.params.audio_continuity == "none"
    for scene in ("door", "hall"):
        files = story.scene(scene).selected.files
        clip = story_dir / files.video
        assert has_audio(clip)
        info = video_info(clip)
        picture = info["frames"] / info["fps"]
        assert abs(audio_duration(clip) - picture) <= 1 / FPS
        samples, rate = read_wav(story_dir / files.audio)
        assert samples.shape[0] == 2 and abs(samples.shape[1] / rate - picture) < 1e-3


def test_dialogue_and_sound_reach_the_ltx2_prompt_in_order(tmp_path: Path) -> None:
    story_dir = _story(tmp_path)
    story = load_story(story_dir)
    scene = story.scene("door")
    scene.dialogue.append(DialogueLine(character_id="mara", text="Hello?"))
    save_story(story, story_dir)
    take = generate_scene(story_dir, "door")
    prompt = take.params.prompt
    order = [
        "Mara opens the door",
        "Sound: rain on the roof, a door creaks.",
        'Mara says (quietly): "Is anyone here?"',
        'Mara says: "Hello?"',
    ]
    at = [prompt.index(p) for p in order]
    assert at == sorted(at), prompt


def test_cancel_between_steps_raises(tmp_path: Path) -> None:
    cancel = CancelToken()
    request = GenerationRequest(
        prompt="rain",
        width=SIZE,
        height=SIZE,
        num_frames=17,
        fps=FPS,
        seed=0,
        steps=3,
        guidance=1.0,
        model="tiny-random",
    )

    def progress(step: int, total: int, *rest: int) -> None:
        cancel.set()

    with pytest.raises(GenerationCancelled):
        LTX2Backend().generate(request, progress, cancel)


def test_fp8_layerwise_casting_generates_on_cpu(tmp_path: Path) -> None:
    story_dir = _story(tmp_path, memory_mode="fp8")
    take = generate_scene(story_dir, "door")
    assert take.status == "done", take.error
    pipe = loaded_model("tiny-random", memory_mode="fp8").pipe
    block = pipe.transformer.transformer_blocks[0]
    assert block.attn1.to_q.weight.dtype == torch.float8_e4m3fn
    assert has_audio(story_dir / take.files.video)


def test_gguf_transformer_loads_through_from_single_file(tmp_path: Path) -> None:
    from diffusers.quantizers.gguf.utils import GGUFParameter

    from engine.backends.ltx2.tiny import build_random_pipeline

    gguf = write_gguf(build_random_pipeline().transformer, tmp_path / "t.gguf")
    story_dir = _story(tmp_path / "story", transformer_file=str(gguf))
    take = generate_scene(story_dir, "door")
    assert take.status == "done", take.error
    pipe = loaded_model("tiny-random", transformer_file=str(gguf)).pipe
    assert pipe.transformer.is_quantized
    quantized = [
        p for p in pipe.transformer.parameters() if isinstance(p, GGUFParameter)
    ]
    assert quantized, "some weights stay GGUF-quantized"


def test_mismatched_gguf_is_refused_naming_file_and_architecture(
    tmp_path: Path,
) -> None:
    from engine.backends.ltx.tiny import build_random_pipeline as ltx_video

    gguf = write_gguf(ltx_video().transformer, tmp_path / "ltxv.gguf", family="ltx")
    story_dir = _story(tmp_path / "story", transformer_file=str(gguf))
    take = generate_scene(story_dir, "door")
    assert take.status == "failed"
    assert str(gguf) in take.error
    assert "holds LTX-Video transformer" in take.error
    assert "needs an LTX-2 transformer (ltx2)" in take.error


def test_cli_run_ltx2_tiny_random_makes_clips_with_sound(tmp_path: Path) -> None:
    story_dir = _story(tmp_path)
    result = CliRunner().invoke(
        app, ["run", str(story_dir), "--backend", "ltx2", "--model", "tiny-random"]
    )
    assert result.exit_code == 0, result.output
    story = load_story(story_dir)
    for scene in story.scenes:
        take = scene.selected
        assert take.status == "done" and take.params.random_weights
        assert has_audio(story_dir / take.files.video)
    assert story.scene("hall").selected.params.audio_continuity == "latent"


def test_tiny_tokenizer_is_gemma_like_and_counts() -> None:
    from engine.backends.ltx2.tiny import build_tokenizer

    count, budget = LTX2Backend().prompt_tokens("tiny-random")
    assert budget == 1024 and count("ab c") == 6  # <bos> ▁ a b ▁ c
    padded = build_tokenizer()("ab", padding="max_length", max_length=6)
    assert padded["attention_mask"] == [0, 0, 1, 1, 1, 1]  # <bos> ▁ a b, left-padded


def test_ltx2_dataset_clips_carry_their_sound_for_the_trainer(tmp_path: Path) -> None:
    import json

    from engine.dataset import ExportOptions, export_dataset

    story_dir = _story(tmp_path / "story")
    for scene in ("door", "hall"):
        assert generate_scene(story_dir, scene).status == "done"
    out = tmp_path / "story" / "dataset" / "ltx2"
    export_dataset(story_dir, out, ExportOptions(format="ltx2", pairing="none"))
    rows = [
        json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 2
    for row in rows:
        # no audio column: the trainer extracts the sound from the clip, cut
        # to its frames at its rate; the lossless .wav sits beside it
        assert set(row) == {"caption", "video"}
        samples, rate = read_wav(out / row["video"].replace(".mp4", ".wav"))
        info = video_info(out / row["video"])
        assert abs(samples.shape[1] / rate - info["frames"] / info["fps"]) < 1e-3
        assert has_audio(out / row["video"])
    readme = (out / "README.md").read_text()
    assert "--skip-audio" not in readme.split("Then set")[0].split("```")[1]


def test_two_stage_route_when_the_model_has_a_latent_upsampler() -> None:
    from engine.backend import ContinuityInput
    from engine.backends.ltx2.backend import use_pipeline
    from engine.backends.ltx2.tiny import build_random_pipeline

    pipe = build_random_pipeline(upsampler=True)
    use_pipeline("tiny-upsampler-distilled", pipe)
    tokens: list[int] = []
    pipe.transformer.register_forward_pre_hook(
        lambda m, a, kw: tokens.append(kw["hidden_states"].shape[1]), with_kwargs=True
    )
    reports: list[tuple[int, ...]] = []
    request = GenerationRequest(
        prompt="rain", width=128, height=128, num_frames=17, fps=FPS, seed=0,
        steps=2, guidance=1.0, model="tiny-upsampler-distilled",
    )  # fmt: skip
    first = LTX2Backend().generate(request, lambda *r: reports.append(r), CancelToken())
    assert first.frames.shape == (17, 128, 128, 3)
    frames = 3  # latent frames of 17 pixel frames
    assert tokens == [frames * 2 * 2] * 2 + [frames * 4 * 4] * 3  # 2 + 3 steps
    assert reports[-1] == (3, 3, 2, 2)  # stage 2 reports as the second window
    assert first.audio is not None and first.audio.shape[1] == round(17 / FPS * 16000)
    tokens.clear()
    cont = ContinuityInput(
        mode="latent",
        tail_latents=first.tail_latents,
        latent_meta=first.latent_meta,
        tail_audio_latents=first.tail_audio_latents,
    )
    again = LTX2Backend().generate(
        dataclasses.replace(request, continuity=cont), lambda *r: None, CancelToken()
    )
    assert again.continuity_used == "latent" and "two-stage" in again.continuity_note
    assert again.audio_continuity_used == "latent"
