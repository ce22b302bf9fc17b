"""The observer end to end on tiny random encoders; unavailable weights; failures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from kg.observation import Observation, ObservationRequest
from kg.schema import (
    Character,
    Environment,
    GenerationParams,
    SceneNode,
    Story,
    Take,
    TakeFiles,
)
from scoring import metrics
from scoring.encoders import FETCH_COMMAND, WeightsUnavailable
from scoring.observer import Observer
from scoring.references import CACHE_FILE, ReferenceCache
from scoring.testing import tiny_clip, tiny_dino

SEMANTIC = ("clip_score", "subject_consistency", "background_consistency")


@pytest.fixture(scope="module")
def clip():
    return tiny_clip(device="cpu")


@pytest.fixture(scope="module")
def dino():
    return tiny_dino(device="cpu")


@pytest.fixture
def story_dir(tmp_path):
    refs = tmp_path / "cast"
    refs.mkdir()
    rng = np.random.default_rng(1)
    for name in ("mara-1.png", "mara-2.png"):
        Image.fromarray((rng.random((30, 20, 3)) * 255).astype(np.uint8)).save(
            refs / name
        )
    return tmp_path


@pytest.fixture
def story():
    return Story(
        title="t",
        characters=[
            Character(
                id="mara",
                name="Mara",
                description="a young woman",
                visual_attributes=["red hair"],
                reference_images=["cast/mara-1.png", "cast/mara-2.png"],
            ),
            Character(id="keeper", name="the keeper", description="an old man"),
        ],
        environments=[Environment(id="coast", name="the coast", lighting="dusk")],
        scenes=[
            SceneNode(
                id="s1",
                title="Mara at the cliff",
                character_ids=["mara", "keeper"],
                environment_id="coast",
                motion="the young woman walks to the edge",
            )
        ],
    )


def _take(index: int = 1, prompt: str = "Mara walks to the cliff edge") -> Take:
    params = GenerationParams(
        backend="animatic",
        prompt=prompt,
        seed=0,
        steps=1,
        guidance=1.0,
        width=56,
        height=40,
        num_frames=20,
        fps=8,
    )
    return Take(
        index=index, params=params, files=TakeFiles(video=f"scenes/s1/take-{index}.mp4")
    )


def _frames(n: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = (rng.random((1, 40, 56, 3)) * 200).astype(np.uint8)
    drift = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1)
    return base + drift  # slowly brightening: temporal flicker 1 - 1/255


def _observe(observer, story_dir, story, frames=None, previous="default", take=None):
    frames = _frames() if frames is None else frames
    if isinstance(previous, str):
        previous = np.full((24, 32, 3), 90, np.uint8)  # another size: resized
    request = ObservationRequest.of_take(
        story_dir, story, "s1", take or _take(), frames, previous
    )
    return observer.observe(request)


def _tensors(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), "pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata()  # noqa: SIM118


def test_observer_scores_a_take_and_writes_its_embeddings(clip, dino, story_dir, story):
    obs = _observe(Observer(clip, dino), story_dir, story)
    assert isinstance(obs, Observation)
    assert obs.embeddings == "scenes/s1/take-1.embeddings.safetensors"
    tensors, meta = _tensors(story_dir / obs.embeddings)
    # every frame, as VBench's consistency dimensions
    assert tensors["frame_indices"].tolist() == list(range(20))
    assert meta["consistency_frames"] == "every"
    assert tensors["clip_image"].shape == (20, 32)
    assert tensors["clip_text"].shape == (1, 32)
    assert tensors["dino_image"].shape == (20, 32)
    assert meta["prompt"] == "Mara walks to the cliff edge"
    assert meta["clip"] == "tiny-clip (random weights)"

    s = obs.scores
    for name in (*SEMANTIC, "temporal_flicker", "seam_dino_cosine", "seam_pixel_mae"):
        value = getattr(s, name)
        assert value is not None and math.isfinite(value), name
    assert 0.0 <= s.clip_score <= 2.5
    assert 0.0 <= s.subject_consistency <= 1.0
    assert 0.0 <= s.background_consistency <= 1.0
    assert s.temporal_flicker == pytest.approx(1 - 1 / 255)
    assert -1.0 <= s.seam_dino_cosine <= 1.0
    assert s.encoders == {
        "clip": "tiny-clip (random weights)",
        "dino": "tiny-dino (random weights)",
    }
    assert set(s.character_consistency) == {"mara"}
    assert 0.0 <= s.character_consistency["mara"] <= 1.0
    assert "reference_images" in s.unavailable["character_consistency.keeper"]
    assert s.scored_at

    # the stored features are the ones the scores came from
    image = tensors["clip_image"].numpy()
    assert s.clip_score == pytest.approx(
        metrics.clip_score(image, tensors["clip_text"][0].numpy())
    )
    assert s.background_consistency == pytest.approx(metrics.vbench_consistency(image))
    assert s.subject_consistency == pytest.approx(
        metrics.vbench_consistency(tensors["dino_image"].numpy())
    )


def test_an_observer_with_samples_sees_that_many_frames_and_says_so(
    clip, dino, story_dir, story
):
    obs = _observe(Observer(clip, dino, samples=16), story_dir, story)
    tensors, meta = _tensors(story_dir / obs.embeddings)
    assert tensors["frame_indices"].tolist() == [
        0, 1, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16, 18, 19,
    ]  # fmt: skip
    assert tensors["dino_image"].shape == (16, 32)
    assert meta["consistency_frames"] == "16 of 20"


def test_seam_pixel_mae_uses_the_resized_previous_frame(clip, dino, story_dir, story):
    frames = np.full((3, 40, 56, 3), 100, np.uint8)
    obs = _observe(Observer(clip, dino), story_dir, story, frames=frames)
    assert obs.scores.seam_pixel_mae == pytest.approx(10.0)  # 100 vs 90
    assert obs.scores.temporal_flicker == 1.0
    assert obs.scores.subject_consistency == pytest.approx(1.0)


def test_rescoring_is_idempotent(clip, dino, story_dir, story):
    observer = Observer(clip, dino)
    first = _observe(observer, story_dir, story)
    before, _ = _tensors(story_dir / first.embeddings)
    second = _observe(observer, story_dir, story)
    after, _ = _tensors(story_dir / second.embeddings)
    a = first.scores.model_dump(exclude={"scored_at"})
    b = second.scores.model_dump(exclude={"scored_at"})
    assert a == b
    assert before.keys() == after.keys()
    for key in before:
        torch.testing.assert_close(before[key], after[key])


def _refs(story) -> dict[str, tuple[str, ...]]:
    """Every character's reference images, as an observation request has them."""
    return {c.id: tuple(c.reference_images) for c in story.characters}


