"""Long takes and LTX-style continuity on the tiny random-weight LTX-Video.

The real diffusers modules run on the CPU; a spy around the sampler's window
step records what each window produced (it calls the real one).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.backend import (
    BackendError,
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    WindowPlan,
)
from engine.backends.ltx import extend
from engine.backends.ltx.backend import LTXBackend, loaded_model
from engine.catalog import check_settings
from kg.schema import (
    SCHEMA_VERSION,
    SceneEdge,
    SceneNode,
    Settings,
    Story,
    WindowSettings,
)
from kg.store import load_story, parse_story, save_story

# 41 frames = 6 latents; windows of 17 frames (3 latents) overlapping by 8
# (1 latent) -> latent spans (0, 3), (2, 5), (4, 6): three windows.
LONG = GenerationRequest(
    prompt="a fox runs through snow",
    width=64,
    height=64,
    num_frames=41,
    fps=24,
    seed=5,
    steps=2,
    guidance=3.0,
    model="tiny-random",
    windows=WindowPlan(frames=17, overlap_frames=8, prompts=("runs", "", "stops")),
)


@pytest.fixture(scope="module")
def backend() -> LTXBackend:
    return LTXBackend()


def _quiet(*report: int) -> None:
    return None


def test_fuse_overlap_is_the_linear_blend_of_both_inputs() -> None:
    prev = torch.arange(2 * 5, dtype=torch.float32).reshape(1, 1, 5, 1, 2)
    new = -torch.arange(2 * 4, dtype=torch.float32).reshape(1, 1, 4, 1, 2) - 100
    fused = extend.fuse_overlap(prev, new, 3)
    assert fused.shape[2] == 5 + 4 - 3
    alpha = torch.tensor([0.75, 0.5, 0.25]).reshape(1, 1, 3, 1, 1)
    torch.testing.assert_close(fused[:, :, :2], prev[:, :, :2])
    torch.testing.assert_close(
        fused[:, :, 2:5], alpha * prev[:, :, 2:] + (1 - alpha) * new[:, :, :3]
    )
    torch.testing.assert_close(fused[:, :, 5:], new[:, :, 3:])
    # one shared latent is blended too (diffusers would keep both copies)
    one = extend.fuse_overlap(prev, new, 1)
    assert one.shape[2] == 8
    torch.testing.assert_close(one[:, :, 4], 0.5 * prev[:, :, 4] + 0.5 * new[:, :, 0])
    assert extend.fuse_overlap(prev, new, 0).shape[2] == 9


def test_continuation_drops_the_first_latent_and_fuses_the_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two windows of 5 latents overlapping by 3: exact counts, drop, blend."""
    pipe = loaded_model("tiny-random").pipe
    made: list[torch.Tensor] = []
    real = extend._denoise_window

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = real(*args, **kwargs)
        made.append(out.clone())
        return out

    monkeypatch.setattr(extend, "_denoise_window", spy)
    request = dataclasses.replace(
        LONG,
        num_frames=57,  # 8 latents: spans (0, 5), (2, 7), (4, 8)
        steps=1,
        guidance=1.0,
        windows=WindowPlan(frames=33, overlap_frames=24, adain_factor=0.0),
    )
    sampled = extend.sample_windows(
        pipe, request, extend.Carried(), lambda *a: None, lambda: False
    )
    assert [len(made), *[m.shape[2] for m in made]] == [3, 5, 5, 4]
    assert sampled.latents.shape[2] == 8  # the take's own latent count, exactly
    first, second = made[0], made[1]
    kept = second[:, :, 1:]  # the reinterpreted first latent is dropped
    alpha = torch.tensor([2 / 3, 1 / 3]).reshape(1, 1, 2, 1, 1)
    expected = torch.cat(
        [
            first[:, :, :3],
            alpha * first[:, :, 3:] + (1 - alpha) * kept[:, :, :2],
            kept[:, :, 2:],
        ],
        dim=2,
    )
    torch.testing.assert_close(sampled.latents[:, :, :5], expected[:, :, :5])
    # the third window (latents 4..7) fuses latents 5 and 6 in the same way
    third = made[2][:, :, 1:]
    torch.testing.assert_close(
        sampled.latents[:, :, 5:7],
        alpha * expected[:, :, 5:7] + (1 - alpha) * third[:, :, :2],
    )
    torch.testing.assert_close(sampled.latents[:, :, 7:], third[:, :, 2:])
    assert sampled.repeated_frames == 0


