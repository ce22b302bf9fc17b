"""The ``ltx`` backend on the tiny random-weight LTX-Video, on CPU.

The pipeline runs for real (tiny transformer, VAE and T5); hooks on the real
VAE encoder/decoder modules count encodes and capture what gets decoded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from engine.backend import (
    BackendError,
    CancelToken,
    ContinuityInput,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    OutOfMemoryError,
    get_backend,
)
from engine.backends.ltx.backend import LTXBackend, loaded_model

REQUEST = GenerationRequest(
    prompt="a fox runs through snow",
    width=64,
    height=64,
    num_frames=17,  # 3 latent frames: a tail of 2 is a real tail
    fps=24,
    seed=3,
    steps=2,
    guidance=3.0,
    model="tiny-random",
)


@pytest.fixture(scope="module")
def backend() -> LTXBackend:
    made = get_backend("ltx")
    assert isinstance(made, LTXBackend)
    return made


@pytest.fixture
def vae_probe() -> Iterator[dict[str, Any]]:
    """Counts real VAE encoder calls and captures the decoder's input latents."""
    pipe = loaded_model("tiny-random").pipe
    seen: dict[str, Any] = {"encodes": 0, "decoded": []}

    def count(module: Any, args: Any, output: Any) -> None:
        seen["encodes"] += 1

    def capture(module: Any, args: Any) -> None:
        seen["decoded"].append(args[0].detach().clone())

    handles = [
        pipe.vae.encoder.register_forward_hook(count),
        pipe.vae.decoder.register_forward_pre_hook(capture),
    ]
    yield seen
    for handle in handles:
        handle.remove()


def _run(backend: LTXBackend, request: GenerationRequest) -> GenerationResult:
    return backend.generate(request, lambda step, total: None, CancelToken())


def _normalised(decoded: torch.Tensor) -> torch.Tensor:
    pipe = loaded_model("tiny-random").pipe
    vae = pipe.vae
    return pipe._normalize_latents(
        decoded, vae.latents_mean, vae.latents_std, vae.config.scaling_factor
    )


def test_tiny_clip_has_frames_tail_latents_and_random_weight_label(
    backend: LTXBackend,
) -> None:
    steps: list[tuple[int, int]] = []
    result = backend.generate(REQUEST, lambda s, t: steps.append((s, t)), CancelToken())
    assert result.frames.shape == (17, 64, 64, 3)
    assert result.frames.dtype.name == "uint8"
    assert result.tail_latents is not None
    # the tail is the overlap the next scene carries: 24 frames = 3 latents
    assert tuple(result.tail_latents.shape) == (1, 8, 3, 2, 2)
    assert result.latent_meta["model"] == "tiny-random"
    assert result.latent_meta["tail_pixel_frames"] == "17"
    assert result.repeated_frames == 0 and result.windows == ()
    assert result.random_weights is True
    assert result.continuity_used == "none"
    assert steps == [(1, 2), (2, 2)]
    assert {"load", "prepare", "prompt", "denoise", "decode"} <= set(result.timings)


def test_carried_latents_are_conditioning_tokens_stripped_from_the_clip(
    backend: LTXBackend, vae_probe: dict[str, Any]
) -> None:
    """The tail enters as tokens (equal to it at every step), never decoded."""
    first = _run(backend, REQUEST)
    pipe = loaded_model("tiny-random").pipe
    tail = first.tail_latents[:, :, -2:]  # 2 of 3: the clip keeps one new latent
    tokens = pipe._pack_latents(tail, 1, 1)  # [1, 2*h*w, C]
    seen: list[torch.Tensor] = []

    def capture(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["hidden_states"].detach().clone())

    handle = pipe.transformer.register_forward_pre_hook(capture, with_kwargs=True)
    carried = ContinuityInput(
        mode="latent",
        tail_latents=tail,
        last_frame=first.frames[-1],
        latent_meta=first.latent_meta,
    )
    plan = dataclasses.replace(REQUEST.windows, strength=1.0)
    try:
        second = _run(
            backend,
            dataclasses.replace(
                REQUEST,
                seed=4,
                prompt="the fox stops",
                continuity=carried,
                windows=plan,
            ),
        )
    finally:
        handle.remove()
    assert second.continuity_used == "latent", second.continuity_note
    assert vae_probe["encodes"] == 0
    assert len(seen) == REQUEST.steps
    n = tokens.shape[1]
    for hidden in seen:  # [2 (CFG), 3*h*w + 2*h*w, C]
        assert hidden.shape[1] == 5 * 4
        for row in hidden:
            torch.testing.assert_close(row[-n:], tokens[0], atol=1e-6, rtol=0)
    # The clip decodes its own 3 latent frames, the tokens stripped; its first
    # latent is a one-frame slot, then one fused latent repeats the tail.
    decoded = vae_probe["decoded"][-1]
    assert decoded.shape[2] == 3
    assert second.frames.shape[0] == 17
    assert second.repeated_frames == 1 + 8
    assert not torch.allclose(_normalised(decoded)[:, :, 2], tail[:, :, -1])


def test_latents_from_another_model_fall_back_to_the_last_frame(
    backend: LTXBackend, vae_probe: dict[str, Any]
) -> None:
    first = _run(backend, REQUEST)
    carried = ContinuityInput(
        mode="latent",
        tail_latents=first.tail_latents,
        last_frame=first.frames[-1],
        latent_meta={**first.latent_meta, "model": "Lightricks/LTX-Video-0.9.5"},
    )
    second = _run(backend, dataclasses.replace(REQUEST, continuity=carried))
    assert second.continuity_used == "frame"
    assert "Lightricks/LTX-Video-0.9.5" in second.continuity_note
    assert "last frame" in second.continuity_note
    assert vae_probe["encodes"] == 1  # the last frame was encoded: the probe works