def test_reference_cache_is_reused_and_invalidated_on_change(dino, story_dir, story):
    cache = ReferenceCache(story_dir)
    feats, _ = cache.features(_refs(story), ["mara"], dino)
    assert cache.computed == 2 and feats["mara"].shape == (2, 32)
    assert (story_dir / CACHE_FILE).is_file()

    again = ReferenceCache(story_dir)
    same, _ = again.features(_refs(story), ["mara"], dino)
    assert again.computed == 0
    np.testing.assert_array_equal(same["mara"], feats["mara"])

    Image.new("RGB", (20, 30), (250, 10, 10)).save(story_dir / "cast/mara-2.png")
    changed = ReferenceCache(story_dir)
    new, _ = changed.features(_refs(story), ["mara"], dino)
    assert changed.computed == 1  # only the edited image
    np.testing.assert_array_equal(new["mara"][0], feats["mara"][0])
    assert not np.allclose(new["mara"][1], feats["mara"][1])
    with safe_open(str(story_dir / CACHE_FILE), "np") as fh:
        assert len(list(fh.keys())) == 2  # the stale entry is gone


def test_reference_cache_keys_depend_on_the_encoder(dino, story_dir, story):
    ReferenceCache(story_dir).features(_refs(story), ["mara"], dino)
    other = ReferenceCache(story_dir)
    other.features(_refs(story), ["mara"], tiny_dino(seed=1, device="cpu"))
    assert other.computed == 0  # same label, same prep: same fingerprint
    other.features(_refs(story), ["mara"], tiny_clip(device="cpu"))
    assert other.computed == 2


def test_unreadable_reference_is_reported(dino, story_dir, story):
    (story_dir / "cast/mara-1.png").write_bytes(b"not an image")
    (story_dir / "cast/mara-2.png").unlink()
    obs = _observe(Observer(None, dino), story_dir, story)
    assert obs.scores.character_consistency == {}
    reason = obs.scores.unavailable["character_consistency.mara"]
    assert "mara-1.png" in reason or "mara-2.png" in reason
    assert obs.scores.subject_consistency is not None


def test_without_weights_semantic_metrics_are_unavailable(story_dir, story):
    def missing():
        raise WeightsUnavailable(f"not in the cache; run '{FETCH_COMMAND}'")

    obs = _observe(Observer(clip=missing, dino=None), story_dir, story)
    s = obs.scores
    for name in (*SEMANTIC, "seam_dino_cosine", "character_consistency"):
        assert getattr(s, name) in (None, {}), name
        assert FETCH_COMMAND in s.unavailable[name], name
    assert "CLIP weights unavailable" in s.unavailable["clip_score"]
    assert s.temporal_flicker == pytest.approx(1 - 1 / 255)
    assert s.seam_pixel_mae is not None
    assert s.encoders == {}
    assert obs.embeddings is None
    assert not (story_dir / "scenes").exists()


