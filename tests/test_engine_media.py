"""Video I/O, tail latents and the animatic backend on their own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.backend import (
    CancelToken,
    ContinuityInput,
    GenerationCancelled,
    GenerationRequest,
    SceneContext,
    get_backend,
)
from engine.continuity import load_tail_latents, save_tail_latents
from engine.sound import audio_duration, has_audio, mux_aac, write_wav
from engine.video import (
    ClipWriter,
    read_png,
    read_video,
    remove_partial_files,
    video_info,
    write_png,
    write_video,
)
from kg.paths import atomic_path

W, H, F = 128, 96, 13


def _request(**kw) -> GenerationRequest:
    scene = kw.pop(
        "scene",
        SceneContext(
            title="The keeper waits",
            characters=("Mara", "the old keeper"),
            character_looks=("yellow oilskin coat", "navy sweater"),
            environment="the harbour, boats on a stone quay",
            lighting="dusk",
            weather="rain",
            camera="pan_right",
            motion="the keeper raises his lantern",
        ),
    )
    base = dict(
        prompt="p",
        width=W,
        height=H,
        num_frames=F,
        fps=24,
        seed=7,
        steps=4,
        guidance=3.0,
        scene=scene,
    )
    base.update(kw)
    return GenerationRequest(**base)


def _render(request: GenerationRequest) -> np.ndarray:
    backend = get_backend("animatic")
    return backend.generate(request, lambda s, t: None, CancelToken()).frames


# Video files --------------------------------------------------------------------
def test_mp4_round_trip_keeps_frame_count_size_and_is_h264_yuv420p(tmp_path):
    frames = _render(_request())
    path = write_video(tmp_path / "clip.mp4", frames, 24)
    decoded = read_video(path)
    assert decoded.shape == frames.shape
    assert video_info(path) == {"frames": F, "width": W, "height": H, "fps": 24.0}
    # lossy, but close: a wrong channel order or size would be far off
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 6
    import subprocess

    import imageio_ffmpeg

    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(path)],
        capture_output=True,
        text=True,
    ).stderr
    assert "h264" in probe and "yuv420p" in probe


def test_sound_is_muxed_as_aac_by_one_function(tmp_path):
    frames = np.zeros((24, 64, 64, 3), np.uint8)  # 1 s at 24 fps
    tone = np.sin(np.linspace(0, 440 * 2 * np.pi, 16_000))[None].repeat(2, 0)
    wav = write_wav(tmp_path / "tone.wav", 0.5 * tone, 16_000)
    clip = write_video(tmp_path / "clip.mp4", frames, 24, audio=wav)
    assert has_audio(clip) and video_info(clip)["frames"] == 24
    silent = write_video(tmp_path / "silent.mp4", frames, 24)
    # a graph over several inputs, cut to a length, into a name without .mp4
    both = mux_aac(
        silent,
        [wav, wav],
        tmp_path / "both.partial",
        audio_filter="[1:a][2:a]concat=n=2:v=0:a=1[aout]",
        seconds=1.5,
    )
    assert abs(audio_duration(both) - 1.5) < 0.05
    assert read_video(both).shape == frames.shape
    with pytest.raises(OSError, match="could not add the sound"):
        mux_aac(silent, [tmp_path / "missing.wav"], tmp_path / "x.mp4")


def test_odd_sizes_are_refused_with_the_setting_to_change(tmp_path):
    frames = np.zeros((3, 95, 128, 3), np.uint8)
    with pytest.raises(ValueError, match="even width and height.*settings"):
        write_video(tmp_path / "odd.mp4", frames, 24)
    assert not list(tmp_path.iterdir())


def test_png_is_lossless_and_atomic_writes_leave_no_partial_file(tmp_path):
    frame = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    write_png(tmp_path / "f.png", frame)
    assert np.array_equal(read_png(tmp_path / "f.png"), frame)
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.mp4") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]
    (tmp_path / ".take-1.partial-abcd.mp4").write_bytes(b"left by SIGKILL")
    assert len(remove_partial_files(tmp_path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_clip_writer_encodes_in_background_and_reports(tmp_path):
    frames = _render(_request(num_frames=9))
    seen = []
    with ClipWriter() as writer:
        writer.submit(tmp_path / "a.mp4", frames, 24, lambda p, e: seen.append(e))
        writer.submit(
            tmp_path / "b.mp4", frames[:, :95], 24, lambda p, e: seen.append(e)
        )
        writer.flush()
    assert seen[0] is None and isinstance(seen[1], ValueError)
    assert read_video(tmp_path / "a.mp4").shape == frames.shape
    assert not (tmp_path / "b.mp4").exists()


def test_tail_latents_round_trip_with_string_metadata(tmp_path):
    tail = torch.randn(1, 8, 2, 3, 4)
    meta = {"model": "tiny", "width": "128", "height": "96"}
    save_tail_latents(tmp_path / "t.latents.safetensors", tail, meta)
    loaded, loaded_meta = load_tail_latents(tmp_path / "t.latents.safetensors")
    assert torch.equal(loaded, tail) and loaded_meta == meta
    with pytest.raises(TypeError, match="strings"):
        save_tail_latents(tmp_path / "u.safetensors", tail, {"width": 128})


# Animatic -----------------------------------------------------------------------
def test_animatic_is_deterministic_for_a_seed_and_varies_with_it():
    a, b = _render(_request()), _render(_request())
    assert a.shape == (F, H, W, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _render(_request(seed=8)))


@pytest.mark.parametrize(
    "camera",
    ["static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out"],
)
def test_animatic_camera_moves(camera):
    scene = SceneContext(title="Shot", environment="a cliff", camera=camera)
    frames = _render(_request(scene=scene))
    body = frames[:, : H * 2 // 3].astype(int)  # above the caption card
    moved = np.abs(body[0] - body[-1]).mean()
    if camera == "static":
        assert moved == 0
    else:
        assert moved > 1.0, camera


@pytest.mark.parametrize(
    "weather", ["clear", "overcast", "rain", "storm", "fog", "snow"]
)
def test_animatic_weather_changes_the_picture(weather):
    scene = SceneContext(title="Shot", environment="a field", weather=weather)
    frames = _render(_request(scene=scene))
    clear = _render(_request(scene=SceneContext(title="Shot", environment="a field")))
    assert (weather == "clear") == np.array_equal(frames, clear)


def test_animatic_starts_on_the_previous_last_frame_and_moves_on():
    prev = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    req = _request(continuity=ContinuityInput(mode="frame", last_frame=prev))
    result = get_backend("animatic").generate(req, lambda s, t: None, CancelToken())
    assert np.array_equal(result.frames[0], prev)
    assert result.continuity_used == "frame"
    assert np.abs(result.frames[-1].astype(int) - prev).mean() > 20
    alone = _render(_request())
    assert np.array_equal(result.frames[-1], alone[-1])  # dissolve is over


def test_animatic_reports_progress_and_stops_when_cancelled():
    cancel = CancelToken()
    steps = []

    def progress(step: int, total: int) -> None:
        steps.append((step, total))
        if step == 4:
            cancel.set()

    with pytest.raises(GenerationCancelled):
        get_backend("animatic").generate(_request(), progress, cancel)
    assert steps == [(i, F) for i in range(1, 5)]
