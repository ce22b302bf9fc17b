"""The engine asks a backend for its frame-count and preset rules."""

from __future__ import annotations

import pytest

from engine.backend import VideoBackend
from engine.backends.ltx.backend import LTXBackend
from engine.continuity import ContinuityPlan
from engine.request import build_request
from kg.example import example_story


@pytest.fixture
def plan() -> ContinuityPlan:
    return ContinuityPlan(requested="none", used="none")


def test_duration_becomes_a_frame_count_ltx_can_make(plan: ContinuityPlan) -> None:
    story = example_story()  # 2 s at 24 fps = 48 frames
    request = build_request(story, "arrival", "tiny-random", plan, LTXBackend())
    assert request.num_frames == 49
    LTXBackend.check_request(request)  # accepted as it is


def test_explicit_frame_count_is_not_changed(plan: ContinuityPlan) -> None:
    story = example_story()
    story.scene("arrival").num_frames = 48
    request = build_request(story, "arrival", "tiny-random", plan, LTXBackend())
    assert request.num_frames == 48  # the backend refuses it with a message


def test_presets_follow_the_checkpoint_kind(plan: ContinuityPlan) -> None:
    story = example_story()
    story.settings.quality_preset = "balanced"
    distilled = build_request(
        story, "arrival", "Lightricks/LTX-Video-0.9.7-distilled", plan, LTXBackend()
    )
    dev = build_request(story, "arrival", "Lightricks/LTX-Video", plan, LTXBackend())
    assert (distilled.steps, distilled.guidance) == (8, 1.0)
    assert (dev.steps, dev.guidance) == (40, 3.0)


def test_backends_without_rules_get_the_engine_defaults(plan: ContinuityPlan) -> None:
    story = example_story()
    request = build_request(story, "arrival", "", plan, None)
    assert request.num_frames == 48
    # the base class's documented default: one step, no guidance (no presets)
    assert (request.steps, request.guidance) == (1, 0.0)


class _Recorder:
    def __init__(self, events: list[str]) -> None:
        self.events = events


class _ReleasingBackend(_Recorder, VideoBackend):
    name = "releasing"
    supports_latent_continuity = False

    def generate(self, request, progress, cancel):  # noqa: ANN001, ANN201
        import numpy as np

        from engine.backend import GenerationResult

        self.events.append("generate")
        frames = np.zeros(
            (request.num_frames, request.height, request.width, 3), np.uint8
        )
        return GenerationResult(frames=frames)

    def release(self) -> None:
        self.events.append("release backend")


class _ReleasingObserver(_Recorder):
    def observe(self, request):  # noqa: ANN001, ANN201
        from engine.observe import Observation
        from kg.schema import Scores

        self.events.append("observe")
        return Observation(scores=Scores(), embeddings=None)

    def release(self) -> None:
        self.events.append("release observer")


@pytest.mark.parametrize("release", [True, False])
def test_release_models_frees_each_stage_before_the_next(
    tmp_path,
    release: bool,  # noqa: ANN001
) -> None:
    from engine.generate import generate_scene
    from kg.store import save_story

    story = example_story()
    story.settings.width, story.settings.height = 64, 64
    story.settings.release_models = release
    story.scene("arrival").num_frames = 3
    save_story(story, tmp_path)
    events: list[str] = []
    take = generate_scene(
        tmp_path,
        "arrival",
        backend=_ReleasingBackend(events),
        observer=_ReleasingObserver(events),
    )
    assert take.status == "done"
    if release:
        assert events == ["generate", "release backend", "observe", "release observer"]
    else:
        assert events == ["generate", "observe"]


def test_prompt_fits_the_backends_own_tokenizer(plan: ContinuityPlan) -> None:
    from engine.backends.ltx.loading import load_tokenizer

    story = example_story()
    story.settings.prompt_token_budget = 40
    request = build_request(story, "climb", "tiny-random", plan, LTXBackend())
    tokenizer = load_tokenizer("tiny-random")
    assert len(tokenizer(request.prompt)["input_ids"]) <= 40
    # the motion leads and survives; the least salient parts were dropped
    assert request.prompt.startswith("Mara and the old keeper")
    estimate = build_request(story, "climb", "tiny-random", plan, None)
    assert request.prompt != estimate.prompt  # the real counter decided


def test_missing_tokenizer_falls_back_to_the_estimate(plan: ContinuityPlan) -> None:
    story = example_story()
    request = build_request(story, "arrival", "no/such-model", plan, LTXBackend())
    assert request.prompt == build_request(story, "arrival", "", plan, None).prompt
