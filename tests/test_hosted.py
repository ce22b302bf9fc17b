"""Hosted backends against local fakes of the providers' HTTP APIs (Replicate:
a server on 127.0.0.1; fal: httpx's transport under fal's own client). The
official clients run for real; nothing touches the network and nothing
sleeps (the backends take the sleep and the clock as arguments)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from engine.backend import (
    CancelToken,
    ContinuityInput,
    GenerationCancelled,
    GenerationRequest,
)
from engine.backends.hosted.client import HostedError
from engine.backends.hosted.fal import FalBackend
from engine.backends.hosted.replicate import ReplicateBackend
from engine.budget import BudgetExceededError
from engine.generate import generate_scene
from engine.video import write_video
from kg.example import example_story
from kg.schema import HostedSettings, PriceTable
from kg.store import load_story, save_story
from tests.hosted_fakes import FakeReplicate, Script, fal_transport

KEY = "r8_secret_test_token_123"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("out") / "out.mp4"
    frames = np.zeros((30, 96, 160, 3), np.uint8)
    frames[..., 0] = np.arange(30)[:, None, None] * 8
    write_video(path, frames, 24)
    return path.read_bytes()


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", KEY)
    monkeypatch.setenv("FAL_KEY", KEY)


def _request(**kw) -> GenerationRequest:  # noqa: ANN003
    base = dict(prompt="a lighthouse at dusk", width=64, height=64, num_frames=17,
                fps=24, seed=7, steps=20, guidance=3.0,
                hosted=HostedSettings(prices=PriceTable(
                    as_of="2026-11-01",
                    usd_per_second={"lightricks/ltx-video": 0.03})))  # fmt: skip
    return GenerationRequest(**{**base, **kw})


def _replicate(
    fake: FakeReplicate, ticks: list[float] | None = None
) -> ReplicateBackend:
    clock = iter(ticks or [0.0] * 1000)
    return ReplicateBackend(
        base_url=fake.url, sleep=lambda s: None, clock=lambda: next(clock)
    )


def _run(backend, request, cancel=None, progress=None):  # noqa: ANN001, ANN202
    return backend.generate(
        request, progress or (lambda *a: None), cancel or CancelToken()
    )


def test_replicate_success_conforms_the_clip_and_prices_it(
    clip: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(output=clip)
    with caplog.at_level(logging.DEBUG), FakeReplicate(script) as fake:
        out = _run(_replicate(fake), _request())
    assert out.frames.shape == (17, 64, 64, 3)  # cropped to the story, cut to length
    assert out.cost == pytest.approx((17 / 24 * 0.03, out.cost[1]))
    assert "price table of 2026-11-01" in out.cost[1]
    body = script.bodies[0]["input"]
    assert (
        body["length"] == 17 and body["aspect_ratio"] == "1:1" and "image" not in body
    )
    assert ("POST", "/v1/models/lightricks/ltx-video/predictions") in script.calls
    assert script.auth[0] == f"Bearer {KEY}"
    assert KEY not in caplog.text  # the key is never logged


def test_continuing_a_scene_sends_the_last_frame_as_the_start_image(
    clip: bytes,
) -> None:
    last = np.full((64, 64, 3), 200, np.uint8)
    carried = ContinuityInput(mode="frame", last_frame=last, strength=1.0)
    script = Script(output=clip)
    with FakeReplicate(script) as fake:
        out = _run(_replicate(fake), _request(continuity=carried))
    assert script.bodies[0]["input"]["image"].startswith("data:image/png;base64,")
    assert out.continuity_used == "frame" and "not latents" in out.continuity_note


def test_a_provider_failure_carries_its_message(clip: bytes) -> None:
    script = Script(states=["processing", "failed"], error="NSFW content detected")
    with (
        FakeReplicate(script) as fake,
        pytest.raises(HostedError, match="NSFW content"),
    ):
        _run(_replicate(fake), _request())


def test_429_then_success_is_retried(clip: bytes) -> None:
    script = Script(create_statuses=[429, 503], output=clip)
    with FakeReplicate(script) as fake:
        out = _run(_replicate(fake), _request())
    assert out.frames.shape[0] == 17
    assert [c for c in script.calls if c[0] == "POST"] == [
        ("POST", "/v1/models/lightricks/ltx-video/predictions")
    ] * 3


def test_retries_stop_at_the_limit(clip: bytes) -> None:
    script = Script(create_statuses=[429] * 10, output=clip)
    request = _request(hosted=HostedSettings(max_retries=2))
    with (
        FakeReplicate(script) as fake,
        pytest.raises(HostedError, match="after 3 tries"),
    ):
        _run(_replicate(fake), request)


def test_a_job_past_the_timeout_is_cancelled_and_fails(clip: bytes) -> None:
    script = Script(states=["processing"], output=clip)
    request = _request(hosted=HostedSettings(timeout_s=60))
    ticks = [0.0] + [10.0 * i for i in range(1, 100)]
    with FakeReplicate(script) as fake, pytest.raises(HostedError, match="within 60 s"):
        _run(_replicate(fake, ticks), request)
    assert script.canceled and ("POST", "/v1/predictions/p1/cancel") in script.calls


def test_cancel_cancels_the_provider_job(clip: bytes) -> None:
    script = Script(states=["processing"], output=clip)
    cancel = CancelToken()
    with FakeReplicate(script) as fake, pytest.raises(GenerationCancelled):
        _run(_replicate(fake), _request(), cancel, progress=lambda *a: cancel.set())
    assert script.canceled


def test_a_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    with pytest.raises(
        HostedError, match="set the environment variable REPLICATE_API_TOKEN"
    ):
        _run(ReplicateBackend(base_url="http://127.0.0.1:9"), _request())


@pytest.mark.parametrize(
    ("output", "says"),
    [(b"<html>not found</html>", "not a video"), (None, "larger than")],
)
def test_bad_downloads_are_refused(
    clip: bytes, output: bytes | None, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if output is None:  # oversized: a real clip over a lowered limit
        import engine.backends.hosted.client as hosted

        monkeypatch.setattr(hosted, "MAX_DOWNLOAD_BYTES", 1024)
        output = clip
    with (
        FakeReplicate(Script(output=output)) as fake,
        pytest.raises(HostedError, match=says),
    ):
        _run(_replicate(fake), _request())


def _story(tmp_path: Path, backend: str, model: str, budget: float | None) -> Path:
    story = example_story()
    s = story.settings
    s.backend, s.model, s.width, s.height, s.fps = backend, model, 64, 64, 24
    s.hosted.budget_usd = budget
    s.hosted.prices.usd_per_second["lightricks/ltx-video"] = 0.03
    for scene in story.scenes:
        scene.duration_s = 17 / 24
    save_story(story, tmp_path)
    return tmp_path


def test_takes_record_their_cost_and_the_budget_refuses_before_submitting(
    clip: bytes, tmp_path: Path
) -> None:
    folder = _story(tmp_path, "replicate", "lightricks/ltx-video", budget=0.03)
    script = Script(output=clip)
    with FakeReplicate(script) as fake:
        backend = _replicate(fake)
        first = generate_scene(folder, "arrival", backend=backend)
        assert first.status == "done", first.error
        assert first.cost.usd == pytest.approx(17 / 24 * 0.03)
        posts = len([c for c in script.calls if c[0] == "POST"])
        with pytest.raises(
            BudgetExceededError, match=r"budget is spent, so it was not"
        ):
            generate_scene(folder, "meeting", backend=backend)
        assert len([c for c in script.calls if c[0] == "POST"]) == posts
    story = load_story(folder)
    assert story.scene("meeting").takes == []
    assert KEY not in (folder / "kg_state.json").read_text()


def test_fal_generates_through_its_queue_and_bills_whole_durations(
    clip: bytes, tmp_path: Path
) -> None:
    script = Script(create_statuses=[429], output=clip)
    backend = FalBackend(transport=fal_transport(script), sleep=lambda s: None)
    folder = _story(tmp_path, "fal", "fal-ai/ltx-2", budget=None)
    first = generate_scene(folder, "arrival", backend=backend)
    assert first.status == "done", first.error
    assert script.bodies[-1]["app"] == "/fal-ai/ltx-2/text-to-video"
    assert script.bodies[-1]["input"]["duration"] == "6"
    # fal makes 6 s at least: billed 6 s at the default table's $0.06
    assert first.cost.usd == pytest.approx(0.36)
    assert script.auth[0] == f"Key {KEY}"
    second = generate_scene(folder, "meeting", backend=backend)
    assert second.status == "done", second.error
    assert script.bodies[-1]["app"] == "/fal-ai/ltx-2/image-to-video"
    assert script.bodies[-1]["input"]["image_url"].startswith("data:image/png")
    assert second.params.continuity_used == "frame"


def test_fal_failure_and_cancel(clip: bytes) -> None:
    failing = Script(states=["processing", "failed"], error="content policy")
    backend = FalBackend(transport=fal_transport(failing), sleep=lambda s: None)
    with pytest.raises(HostedError, match="content policy"):
        _run(backend, _request(model="fal-ai/ltx-2"))
    waiting = Script(states=["processing"], output=clip)
    backend = FalBackend(transport=fal_transport(waiting), sleep=lambda s: None)
    cancel = CancelToken()
    with pytest.raises(GenerationCancelled):
        _run(backend, _request(model="fal-ai/ltx-2"), cancel, lambda *a: cancel.set())
    assert waiting.canceled
    assert json.dumps(waiting.bodies).count(KEY) == 0


# Studio ----------------------------------------------------------------------------


def test_settings_validate_hosted_fields_by_name(outputs: Path) -> None:
    from studio import services
    from studio.testing import page_test, shown_text

    folder = services.create_story("hosted", "", example=True)
    at = page_test("settings", folder).run()
    at.selectbox(key="settings.backend").set_value("fal")
    at.number_input(key="settings.hosted_budget").set_value(5.0)
    at.text_area(key="settings.hosted_prices").input("fal-ai/ltx-2/text-to-video = abc")
    at.text_input(key="settings.hosted_prices_as_of").input("last week")
    at.button[0].click().run()
    text = shown_text(at)
    assert "Settings not saved" in text
    assert "prices as of" in text and "fal-ai/ltx-2/text-to-video" in text
    assert load_story(folder).settings.backend == "animatic"  # nothing saved

    at.text_area(key="settings.hosted_prices").input(
        "fal-ai/ltx-2/text-to-video = 0.05"
    )
    at.text_input(key="settings.hosted_prices_as_of").input("2026-11-20")
    at.button[0].click().run()
    hosted = load_story(folder).settings.hosted
    assert hosted.budget_usd == 5.0 and hosted.prices.as_of == "2026-11-20"
    assert hosted.prices.usd_per_second == {"fal-ai/ltx-2/text-to-video": 0.05}


def test_storyboard_shows_the_cost_of_pending_scenes(outputs: Path) -> None:
    from kg.store import update_story
    from studio import services
    from studio.testing import page_test, shown_text

    folder = services.create_story("costly", "", example=True)

    def hosted(story) -> None:  # noqa: ANN001
        story.settings.backend, story.settings.model = "fal", "fal-ai/ltx-2"
        story.settings.hosted.budget_usd = 1.0

    update_story(folder, hosted)
    at = page_test("storyboard", folder).run()
    assert not at.exception
    # six 2 s scenes: each billed fal's shortest 6 s at $0.06
    assert (
        "Estimated cost of 6 scene(s) on fal: $2.16; spent so far $0.00 of a "
        "$1.00 budget — over the budget" in shown_text(at)
    )