def test_latents_of_another_size_fall_back_and_none_without_a_frame(
    backend: LTXBackend,
) -> None:
    wide = _run(backend, dataclasses.replace(REQUEST, width=96, num_frames=9))
    carried = ContinuityInput(
        mode="latent", tail_latents=wide.tail_latents, latent_meta=wide.latent_meta
    )
    result = _run(backend, dataclasses.replace(REQUEST, continuity=carried))
    assert result.continuity_used == "none"
    assert "96x64" in result.continuity_note
    assert "no last frame" in result.continuity_note


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 70}, "multiples of 32, got 70 and 64"),
        ({"num_frames": 16}, r"8k \+ 1.*got 16"),
        ({"memory_mode": "tiny"}, "memory_mode must be one of"),
    ],
)
def test_bad_requests_are_refused_before_loading(
    backend: LTXBackend, change: dict[str, Any], message: str
) -> None:
    request = dataclasses.replace(REQUEST, model="not/in-the-cache", **change)
    with pytest.raises(BackendError, match=message):
        _run(backend, request)


def test_out_of_memory_inside_the_pipeline_becomes_advice(backend: LTXBackend) -> None:
    pipe = loaded_model("tiny-random").pipe

    def explode(module: Any, args: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    handle = pipe.transformer.register_forward_pre_hook(explode)
    try:
        advice = "memory_mode to fp8, group_offload or model_offload"
        with pytest.raises(OutOfMemoryError, match=advice):
            _run(backend, REQUEST)
    finally:
        handle.remove()
    assert _run(backend, REQUEST).frames.shape[0] == 17  # usable afterwards


def test_cancel_stops_between_steps(backend: LTXBackend) -> None:
    cancel = CancelToken()
    steps: list[int] = []

    def progress(step: int, total: int) -> None:
        steps.append(step)
        cancel.set()

    with pytest.raises(GenerationCancelled):
        backend.generate(dataclasses.replace(REQUEST, steps=4), progress, cancel)
    assert steps == [1]


def test_same_seed_same_clip(backend: LTXBackend) -> None:
    a, b = _run(backend, REQUEST), _run(backend, REQUEST)
    assert (a.frames == b.frames).all()
    assert torch.equal(a.tail_latents, b.tail_latents)


def _two_scene_story(tmp_path: Any) -> Any:
    from kg.schema import SceneEdge, SceneNode, Settings, Story
    from kg.store import save_story

    story = Story(
        title="Fox in the snow",
        settings=Settings(
            backend="ltx",
            model="tiny-random",
            width=64,
            height=64,
            fps=24,
            quality_preset="fast",
            continuity_mode="latent",
        ),
        scenes=[
            SceneNode(id="run", title="The fox runs", motion="runs", num_frames=17),
            SceneNode(id="stop", title="The fox stops", motion="stops", num_frames=17),
        ],
        edges=[SceneEdge(source="run", target="stop", transition="continuous")],
    )
    save_story(story, tmp_path)
    return tmp_path


def test_continuous_story_carries_latents_through_the_engine(
    backend: LTXBackend, vae_probe: dict[str, Any], tmp_path: Any
) -> None:
    from engine.continuity import load_tail_latents
    from engine.generate import generate_scene
    from kg.paths import resolve_asset
    from kg.store import load_story

    story_dir = _two_scene_story(tmp_path)
    first = generate_scene(story_dir, "run", backend=backend)
    assert first.status == "done" and first.params.random_weights
    assert vae_probe["encodes"] == 0
    second = generate_scene(story_dir, "stop", backend=backend)
    assert second.status == "done", second.error
    assert second.params.continuity_used == "latent", second.params.continuity_note
    assert vae_probe["encodes"] == 0  # no encode for the carried conditioning
    carried, meta = load_tail_latents(
        resolve_asset(story_dir, first.files.tail_latents)
    )
    assert meta["model"] == "tiny-random" and meta["normalisation"]
    assert carried.shape[2] == 3  # the story's overlap: 24 frames
    # 17 frames = 3 latents: 2 of the tail carried, one new latent kept
    assert second.overlap_frames == 9 and first.overlap_frames == 0
    story = load_story(story_dir)
    assert story.scene("stop").selected_take == second.index


def test_out_of_memory_in_the_engine_leaves_a_failed_take_and_intact_story(
    backend: LTXBackend, tmp_path: Any
) -> None:
    from engine.generate import generate_scene
    from kg.store import load_story

    story_dir = _two_scene_story(tmp_path)
    first = generate_scene(story_dir, "run", backend=backend)
    pipe = loaded_model("tiny-random").pipe

    def explode(module: Any, args: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    handle = pipe.transformer.register_forward_pre_hook(explode)
    try:
        failed = generate_scene(story_dir, "stop", backend=backend)
    finally:
        handle.remove()
    assert failed.status == "failed"
    assert "memory" in (failed.error or "")
    story = load_story(story_dir)  # validates
    assert story.scene("run").selected.index == first.index
    assert story.scene("run").selected.status == "done"
    assert story.scene("stop").takes[-1].status == "failed"


def test_counting_a_long_prompt_prints_no_tokenizer_warning(
    backend: LTXBackend, caplog: pytest.LogCaptureFixture
) -> None:
    import transformers

    count, budget = backend.prompt_tokens("tiny-random")
    transformers.logging.enable_propagation()
    try:
        with caplog.at_level("WARNING"):
            assert count("lighthouse " * 400) > budget
    finally:
        transformers.logging.disable_propagation()
    assert not [r for r in caplog.records if "longer than" in r.getMessage()]
