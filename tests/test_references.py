"""Character and environment references as conditioning: keyframe tokens
placed before the clip (never frame 0) in the real LTX sampler on tiny random
weights; strengths by continuity; switched off per scene; bad files refused
per file before any take begins; recorded in the take."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from engine.backend import CancelToken, GenerationRequest, ReferenceImage, get_backend
from engine.backends.ltx.backend import loaded_model
from engine.generate import generate_scene
from engine.references import ReferenceFileError, chosen_references
from kg.schema import (
    Character,
    Environment,
    SceneEdge,
    SceneNode,
    Settings,
    Story,
)
from kg.store import load_story, save_story, update_story

SIZE, FRAMES = 64, 17  # 2x2 latent tokens per frame, 3 latent frames


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 48), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def story_dir(tmp_path: Path) -> Path:
    (tmp_path / "references/fox").mkdir(parents=True)
    (tmp_path / "references/snowfield").mkdir(parents=True)
    (tmp_path / "references/fox/a.png").write_bytes(_png((200, 90, 20)))
    (tmp_path / "references/fox/b.png").write_bytes(_png((180, 80, 10)))
    (tmp_path / "references/snowfield/a.png").write_bytes(_png((240, 240, 250)))
    story = Story(
        title="Fox",
        settings=Settings(
            backend="ltx", model="tiny-random", width=SIZE, height=SIZE, fps=24,
            quality_preset="fast", continuity_mode="latent",
        ),
        characters=[
            Character(id="fox", name="Fox", reference_images=[
                "references/fox/a.png", "references/fox/b.png"]),
        ],
        environments=[
            Environment(id="snowfield", name="Snowfield",
                        reference_images=["references/snowfield/a.png"]),
        ],
        scenes=[
            SceneNode(id="run", title="Runs", motion="runs", num_frames=FRAMES,
                      character_ids=["fox"], environment_id="snowfield"),
            SceneNode(id="stop", title="Stops", motion="stops", num_frames=FRAMES,
                      character_ids=["fox"], environment_id="snowfield"),
        ],
        edges=[SceneEdge(source="run", target="stop", transition="continuous")],
    )  # fmt: skip
    save_story(story, tmp_path)
    return tmp_path


class Spy:
    """Records what the transformer is given at each step."""

    def __init__(self) -> None:
        self.calls: list[dict[str, torch.Tensor]] = []

    def __call__(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        self.calls.append(
            {
                "tokens": kwargs["hidden_states"].detach().clone(),
                "coords": kwargs["video_coords"].detach().clone(),
                "timestep": kwargs["timestep"].detach().clone(),
            }
        )


@pytest.fixture
def spy() -> Any:
    pipe = loaded_model("tiny-random").pipe
    seen = Spy()
    handle = pipe.transformer.register_forward_pre_hook(seen, with_kwargs=True)
    yield seen
    handle.remove()


def test_references_are_chosen_in_turn_with_the_strength_of_the_join(
    story_dir: Path,
) -> None:
    story = load_story(story_dir)
    alone = chosen_references(story, "run", continuous=False)
    assert alone == [
        ("references/fox/a.png", "fox", 0.8),
        ("references/snowfield/a.png", "snowfield", 0.8),  # everyone's first first
    ]
    carried = chosen_references(story, "stop", continuous=True)
    assert {s for _, _, s in carried} == {0.3}
    story.settings.references.max_images = 3
    assert [p for p, _, _ in chosen_references(story, "run", continuous=False)][
        -1
    ] == "references/fox/b.png"
    story.scene("run").use_references = False
    assert chosen_references(story, "run", continuous=False) == []


def _frame_tokens() -> int:
    return (SIZE // 32) ** 2  # tokens per latent frame


def test_references_are_keyframes_before_the_clip_never_frame_zero(spy: Spy) -> None:
    backend = get_backend("ltx")
    refs = tuple(
        ReferenceImage(
            f"references/r{j}.png", "fox", np.full((SIZE, SIZE, 3), c, np.uint8), 0.8
        )
        for j, c in enumerate((30, 220))
    )
    request = GenerationRequest(
        prompt="a fox", width=SIZE, height=SIZE, num_frames=FRAMES, fps=24, seed=1,
        steps=2, guidance=1.0, model="tiny-random", references=refs,
    )  # fmt: skip
    out = backend.generate(request, lambda *a: None, CancelToken())
    assert out.frames.shape == (FRAMES, SIZE, SIZE, 3)  # reference tokens stripped
    call = spy.calls[0]
    per = _frame_tokens()
    clip = 3 * per
    assert call["tokens"].shape[1] == clip + 2 * per
    t = call["coords"][0, 0]  # time of every token, seconds
    assert (t[:clip] >= 0).all()  # the clip, frame 0 included, at t >= 0
    # reference j at pixel frame -8 j, before the clip
    assert torch.allclose(t[clip : clip + per], torch.full((per,), -8 / 24))
    assert torch.allclose(t[clip + per :], torch.full((per,), -16 / 24))
    # frame 0 is free (timestep t), the references held at t * (1 - 0.8)
    steps = (
        call["timestep"][0, :, 0] if call["timestep"].ndim == 3 else call["timestep"][0]
    )
    first_t = steps[0].item()
    assert torch.allclose(steps[:clip], torch.full((clip,), first_t))
    assert torch.allclose(
        steps[clip:], torch.full((2 * per,), first_t * 0.2), atol=1e-3
    )


def test_switching_references_off_removes_their_tokens(
    story_dir: Path, spy: Spy
) -> None:
    backend = get_backend("ltx")
    take = generate_scene(story_dir, "run", backend=backend)
    assert take.status == "done", take.error
    assert [(r.path, r.entity, r.strength) for r in take.params.references] == [
        ("references/fox/a.png", "fox", 0.8),
        ("references/snowfield/a.png", "snowfield", 0.8),
    ]
    with_refs = spy.calls[-1]["tokens"].shape[1]

    def off(story) -> None:  # noqa: ANN001
        story.scene("run").use_references = False

    update_story(story_dir, off)
    spy.calls.clear()
    plain = generate_scene(story_dir, "run", backend=backend, force=True)
    assert plain.params.references == []
    assert spy.calls[-1]["tokens"].shape[1] == with_refs - 2 * _frame_tokens()
    assert plain.params.cache_key != take.params.cache_key


def test_alongside_carried_latents_references_are_weaker(story_dir: Path) -> None:
    backend = get_backend("ltx")
    assert generate_scene(story_dir, "run", backend=backend).status == "done"
    second = generate_scene(story_dir, "stop", backend=backend)
    assert second.params.continuity_used == "latent", second.params.continuity_note
    assert {r.strength for r in second.params.references} == {0.3}


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda p: p.unlink(), "the file is missing"),
        (lambda p: p.write_bytes(b"not an image"), "not a readable image"),
    ],
)
def test_a_bad_reference_is_named_and_no_take_begins(
    story_dir: Path, damage: Any, says: str
) -> None:
    damage(story_dir / "references/snowfield/a.png")
    with pytest.raises(ReferenceFileError) as err:
        generate_scene(story_dir, "run", backend=get_backend("ltx"))
    text = str(err.value)
    assert "references/snowfield/a.png (snowfield)" in text and says in text
    assert "references/fox/a.png" not in text  # the good one is not blamed
    assert load_story(story_dir).scene("run").takes == []


def test_a_reference_linked_out_of_the_story_is_refused(
    story_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "x.png"
    outside.write_bytes(_png((1, 2, 3)))
    link = story_dir / "references/fox/a.png"
    link.unlink()
    link.symlink_to(outside)
    with pytest.raises(ReferenceFileError, match=r"references/fox/a.png \(fox\).*link"):
        generate_scene(story_dir, "run", backend=get_backend("ltx"))


def test_backends_without_references_neither_read_nor_record_them(
    story_dir: Path,
) -> None:
    (story_dir / "references/snowfield/a.png").unlink()  # not read at all
    take = generate_scene(story_dir, "run", backend="animatic")
    assert take.status == "done" and take.params.references == []


# Studio ----------------------------------------------------------------------------


def test_cast_stores_environment_references_and_the_editor_shows_and_toggles_them(
    outputs: Path,
) -> None:
    from studio import services
    from studio.testing import page_test, shown_text
    from studio.views.storyboard import SELECTED_KEY, editor_key

    folder = services.create_story("refs", "", example=True)
    cast = page_test("cast", folder).run()
    env = load_story(folder).environments[0].id
    cast.file_uploader(key=f"cast.ref.upload.environment.{env}").upload(
        "quay.png", _png((90, 90, 120)), "image/png"
    )
    cast.run()
    cast.button(key=f"cast.ref.store.environment.{env}").click().run()
    assert not cast.exception
    stored = load_story(folder).environments[0].reference_images
    assert stored == [f"references/{env}/quay.png"]

    board = page_test("storyboard", folder).run()
    scene = load_story(folder).scenes[0]
    assert board.session_state[SELECTED_KEY] == scene.id
    assert f"References (nothing carried, strength 0.8): {env}: quay.png" in (
        shown_text(board)
    )
    board.checkbox(key=editor_key(scene.id, "use_references")).uncheck().run()
    assert "Reference images off for this scene." in shown_text(board)
    board.button(key="storyboard.save").click().run()
    assert load_story(folder).scene(scene.id).use_references is False


def test_settings_save_reference_strengths(outputs: Path) -> None:
    from studio import services
    from studio.testing import page_test

    folder = services.create_story("refset", "", example=True)
    at = page_test("settings", folder).run()
    at.number_input(key="settings.reference_strength").set_value(0.6)
    at.number_input(key="settings.reference_strength_with_continuity").set_value(0.1)
    at.number_input(key="settings.reference_max_images").set_value(3)
    at.button[0].click().run()
    assert not at.exception
    refs = load_story(folder).settings.references
    assert (refs.strength, refs.strength_with_continuity, refs.max_images) == (
        0.6,
        0.1,
        3,
    )
