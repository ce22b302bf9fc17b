"""The engine asks a backend for its frame-count and preset rules."""

from __future__ import annotations

import pytest

from engine.backends.ltx import LTXBackend
from engine.continuity import ContinuityPlan
from engine.generate import DEFAULT_GUIDANCE, PRESET_STEPS, build_request
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
    assert request.steps == PRESET_STEPS["balanced"]
    assert request.guidance == DEFAULT_GUIDANCE