def test_three_window_take_counts_seeds_prompts_and_progress(
    backend: LTXBackend,
) -> None:
    reports: list[tuple[int, ...]] = []
    result = backend.generate(LONG, lambda *r: reports.append(r), CancelToken())
    assert result.frames.shape == (41, 64, 64, 3)
    # latent spans (0, 3), (2, 5), (4, 6) in pixel frames
    assert [(w.start_frame, w.num_frames) for w in result.windows] == [
        (0, 17),
        (9, 17),
        (25, 9),
    ]
    # seeds as LTX's reference: the seed plus the window's first latent
    assert [w.seed for w in result.windows] == [5, 7, 9]
    # an empty window prompt keeps the one before
    assert [w.prompt for w in result.windows] == ["runs", "runs", "stops"]
    assert reports == [(s, 2, w, 3) for w in (1, 2, 3) for s in (1, 2)]
    assert {"window_1", "window_2", "window_3"} <= set(result.timings)
    other = backend.generate(dataclasses.replace(LONG, seed=6), _quiet, CancelToken())
    assert [w.seed for w in other.windows] == [6, 8, 10]
    assert not np.array_equal(other.frames, result.frames)


def test_chunked_decode_matches_one_piece_decode() -> None:
    pipe = loaded_model("tiny-random").pipe
    latents = torch.randn(1, 8, 24, 2, 2, generator=torch.Generator().manual_seed(0))
    whole = extend.decode_in_chunks(pipe, latents, chunk_latents=24)
    chunked = extend.decode_in_chunks(pipe, latents, chunk_latents=4, context_latents=8)
    assert whole.shape == chunked.shape == (185, 64, 64, 3)
    # context covering the decoder's reach: every frame where it belongs
    diff = np.abs(whole.astype(int) - chunked.astype(int))
    assert diff.max() <= 1, diff.max()
    with pytest.raises(ValueError, match="context_latents"):
        extend.decode_in_chunks(pipe, latents, context_latents=0)


@pytest.mark.parametrize(
    ("frames", "overlap", "message"),
    [
        (121, 121, r"overlap_frames .*got 121; nearest valid: 112"),
        (121, 10, r"multiple of 8 .*got 10; nearest valid: 8"),
        (120, 24, r"frames must be 8k \+ 1 .*got 120; nearest valid: 113 or 121"),
    ],
)
def test_bad_window_settings_are_refused_naming_field_and_fix(
    frames: int, overlap: int, message: str, backend: LTXBackend
) -> None:
    story = Story(title="t", scenes=[SceneNode(id="a", title="A")])
    doc = json.loads(story.model_dump_json())
    doc["settings"]["backend"] = "ltx"
    doc["settings"]["windows"] = {"frames": frames, "overlap_frames": overlap}
    # the window rules are the backend's: the file loads, ltx names the field
    loaded = parse_story(json.dumps(doc))
    with pytest.raises(BackendError) as err:
        check_settings(loaded.settings)
    shown = str(err.value)
    assert "settings.windows" in shown
    assert re.search(message, shown), shown
    assert check_settings(loaded.settings, "animatic") is None  # no windows
    request = dataclasses.replace(
        LONG, windows=WindowPlan(frames=frames, overlap_frames=overlap)
    )
    with pytest.raises(BackendError, match=message):
        backend.generate(request, _quiet, CancelToken())


