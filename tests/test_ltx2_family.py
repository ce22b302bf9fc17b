"""The LTX-2 family: versions read from their folders, the makers' recipes
stepped at the transformer, and long takes whose sound runs on.

Every model here is a tiny random-weight build of the real diffusers classes
(`engine.backends.ltx2.tiny`); hooks on the transformer record what reached
it. Nothing is mocked away.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import rescale_noise_cfg
from typer.testing import CliRunner

from engine.backend import (
    BackendError,
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    WindowPlan,
)
from engine.backends.ltx2 import guidance as guidance_module
from engine.backends.ltx2.audio import decode_audio, latents_per_second
from engine.backends.ltx2.backend import LTX2Backend, release_models, use_pipeline
from engine.backends.ltx2.loading import model_version_of, version_of_folder
from engine.backends.ltx2.sample import Carried, Scene, encode_prompt
from engine.backends.ltx2.tiny import build_random_pipeline
from engine.backends.ltx2.windows import audio_overlap, sample_take
from engine.catalog import LTX2_VERSIONS, resolve_preset
from kg.schema import SceneEdge, SceneNode, Settings, Story, WindowSettings
from kg.store import load_story, save_story

FPS = 24


@pytest.fixture(autouse=True)
def _fresh_models() -> Any:
    yield
    release_models()


def _save(tmp_path: Path, version: str, layers: int | None = None) -> Path:
    folder = tmp_path / f"LTX-{version}"
    pipe = build_random_pipeline(version=version, layers=layers)  # type: ignore[arg-type]
    pipe.save_pretrained(folder)
    return folder


def _record(pipe: Any) -> list[dict[str, Any]]:
    """Every transformer pass: batch, sigma, STG blocks, isolation, cross timestep."""
    calls: list[dict[str, Any]] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        calls.append(
            dict(
                batch=kwargs["hidden_states"].shape[0],
                sigma=round(float(kwargs["sigma"][0]) / 1000.0, 5),
                blocks=kwargs.get("spatio_temporal_guidance_blocks"),
                isolate=kwargs.get("isolate_modalities"),
                cross=kwargs.get("use_cross_timestep"),
                video=kwargs["hidden_states"].detach().clone(),
                audio=kwargs["audio_hidden_states"].detach().clone(),
            )
        )

    pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    return calls


def _request(model: str, **kw: Any) -> GenerationRequest:
    base = dict(
        prompt="rain on a window", width=64, height=64, num_frames=9, fps=FPS,
        seed=1, steps=2, guidance=3.0, model=model,
    )  # fmt: skip
    return GenerationRequest(**{**base, **kw})


@pytest.mark.parametrize(
    ("version", "layers", "block", "steps"),
    [("2.0", 30, 29, 40), ("2.3", 29, 28, 30), ("2.5", 29, 28, 30)],
)
def test_each_version_loads_from_its_folder_and_steps_the_makers_recipe(
    tmp_path: Path, version: str, layers: int | None, block: int, steps: int
) -> None:
    folder = _save(tmp_path, version, layers)
    assert version_of_folder(folder)[0] == version
    recipe = LTX2Backend().recipe("balanced", str(folder))
    assert (recipe.steps, recipe.guidance, recipe.stg, recipe.stg_blocks) == (
        steps,
        3.0,
        1.0,
        (block,),
    )
    assert (recipe.modality, recipe.audio_guidance, recipe.rescale) == (3.0, 7.0, 0.7)
    # a short prompt window keeps 29 blocks cheap on the CPU
    backend = LTX2Backend(model=str(folder), max_sequence_length=32)
    from engine.backends.ltx2.backend import loaded_model

    pipe = loaded_model(str(folder), "cpu", "none").pipe
    if version == "2.5":  # the Gemma 4 text encoder of LTX-2.5
        assert (
            type(pipe.text_encoder).__name__ == "Gemma4UnifiedForConditionalGeneration"
        )
    calls = _record(pipe)
    result = backend.generate(
        _request(str(folder), steps=2, guidance=recipe.guidance),
        lambda *a: None,
        CancelToken(),
    )
    # four passes a step in three calls: CFG (a batch of two), STG on the
    # makers' block, modality isolation; all at the same sigma, the cross
    # timestep from 2.3 on
    assert len(calls) == 3 * 2
    for i in range(2):
        cfg, stg, iso = calls[3 * i : 3 * i + 3]
        assert cfg["batch"] == 2 and cfg["blocks"] is None and not cfg["isolate"]
        assert stg["batch"] == 1 and stg["blocks"] == [block] and not stg["isolate"]
        assert iso["batch"] == 1 and iso["blocks"] is None and iso["isolate"] is True
        assert cfg["sigma"] == stg["sigma"] == iso["sigma"]
        assert all(c["cross"] is (version != "2.0") for c in (cfg, stg, iso))
    taken = result.recipe
    assert taken is not None and taken.model_version == version
    assert "config" in taken.version_source
    stage = taken.stages[0]
    assert (stage.guidance, stage.audio_guidance, stage.guidance_rescale) == (
        3.0,
        7.0,
        0.7,
    )
    assert (stage.stg_scale, stage.stg_blocks, stage.modality_scale) == (
        1.0,
        [block],
        3.0,
    )
    assert stage.transformer_passes == 4 and len(stage.sigmas) == 2


def test_stg_perturbs_the_recipes_block_and_no_other(tmp_path: Path) -> None:
    pipe = build_random_pipeline(version="2.3")
    use_pipeline("tiny-random-2.3", pipe)
    seen: list[int] = []
    for index, block in enumerate(pipe.transformer.transformer_blocks):
        block.attn1.register_forward_pre_hook(
            lambda m, a, kw, index=index: (
                seen.append(index) if kw.get("perturbation_mask") is not None else None
            ),
            with_kwargs=True,
        )
    LTX2Backend().generate(
        _request("tiny-random-2.3", quality_preset="balanced"),
        lambda *a: None,
        CancelToken(),
    )
    assert seen and set(seen) == {1}  # the tiny's presets: its last block


def test_the_guidance_sum_is_diffusers_delta_formulation() -> None:
    torch.manual_seed(0)
    un, cond, pert, iso = (torch.randn(1, 6, 4) for _ in range(4))
    scene = Scene(9, 64, 64, FPS, 0, 2, 3.0, False, 7.0, 0.7, 1.0, (0,), 3.0)

    def run(embeds: Any, n: int, *, isolate: bool = False, blocks: Any = ()) -> Any:
        if n == 2:
            both = torch.cat([un, cond])
            return both, both
        out = iso if isolate else pert
        return out, out

    cond_only = guidance_module.Conditional(None)  # type: ignore[arg-type]
    video, audio = guidance_module.guided(scene, run, None, cond_only, 2)  # type: ignore[arg-type]
    want_v = cond + 2.0 * (cond - un) + 1.0 * (cond - pert) + 2.0 * (cond - iso)
    want_a = cond + 6.0 * (cond - un) + 1.0 * (cond - pert) + 2.0 * (cond - iso)
    torch.testing.assert_close(video, rescale_noise_cfg(want_v, cond, 0.7))
    torch.testing.assert_close(audio, rescale_noise_cfg(want_a, cond, 0.7))


def test_fast_preset_turns_stg_and_modality_off_and_says_what_it_costs() -> None:
    fast = resolve_preset("ltx2", "fast", "m", kind="dev", version="2.3")
    balanced = resolve_preset("ltx2", "balanced", "m", kind="dev", version="2.3")
    assert (fast.stg, fast.modality, fast.passes) == (0.0, 1.0, 2)
    assert balanced.passes == 4 and "4 transformer passes" in balanced.describe()
    distilled = resolve_preset("ltx2", "balanced", "m", kind="distilled", version="2.3")
    assert (distilled.steps, distilled.guidance, distilled.passes) == (8, 1.0, 1)
    assert set(LTX2_VERSIONS) == {"2.0", "2.3", "2.5"}
    assert model_version_of("tiny-random-2.5")[0] == "2.5"


def test_a_block_the_transformer_lacks_is_refused_by_name() -> None:
    pipe = build_random_pipeline(version="2.0")  # one block, the recipe says 29
    use_pipeline("tiny-dev", pipe)
    with pytest.raises(BackendError, match="block 29 does not exist"):
        LTX2Backend().generate(
            _request("tiny-dev", quality_preset="balanced"),
            lambda *a: None,
            CancelToken(),
        )


# 81 frames = 11 latents; windows of 33 frames (5 latents) overlapping by 16
# (2 latents): latent spans (0, 5), (3, 8), (6, 11), three windows.
PLAN = WindowPlan(frames=33, overlap_frames=16, strength=1.0, adain_factor=0.0)


def _take(pipe: Any, calls: list[dict[str, Any]]) -> Any:
    scene = Scene(81, 64, 64, FPS, seed=3, steps=2, guidance=1.0)
    prompt = encode_prompt(pipe, "waves on rocks", "", 1.0, 64)
    return sample_take(
        pipe, scene, PLAN, [prompt], ["waves on rocks"], Carried(),
        lambda *a: None, lambda: False,
    )  # fmt: skip


def test_three_window_take_carries_both_streams_exactly() -> None:
    pipe = build_random_pipeline(version="2.3")
    calls = _record(pipe)
    take = _take(pipe, calls)
    assert take.video.shape[2] == 11 and len(take.windows) == 3
    per_second = latents_per_second(pipe)
    assert take.audio.shape[1] == round(81 / FPS * per_second)
    h = w = 64 // 32
    made_v, made_a = 5, take.sampled[0].audio.shape[1]
    for window, start in ((1, 3), (2, 6)):
        held_v, held_a = take.seams[window - 1]
        _, want_a = audio_overlap(made_a, made_v, 5, 2, FPS, per_second)
        assert (held_v, held_a) == (2, want_a)
        tail_v = take.video[:, :, start : start + 2]  # [1, C, 2, h, w]
        packed = tail_v.permute(0, 2, 3, 4, 1).reshape(1, 2 * h * w, -1)
        tail_a = take.audio[:, made_a - want_a : made_a]
        window_calls = calls[2 * window : 2 * window + 2]  # two steps, one pass
        for call in window_calls:
            assert torch.equal(call["video"][:, : 2 * h * w], packed)
            assert torch.equal(call["audio"][:, :want_a], tail_a)
        made_v += 3
        made_a = made_a + take.sampled[window].audio.shape[1] - want_a


def test_the_sound_has_no_gap_or_repeat_at_the_seams() -> None:
    pipe = build_random_pipeline(version="2.3")
    take = _take(pipe, [])
    per_second = latents_per_second(pipe)
    whole, rate = decode_audio(pipe, take.audio)
    per_latent = rate / per_second
    # the take's latents are each window's own, held ones counted once
    made_a, made_v = take.sampled[0].audio.shape[1], 5
    parts = [take.sampled[0].audio]
    for window in (1, 2):
        _, held = audio_overlap(made_a, made_v, 5, 2, FPS, per_second)
        own = take.sampled[window].audio
        parts.append(own[:, held:])
        # decoded, window's own sound matches the take's best at its place:
        # a latent early or late (a repeat or a gap) matches worse
        mine, _ = decode_audio(pipe, own)
        middle = slice(round(4 * per_latent), round(10 * per_latent))
        errors = {}
        for shift in range(-3, 4):
            at = round((made_a - held + shift) * per_latent)
            ours = whole[:, at + middle.start : at + middle.stop]
            errors[shift] = float(np.abs(ours - mine[:, middle]).mean())
        assert min(errors, key=errors.__getitem__) == 0, errors
        made_a += own.shape[1] - held
        made_v += 3
    assert torch.equal(torch.cat(parts, dim=1), take.audio)


def _long_story(tmp_path: Path) -> Path:
    story_dir = tmp_path / "story"
    story = Story(
        title="Tide",
        settings=Settings(
            backend="ltx2",
            model="tiny-random-2.3",
            width=64,
            height=64,
            fps=FPS,
            quality_preset="balanced",
            windows=WindowSettings(frames=33, overlap_frames=16),
        ),
        scenes=[
            SceneNode(id="tide", title="The tide", motion="waves rise", num_frames=81),
            SceneNode(id="calm", title="Calm", motion="the sea calms", num_frames=17),
        ],
        edges=[SceneEdge(source="tide", target="calm")],
    )
    save_story(story, story_dir)
    return story_dir


def test_cancel_in_window_two_leaves_the_story_unchanged(tmp_path: Path) -> None:
    from engine.generate import generate_scene

    story_dir = _long_story(tmp_path)
    before = load_story(story_dir).model_dump(exclude={"revision"})
    cancel = CancelToken()

    def progress(step: int, total: int, window: int = 1, windows: int = 1) -> None:
        if window == 2:
            cancel.set()

    with pytest.raises(GenerationCancelled, match="window 2 of 3"):
        generate_scene(
            story_dir, "tide", backend=LTX2Backend(), progress=progress, cancel=cancel
        )
    assert load_story(story_dir).model_dump(exclude={"revision"}) == before
    assert not any(p.is_file() for p in (story_dir / "scenes").rglob("*"))


def test_storygraph_run_on_tiny_ltx_2_3_makes_a_three_window_scene_with_sound(
    tmp_path: Path,
) -> None:
    from engine.clip_probe import probe_clips
    from studio.cli import app

    story_dir = _long_story(tmp_path)
    result = CliRunner().invoke(app, ["run", str(story_dir), "--no-score"])
    assert result.exit_code == 0, result.output
    story = load_story(story_dir)
    tide, calm = story.scene("tide").selected, story.scene("calm").selected
    assert tide is not None and calm is not None
    assert len(tide.windows) == 3 and calm.windows == []
    for take in (tide, calm):
        recipe = take.params.recipe
        assert recipe is not None and recipe.model_version == "2.3"
        assert recipe.quality_preset == "balanced"
        assert all(
            s.stg_blocks == [1] and s.transformer_passes == 4 for s in recipe.stages
        )
        assert take.files.audio is not None
    assert [s.name for s in tide.params.recipe.stages] == [  # type: ignore[union-attr]
        "window 1",
        "window 2",
        "window 3",
    ]
    info = probe_clips([story_dir / tide.files.video])[0]  # type: ignore[operator]
    assert not isinstance(info, str) and info.frames == 81
    import wave

    with wave.open(str(story_dir / tide.files.audio)) as handle:  # type: ignore[operator]
        assert handle.getnframes() == round(81 / FPS * handle.getframerate())
    assert calm.params.continuity_used == "latent"
    assert calm.params.audio_continuity == "latent"
    # the Storyboard's take card says which release, recipe and windows
    from studio.testing import page_test, shown_text

    at = page_test("storyboard", story_dir).run()
    assert not at.exception
    text = shown_text(at)
    assert "LTX-2.3 tiny, balanced: each window 2 steps, CFG 3 (audio 7)" in text
    assert "STG 1 on block 1, modality 3" in text and "4 passes a step" in text
    assert "long take: 3 windows" in text
    json.loads((story_dir / "kg_state.json").read_text())


def test_settings_lists_the_releases_with_their_recipes(tmp_path: Path) -> None:
    from studio.testing import page_test, shown_text

    story_dir = _long_story(tmp_path)
    at = page_test("settings", story_dir).run()
    assert not at.exception
    text = shown_text(at)
    for title in ("LTX-2.0 (19B)", "LTX-2.3 (22B)", "LTX-2.5 (22B)"):
        assert title in text
    assert "balanced: 30 steps, CFG 3 (audio 7), STG 1 on block 28" in text
    assert "Gemma 4" in text and "tiny-random-2.5" in text
