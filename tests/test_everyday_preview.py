"""A preview frame while a scene generates: the latent preview of LTX latents
(ComfyUI's LTXV factors; false colour for other widths), the progress clock
keeping a small copy of the latest picture, a tiny LTX-2 run through the job
runner previewing latents and decoded chunks, and the studio's progress panel
showing the picture with what it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import engine.progress
from engine.preview import LTXV_RGB_BIAS, LTXV_RGB_FACTORS, latent_preview, latent_rgb
from engine.progress import (
    PREVIEW_MAX_SIDE,
    PhaseProgress,
    Preview,
    preview_due,
    report_preview,
    shrink_frame,
)
from kg.schema import SceneNode, Settings, Story
from kg.store import save_story
from studio import services, wiring
from studio.testing import page_test
from tests.everyday_fakes import (
    GATES,
    HeldObserver,
    example_story,
    finish_everything,
    install,
)


class _Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# The latent preview -------------------------------------------------------------


def test_ltxv_factors_map_a_latent_to_the_colours_it_encodes() -> None:
    factors = torch.tensor(LTXV_RGB_FACTORS)  # [128, 3]
    bias = torch.tensor(LTXV_RGB_BIAS)
    assert factors.shape == (128, 3)
    # a 2x3 latent frame whose projection is a known picture in [-1, 1]
    target = torch.tensor(
        [[[-0.8, 0.1, 0.6], [0.0, 0.0, 0.0], [0.9, -0.9, 0.2]],
         [[0.3, 0.3, 0.3], [-0.5, 0.7, -0.1], [0.4, 0.0, -0.6]]]
    )  # fmt: skip
    z = (target - bias) @ torch.linalg.pinv(factors)  # [2, 3, 128]
    latents = torch.zeros(1, 128, 3, 2, 3)
    latents[0, :, 1] = z.permute(2, 0, 1)  # the middle latent frame
    rgb = latent_rgb(latents)
    expected = ((target + 1.0) * 127.5).round().numpy()
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert np.abs(rgb.astype(int) - expected).max() <= 1
    first = latent_rgb(latents, frame=0)  # all zero: the bias alone
    assert (first == ((bias + 1.0) * 127.5).round().numpy()).all()


@pytest.mark.parametrize("channels", [8, 128])  # the tiny models'; LTX's
def test_latent_preview_of_tiny_random_weight_latents(channels: int) -> None:
    from diffusers import AutoencoderKLLTXVideo, LTXPipeline

    from engine.backends.ltx.tiny import tiny_vae_config

    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(**{**tiny_vae_config(), "latent_channels": channels})
    frame = torch.zeros(1, 3, 1, 64, 96)  # [B, 3, F, H, W] in [-1, 1]
    frame[:, 0, :, :, 48:] = 0.8  # a red right half
    with torch.no_grad():
        encoded = vae.encode(frame).latent_dist.mode()
    latents = LTXPipeline._normalize_latents(
        encoded, vae.latents_mean, vae.latents_std, vae.config.scaling_factor
    )
    assert latents.shape == (1, channels, 1, 2, 3)
    preview = latent_preview(latents)
    assert preview.dtype == np.uint8 and preview.shape == (213, 320, 3)
    assert max(preview.shape[:2]) == PREVIEW_MAX_SIDE  # the clip's aspect kept
    small = latent_rgb(latents)
    assert small.shape == (2, 3, 3)
    assert len({tuple(p) for p in small.reshape(-1, 3)}) > 1  # structure shows
    with pytest.raises(ValueError, match=r"\[B, C, F, h, w\]; got shape"):
        latent_preview(latents[0, :, 0])
    with pytest.raises(ValueError, match="frame must be in"):
        latent_rgb(latents, frame=3)


# The progress clock's preview ------------------------------------------------------


def test_phase_progress_keeps_a_small_copy_of_the_latest_picture() -> None:
    clock = _Clock()
    progress = PhaseProgress(clock=clock)
    assert progress.latest_preview is None and progress.wants_preview()
    progress.phase("decode", 1, 4)
    big = np.full((720, 1280, 3), 200, np.uint8)
    big[:, 640:] = 10
    progress.preview(big, "decoded chunk 1/4")
    shown = progress.latest_preview
    assert isinstance(shown, Preview)
    assert shown.frame.shape == (180, 320, 3) and shown.frame.dtype == np.uint8
    assert shown.source == "decoded chunk 1/4" and shown.phase == "decode"
    assert shown.frame[:, :150].min() == 200 and shown.frame[:, 170:].max() == 10
    assert not shown.frame.flags.writeable
    big[:] = 0  # the preview is a copy
    assert progress.latest_preview.frame.max() == 200
    # a small frame is kept at its size (still a copy)
    tiny = np.ones((64, 48, 3), np.uint8)
    progress.preview(tiny, "rendered frame 3/9")
    assert progress.latest_preview.frame.shape == (64, 48, 3)
    assert not np.shares_memory(progress.latest_preview.frame, tiny)
    # costly previews at most once a second
    assert not progress.wants_preview() and not preview_due(progress)
    clock.now += 1.0
    assert progress.wants_preview() and preview_due(progress)
    progress.reset()
    assert progress.latest_preview is None


def test_a_take_clock_hands_its_previews_to_the_run_clock() -> None:
    run = PhaseProgress()
    take = PhaseProgress(listener=run.relay)
    report_preview(take, np.zeros((10, 20, 3), np.uint8), "latent preview, step 1/4")
    assert run.latest_preview is take.latest_preview is not None
    take.detach()  # a take finishing behind the next one shows no more
    report_preview(take, np.ones((10, 20, 3), np.uint8), "decoded chunk 1/1")
    assert run.latest_preview.source == "latent preview, step 1/4"
    assert take.latest_preview.source == "decoded chunk 1/1"


def test_plain_step_callbacks_and_bad_frames() -> None:
    steps: list[tuple[int, int]] = []
    report_preview(steps.append, np.zeros((4, 4, 3), np.uint8), "x")  # ignored
    assert steps == [] and not preview_due(steps.append)
    for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32)):
        with pytest.raises(ValueError, match=r"must be uint8 \[H, W, 3\]; got"):
            shrink_frame(bad)


# Both LTX backends, every step ------------------------------------------------------


class _Ticking:
    """A clock ten seconds on at every look: every preview is due."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10.0
        return self.now