def test_default_observer_without_cached_weights(story_dir, story, monkeypatch):
    import scoring.encoders as enc
    import scoring.held

    monkeypatch.setattr(scoring.held, "_loaded", {})
    monkeypatch.setattr(enc, "DEFAULT_CLIP", str(story_dir / "no-clip-here"))
    monkeypatch.setattr(enc, "DEFAULT_DINO", str(story_dir / "no-dino-here"))
    monkeypatch.delenv(enc.CLIP_ENV, raising=False)
    monkeypatch.delenv(enc.DINO_ENV, raising=False)
    obs = _observe(Observer.default(), story_dir, story)
    assert obs.scores.clip_score is None
    assert "clip-vit-b-32" in obs.scores.unavailable["clip_score"]
    assert obs.scores.temporal_flicker is not None


def test_first_scene_has_no_seam(clip, dino, story_dir, story):
    obs = _observe(Observer(clip, dino), story_dir, story, previous=None)
    assert obs.scores.seam_pixel_mae is None and obs.scores.seam_dino_cosine is None
    assert "previous take" in obs.scores.unavailable["seam_pixel_mae"]


def test_one_frame_take(clip, dino, story_dir, story):
    obs = _observe(Observer(clip, dino), story_dir, story, frames=_frames(1))
    s = obs.scores
    assert s.subject_consistency is None and s.background_consistency is None
    assert s.temporal_flicker is None
    assert "one frame" in s.unavailable["subject_consistency"]
    assert s.clip_score is not None


def test_empty_prompt_has_no_clip_score(clip, dino, story_dir, story):
    obs = _observe(Observer(clip, dino), story_dir, story, take=_take(prompt=" "))
    assert obs.scores.clip_score is None
    assert "prompt" in obs.scores.unavailable["clip_score"]


class _Broken:
    """An encoder whose forward pass fails."""

    label = "broken"

    def encode_images(self, frames, batch_size=32):
        raise RuntimeError("CUDA error: device-side assert")


def test_a_failing_encoder_never_fails_the_take(dino, story_dir, story):
    obs = _observe(Observer(_Broken(), dino), story_dir, story)
    s = obs.scores
    assert s.clip_score is None
    assert "device-side assert" in s.unavailable["clip_score"]
    assert s.subject_consistency is not None  # DINO still scored
    assert obs.embeddings is not None


def test_bad_frames_are_recorded_not_raised(clip, dino, story_dir, story):
    obs = _observe(
        Observer(clip, dino),
        story_dir,
        story,
        frames=np.zeros((2, 8, 8, 3), np.float32),
    )
    assert "uint8" in obs.scores.unavailable["observer"]
    assert obs.embeddings is None


def test_observer_fits_the_engine_protocol(clip, dino):
    observe = pytest.importorskip("engine.observe")
    assert isinstance(Observer(clip, dino), observe.TakeObserver)


def test_embeddings_path_sits_beside_the_clip(story):
    request = ObservationRequest.of_take(
        Path("x"), story, "s1", _take(3), _frames(), None
    )
    assert request.embeddings_path == "scenes/s1/take-3.embeddings.safetensors"


def test_release_drops_loaded_encoders_until_the_next_take(
    clip, dino, story_dir, story
):
    loads = {"clip": 0, "dino": 0}

    def loader(name, encoder):  # noqa: ANN001, ANN202
        def load():  # noqa: ANN202
            loads[name] += 1
            return encoder

        return load

    observer = Observer(clip=loader("clip", clip), dino=loader("dino", dino))
    first = _observe(observer, story_dir, story)
    _observe(observer, story_dir, story)
    assert loads == {"clip": 1, "dino": 1}  # loaded once, kept
    observer.release()
    again = _observe(observer, story_dir, story)
    assert loads == {"clip": 2, "dino": 2}  # loaded again after the release
    assert again.scores.clip_score == first.scores.clip_score


def test_a_non_finite_score_is_recorded_as_unavailable() -> None:
    from kg.schema import Scores
    from scoring.recording import put_score as _put

    s = Scores()
    _put(s, "clip_score", float("nan"))
    _put(s, "temporal_flicker", 0.5)
    assert s.clip_score is None and "nan" in s.unavailable["clip_score"]
    assert s.temporal_flicker == 0.5