def _long_story(story_dir: Path) -> Path:
    story = Story(
        title="Fox",
        settings=Settings(
            backend="ltx",
            model="tiny-random",
            width=64,
            height=64,
            fps=24,
            quality_preset="fast",
            windows=WindowSettings(frames=17, overlap_frames=8),
        ),
        scenes=[
            SceneNode(
                id="run",
                title="The fox runs",
                motion="runs",
                num_frames=41,
                window_prompts=["runs to the fence", "", "jumps the fence"],
            ),
            SceneNode(id="stop", title="The fox stops", motion="stops", num_frames=17),
        ],
        edges=[SceneEdge(source="run", target="stop")],
    )
    save_story(story, story_dir)
    return story_dir


def test_cancel_in_window_two_leaves_the_story_as_it_was(tmp_path: Path) -> None:
    from engine.generate import generate_scene

    story_dir = _long_story(tmp_path)
    before = load_story(story_dir).model_dump(exclude={"revision"})
    cancel = CancelToken()

    def progress(step: int, total: int, window: int = 1, windows: int = 1) -> None:
        if window == 2:
            cancel.set()

    with pytest.raises(GenerationCancelled, match="window 2 of 3"):
        generate_scene(
            story_dir, "run", backend=LTXBackend(), progress=progress, cancel=cancel
        )
    assert load_story(story_dir).model_dump(exclude={"revision"}) == before
    assert not any(p.is_file() for p in (story_dir / "scenes").rglob("*"))


def test_storygraph_run_makes_a_three_window_first_scene(tmp_path: Path) -> None:
    from studio.cli import app

    story_dir = _long_story(tmp_path)
    result = CliRunner().invoke(app, ["run", str(story_dir), "--no-score"])
    assert result.exit_code == 0, result.output
    story = load_story(story_dir)
    run, stop = story.scene("run").selected, story.scene("stop").selected
    assert run is not None and stop is not None
    assert run.status == stop.status == "done"
    assert len(run.windows) == 3 and run.overlap_frames == 0
    assert [w.prompt.split(".")[0] for w in run.windows] == [
        "Runs to the fence",
        "Runs to the fence",
        "Jumps the fence",
    ]
    assert run.params.windows == story.settings.windows
    # the join carried one latent (the overlap): frame 0 repeats it
    assert stop.params.continuity_used == "latent"
    assert stop.overlap_frames == 1 and stop.windows == []


def test_a_version_1_story_loads_and_migrates(tmp_path: Path) -> None:
    from conftest import generate_small_example

    story_dir = generate_small_example(tmp_path / "s")
    doc = json.loads((story_dir / "kg_state.json").read_text())
    doc["schema_version"] = 1
    doc["settings"].pop("windows")
    for scene in doc["scenes"]:
        scene.pop("window_prompts")
        for take in scene["takes"]:
            take.pop("overlap_frames")
            take.pop("windows")
            take["params"].pop("windows")
    doc["scenes"][0]["takes"][0]["params"]["continuity_used"] = "latent"
    story = parse_story(json.dumps(doc))
    assert story.schema_version == SCHEMA_VERSION
    assert story.settings.windows == WindowSettings()
    takes = [t for s in story.scenes for t in s.takes]
    assert takes[0].overlap_frames == 9  # version 1 overwrote 2 latents: 1 + 8
    used = {t.params.continuity_used: t.overlap_frames for t in takes[1:]}
    assert used.get("frame", 1) == 1 and used.get("none", 0) == 0


def test_animatic_records_its_repeated_frame_and_renders_any_length(
    tmp_path: Path,
) -> None:
    from conftest import generate_small_example

    story_dir = generate_small_example(tmp_path / "s")
    story = load_story(story_dir)
    for scene in story.scenes:
        take = scene.selected
        assert take is not None
        carried = take.params.continuity_used != "none"
        assert take.overlap_frames == (1 if carried else 0)
    from engine.backends.animatic.backend import AnimaticBackend

    long = dataclasses.replace(
        LONG, num_frames=2_881, width=32, height=32, model="", windows=WindowPlan()
    )
    frames = AnimaticBackend().generate(long, _quiet, CancelToken()).frames
    assert frames.shape == (2_881, 32, 32, 3)