@pytest.mark.parametrize("name", ["ltx", "ltx2"])
def test_ltx_backends_preview_each_step_then_each_decoded_chunk(name: str) -> None:
    from engine.backend import CancelToken, GenerationRequest, get_backend

    backend = get_backend(name)
    request = GenerationRequest(
        prompt="a fox runs through snow", width=64, height=64, num_frames=17,
        fps=24, seed=3, steps=2, guidance=3.0, model="tiny-random",
    )  # fmt: skip
    progress = PhaseProgress(clock=_Ticking())
    kept: list[Preview] = []
    real = progress._keep

    def keep(preview: Preview) -> None:
        kept.append(preview)
        real(preview)

    progress._keep = keep  # type: ignore[method-assign]
    try:
        result = backend.generate(request, progress, CancelToken())
    finally:
        backend.release()
    assert [p.source for p in kept] == [
        "latent preview, step 1/2",
        "latent preview, step 2/2",
        "decoded chunk 1/1",
    ]
    assert [p.phase for p in kept] == ["denoise", "decode", "decode"]
    assert kept[0].frame.shape == (320, 320, 3)  # 2x2 latents, upsampled
    assert (kept[-1].frame == result.frames[-1]).all()  # the chunk's last frame


# A tiny LTX-2 take through the runner ------------------------------------------------


def test_a_tiny_ltx2_run_previews_latents_then_decoded_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.backends.ltx2.backend import release_models
    from engine.runner import JobRunner

    story = Story(
        title="Lighthouse",
        settings=Settings(
            backend="ltx2",
            model="tiny-random",
            width=64,
            height=64,
            fps=24,
            quality_preset="fast",
        ),
        scenes=[SceneNode(id="shore", title="Shore", num_frames=33)],
    )
    save_story(story, tmp_path)
    sources: list[str] = []
    real = PhaseProgress.preview

    def heard(self: PhaseProgress, frame: np.ndarray, source: str) -> None:
        sources.append(source)
        real(self, frame, source)

    monkeypatch.setattr(engine.progress.PhaseProgress, "preview", heard)
    GATES.arm("score")  # the observer holds the take while it is scored
    runner = JobRunner(tmp_path, observer=HeldObserver(), background_encode=False)
    try:
        runner.submit(["shore"])
        assert GATES.reached["score"].wait(120), "the take never reached scoring"
        status = runner.status()
        assert status.current_scene == "shore" and status.phase == "score"
        assert status.preview is not None
        assert status.preview.source == "decoded chunk 1/1"
        assert status.preview.frame.shape == (64, 64, 3)
    finally:
        GATES.open()
        assert runner.wait(120)
        GATES.arm()
        release_models()
    latent = [s for s in sources if s.startswith("latent preview")]
    assert latent and latent[0].startswith("latent preview, step 1/")
    assert sources[-1] == "decoded chunk 1/1"
    assert sources.index("decoded chunk 1/1") > sources.index(latent[-1])
    assert runner.status().preview is None  # nothing running: no picture


# The studio's progress panel ---------------------------------------------------------


@pytest.fixture
def phased_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    install(monkeypatch)
    monkeypatch.setattr(wiring, "default_observer", HeldObserver)
    GATES.arm()
    folder = example_story("preview")
    yield folder
    finish_everything(folder)


def _images(at) -> list:  # noqa: ANN001 - AppTest
    return list(at.get("image"))


def test_the_panel_shows_the_latest_picture_with_what_it_is(
    phased_story: Path,
) -> None:
    GATES.arm("load", "decode")
    at = page_test("storyboard", phased_story).run()
    at.button(key="storyboard.generate").click().run()
    assert GATES.reached["load"].wait(60)
    at.run()
    assert "loading the model" in str(at.get("progress")[0].proto.text)
    assert _images(at) == []  # nothing to show yet
    GATES.open("load")
    assert GATES.reached["decode"].wait(60)  # chunk 1 of 3 decoded, 2 held
    at.run()
    assert "decoding · chunk 1/3" in str(at.get("progress")[0].proto.text)
    images = _images(at)
    assert len(images) == 1
    assert images[0].captions == ["decoded chunk 1/3"]
    assert images[0].value[0]  # the picture's media URL
    status = services.job_status(phased_story)
    assert status.preview.frame.shape == (64, 64, 3)
    GATES.open("decode")
    assert services.wait_for_jobs(phased_story, timeout=60)
    at.run()
    assert _images(at) == []  # done: the panel is gone
