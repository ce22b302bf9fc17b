"""Supplied dialogue on LTX-2: the scene's track encoded by the audio VAE and
held in the audio stream at every step (the makers' audio-to-video route),
in every window; the take's sound is the track itself, resampled; the film
carries it; a missing or unreadable track is refused by name; the editor
warns when the dialogue needs more time than the scene has; and
``storygraph run`` on tiny LTX-2.3 makes a story of references, a LoRA and a
supplied track."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from engine.backends.ltx2.audio import audio_latent_count, latents_per_second
from engine.backends.ltx2.backend import LTX2Backend, loaded_model, release_models
from engine.backends.ltx2.supplied_audio import encode_track, mel_filter_bank
from engine.dialogue_audio import DialogueAudioError, decode_track, read_dialogue_audio
from engine.generate import generate_scene
from engine.sound import read_wav
from kg.schema import (
    Character,
    DialogueLine,
    LoraRef,
    SceneEdge,
    SceneNode,
    Settings,
    Story,
    WindowSettings,
)
from kg.store import load_story, save_story

MODEL = "tiny-random-2.3"
FPS = 24
RATE = 22_050  # the track's own rate: not the model's


@pytest.fixture(autouse=True)
def _fresh_models() -> Any:
    release_models()
    yield
    release_models()


def sine(seconds: float, rate: int = RATE, hz: float = 330.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    left = 0.5 * np.sin(2 * np.pi * hz * t)
    return np.stack([left, 0.5 * left]).astype(np.float32)


def write_track(path: Path, seconds: float, rate: int = RATE) -> Path:
    pcm = (sine(seconds, rate) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(2)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(np.ascontiguousarray(pcm.T).tobytes())
    return path


def _story(tmp_path: Path, frames: int = 17, **settings: Any) -> Path:
    (tmp_path / "voices").mkdir(exist_ok=True)
    write_track(tmp_path / "voices/line.wav", frames / FPS)
    story = Story(
        title="Lines",
        settings=Settings(
            backend="ltx2", model=MODEL, width=64, height=64, fps=FPS,
            quality_preset="fast", **settings,
        ),
        characters=[Character(id="mara", name="Mara")],
        scenes=[SceneNode(
            id="talk", title="Talk", motion="she speaks", num_frames=frames,
            character_ids=["mara"], dialogue_audio="voices/line.wav",
            dialogue=[DialogueLine(character_id="mara", text="Is anyone here")],
        )],
    )  # fmt: skip
    save_story(story, tmp_path)
    return tmp_path


def test_the_audio_tokens_are_the_encoded_track_at_every_step(tmp_path: Path) -> None:
    story_dir = _story(tmp_path)
    pipe = loaded_model(MODEL, "cpu", "none").pipe
    calls: list[dict[str, Any]] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        calls.append(
            {
                "audio": kwargs["audio_hidden_states"].detach().clone(),
                "t": kwargs["audio_timestep"].detach().clone(),
                "sigma": kwargs["audio_sigma"].detach().clone(),
            }
        )

    handle = pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        take = generate_scene(story_dir, "talk", backend=LTX2Backend())
    finally:
        handle.remove()
    assert take.status == "done", take.error
    track = read_dialogue_audio(story_dir, load_story(story_dir).scene("talk"))
    assert track is not None
    expected = encode_track(pipe, track, 17, FPS).latents
    assert len(calls) == 2
    for call in calls:
        length = call["audio"].shape[1]
        assert torch.equal(call["audio"].float(), expected[:, :length])
        assert torch.all(call["t"] == 0) and torch.all(call["sigma"] == 0)
    assert take.params.dialogue_audio is not None
    assert take.params.dialogue_audio.path == "voices/line.wav"
    assert take.params.audio_continuity == "none"


def test_the_takes_sound_is_the_track_resampled_and_the_film_carries_it(
    tmp_path: Path,
) -> None:
    from engine.film import assemble_film, plan_film

    story_dir = _story(tmp_path)
    take = generate_scene(story_dir, "talk", backend=LTX2Backend())
    assert take.status == "done", take.error
    samples, rate = read_wav(story_dir / take.files.audio)  # type: ignore[operator]
    assert rate == 16_000  # the tiny vocoder's rate, not the track's 22.05 kHz
    want = sine(17 / FPS, rate)
    assert samples.shape == want.shape
    inner = slice(200, -200)  # the resampler's edges
    assert np.abs(samples[:, inner] - want[:, inner]).max() < 0.02
    # the film of the line carries it (AAC, so its pitch and level)
    story = load_story(story_dir)
    film = assemble_film(story_dir, plan_film(story, story_dir, "talk"))
    assert film.audio
    heard = decode_track(film.path.read_bytes(), rate, channels=2)[0, 800:-800]
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(heard.size)))
    peak = np.fft.rfftfreq(heard.size, 1 / rate)[spectrum.argmax()]
    assert abs(peak - 330.0) < 25.0
    level = np.sqrt(np.mean(heard**2))
    assert abs(level - 0.5 / np.sqrt(2)) < 0.1


def test_every_window_of_a_long_take_holds_its_stretch_of_the_track(
    tmp_path: Path,
) -> None:
    story_dir = _story(
        tmp_path,
        frames=33,
        windows=WindowSettings(frames=17, overlap_frames=8, strength=1.0),
    )
    pipe = loaded_model(MODEL, "cpu", "none").pipe
    seen: list[torch.Tensor] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["audio_hidden_states"].detach().clone())

    handle = pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        take = generate_scene(story_dir, "talk", backend=LTX2Backend())
    finally:
        handle.remove()
    assert take.status == "done", take.error
    assert len(take.windows) == 2
    track = read_dialogue_audio(story_dir, load_story(story_dir).scene("talk"))
    expected = encode_track(pipe, track, 33, FPS).latents  # type: ignore[arg-type]
    spans = set()
    for audio in seen:
        n = audio.shape[1]
        hits = [
            s for s in range(expected.shape[1] - n + 1)
            if torch.equal(audio.float(), expected[:, s : s + n])
        ]  # fmt: skip
        assert hits, "each window's audio is a stretch of the track"
        spans.add((hits[0], hits[0] + n))
    # the first from the track's start, the last ending with the picture
    assert len(spans) == 2 and min(spans)[0] == 0
    assert max(spans)[1] == audio_latent_count(33, FPS, latents_per_second(pipe))


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda p: p.unlink(), "is missing"),
        (lambda p: p.write_bytes(b"not sound at all"), "not a readable sound file"),
    ],
)
def test_a_bad_track_is_named_and_no_take_begins(
    tmp_path: Path, damage: Any, says: str
) -> None:
    story_dir = _story(tmp_path)
    damage(story_dir / "voices/line.wav")
    with pytest.raises(DialogueAudioError, match=says) as err:
        generate_scene(story_dir, "talk", backend=LTX2Backend())
    assert "voices/line.wav (scene talk)" in str(err.value)
    assert load_story(story_dir).scene("talk").takes == []


def test_the_mel_filter_bank_is_slaneys() -> None:
    bank = mel_filter_bank(16_000, 1024, 64)
    assert bank.shape == (513, 64)
    # Slaney norm: each triangle's area in Hz is 1 (2 / width x width / 2)
    freqs = np.linspace(0, 8000, 513)
    areas = np.trapezoid(bank, freqs, axis=0)
    assert np.allclose(areas[4:-4], 1.0, atol=0.05)
    peaks = freqs[bank.argmax(axis=0)]
    assert np.all(np.diff(peaks) >= 0) and peaks[10] < 1000 < peaks[-10]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 90, 20)).save(buf, format="PNG")
    return buf.getvalue()


def test_storygraph_run_makes_takes_with_a_reference_a_lora_and_a_supplied_track(
    tmp_path: Path,
) -> None:
    from studio.cli import app

    story_dir = _story(tmp_path)
    (story_dir / "references").mkdir()
    (story_dir / "references/mara.png").write_bytes(_png())
    pipe = loaded_model(MODEL, "cpu", "none").pipe
    layer = pipe.transformer.get_submodule("transformer_blocks.0.attn1.to_v")
    g = torch.Generator().manual_seed(0)
    (story_dir / "loras").mkdir()
    save_file(
        {
            "transformer.transformer_blocks.0.attn1.to_v.lora_A.weight": torch.randn(
                2, layer.in_features, generator=g
            ),
            "transformer.transformer_blocks.0.attn1.to_v.lora_B.weight": torch.randn(
                layer.out_features, 2, generator=g
            ),
        },
        str(story_dir / "loras/mara.safetensors"),
    )
    story = load_story(story_dir)
    story.characters[0].reference_images = ["references/mara.png"]
    story.characters[0].loras = [LoraRef(file="loras/mara.safetensors", weight=0.8)]
    story.scenes.append(
        SceneNode(id="after", title="After", motion="she waits", num_frames=9,
                  character_ids=["mara"])
    )  # fmt: skip
    story.edges.append(SceneEdge(source="talk", target="after", transition="cut"))
    save_story(story, story_dir)
    release_models()
    result = CliRunner().invoke(app, ["run", str(story_dir), "--no-score"])
    assert result.exit_code == 0, result.output
    story = load_story(story_dir)
    for scene in story.scenes:
        take = scene.selected
        assert take is not None and take.status == "done"
        assert [(r.path, r.entity) for r in take.params.references] == [
            ("references/mara.png", "mara")
        ]
        recipe = take.params.recipe
        assert recipe is not None and recipe.model_version == "2.3"
        assert [(x.name, x.weight, x.scope) for x in recipe.loras] == [
            ("mara", 0.8, "character mara")
        ]
    talk = story.scene("talk").selected
    assert talk is not None and talk.params.dialogue_audio is not None
    samples, rate = read_wav(story_dir / talk.files.audio)  # type: ignore[operator]
    want = sine(17 / FPS, rate)
    assert np.abs(samples[:, 200:-200] - want[:, 200:-200]).max() < 0.02
    after = story.scene("after").selected
    assert after is not None and after.params.dialogue_audio is None
