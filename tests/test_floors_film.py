"""Films against their floors: streams copied where a line allows it, keyframes
at every scene start and every second, BT.709 tags on every clip and film.

Clips are coded as in test_film: frame k of the scene at story position p is
a flat colour (R = 40 + 12k, G = 20 + 30p), so a decoded film says which
take frame each of its frames is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from engine.film import assemble_film, plan_film
from engine.film.assemble import COPIED, RE_ENCODED
from engine.film.stream_copy import (
    VideoTrack,
    copy_refusal,
    decode_joined,
    read_video_track,
)
from engine.generate import generate_scene
from engine.video import clip_preset, read_video, write_video
from kg.example import example_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.store import load_story, save_story, update_story

FPS, FRAMES, SIZE = 12, 30, 64  # clips of 2.5 s: more than one keyframe each


def coded_clip(pos: int) -> np.ndarray:
    clip = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    for k in range(FRAMES):
        clip[k, ..., 0] = 40 + 6 * k
        clip[k, ..., 1] = 20 + 30 * pos
        clip[k, ..., 2] = 128
    return clip


def decode(frame: np.ndarray) -> tuple[int, int]:
    r, g = frame[..., 0].mean(), frame[..., 1].mean()
    return round((g - 20) / 30), round((r - 40) / 6)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("floors") / "story"
    story = example_story()
    story.settings.width = story.settings.height = SIZE
    story.settings.fps = FPS
    for scene in story.scenes:
        scene.duration_s = FRAMES / FPS
    save_story(story, folder)
    order = generation_order(DynamicSceneGraph(story))
    for sid in order:
        assert generate_scene(folder, sid, backend="animatic").status == "done"
    for pos, sid in enumerate(order):
        write_video(folder / f"scenes/{sid}/take-1.mp4", coded_clip(pos), FPS)
    return folder, order


@pytest.fixture()
def story(made: tuple[Path, list[str]], tmp_path: Path) -> Path:
    copy = tmp_path / "story"
    shutil.copytree(made[0], copy)
    return copy


def _all_cuts(story_dir: Path) -> None:
    def mutate(story) -> None:  # noqa: ANN001
        for edge in story.edges:
            edge.transition = "cut"

    update_story(story_dir, mutate)


def test_stream_copied_film_equals_re_encoded_frame_for_frame(
    story: Path, tmp_path: Path
) -> None:
    _all_cuts(story)
    plan = plan_film(load_story(story), story)
    assert all(s.head == 0 and s.crossfade == 0 for s in plan.shots)
    copied = assemble_film(story, plan, out=tmp_path / "copied.mp4")
    encoded = assemble_film(
        story, plan, out=tmp_path / "encoded.mp4", copy_streams=False
    )
    assert copied.notes[-1] == COPIED
    assert encoded.notes[-1] == RE_ENCODED
    a, b = read_video(copied.path), read_video(encoded.path)
    assert len(a) == len(b) == plan.frames == len(plan.shots) * FRAMES
    codes_a = [decode(f) for f in a]
    assert codes_a == [decode(f) for f in b]
    order = generation_order(DynamicSceneGraph(load_story(story)))
    position = {sid: p for p, sid in enumerate(order)}
    expected = [(position[s.scene_id], k) for s in plan.shots for k in range(FRAMES)]
    assert codes_a == expected
    # the copy is the clips' own pictures: bit for bit what each clip decodes to
    first = read_video(story / plan.shots[0].video)
    assert np.array_equal(a[:FRAMES], first)


def test_re_encoded_film_has_keyframes_at_scene_starts_and_every_second(
    story: Path, tmp_path: Path
) -> None:
    plan = plan_film(load_story(story), story)  # continuous joins skip heads
    film = assemble_film(story, plan, out=tmp_path / "film.mp4")
    assert film.notes[-1] == RE_ENCODED
    track = read_video_track(film.path)
    assert track is not None and track.samples == plan.frames
    keys = set(track.sync or range(1, track.samples + 1))
    assert {start + 1 for start in plan.starts()} <= keys, (plan.starts(), keys)
    ordered = sorted(keys | {track.samples + 1})
    assert max(b - a for a, b in zip(ordered, ordered[1:], strict=False)) <= FPS
    assert track.bt709_tv


def test_clips_and_films_carry_bt709_tags_and_decode_true(tmp_path: Path) -> None:
    frames = np.zeros((FRAMES, 32, 96, 3), np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (40, 120, 200)]
    for i, c in enumerate(colours):
        frames[:, :, i * 24 : (i + 1) * 24] = c
    for preset in ("veryfast", "ultrafast"):
        path = write_video(tmp_path / f"{preset}.mp4", frames, FPS, preset=preset)
        track = read_video_track(path)
        assert track is not None and track.bt709_tv, track
        back = read_video(path).astype(int)
        for i, c in enumerate(colours):  # converted with the matrix it is tagged
            assert np.abs(back[3, 16, i * 24 + 12] - np.array(c)).max() <= 4


def test_a_clip_from_before_the_rules_is_re_encoded_with_the_reason(
    story: Path, tmp_path: Path
) -> None:
    _all_cuts(story)
    plan = plan_film(load_story(story), story)
    old = story / plan.shots[1].video
    writer = imageio_ffmpeg.write_frames(
        str(old), (SIZE, SIZE), fps=FPS, codec="libx264", quality=None,
        macro_block_size=1, ffmpeg_log_level="error", pix_fmt_out="yuv420p",
        output_params=["-crf", "18", "-preset", "veryfast"],
    )  # fmt: skip
    writer.send(None)
    for frame in coded_clip(1):
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    plan = plan_film(load_story(story), story)
    film = assemble_film(story, plan, out=tmp_path / "film.mp4")
    assert film.notes[-1].startswith(f"{RE_ENCODED} although only cut")
    assert "not tagged BT.709" in film.notes[-1]
    assert len(read_video(film.path)) == plan.frames


def test_joined_decoding_names_a_clip_that_falls_short(
    made: tuple[Path, list[str]],
) -> None:
    story, order = made
    clips = [story / f"scenes/{sid}/take-1.mp4" for sid in order[:3]]
    frames = list(decode_joined(clips, [FRAMES] * 3, (SIZE, SIZE)))
    assert len(frames) == 3 * FRAMES and frames[0].shape == (SIZE * 3 // 2, SIZE)
    with pytest.raises(ValueError, match=rf"{clips[1].name} decodes to {FRAMES} of"):
        list(decode_joined(clips, [FRAMES, FRAMES + 5, FRAMES], (SIZE, SIZE)))


def test_copy_refusal_reads_keyframe_distance_and_settings() -> None:
    good = VideoTrack(b"sps", 30, (1, 13, 25), (1, 1, 1, False))
    assert copy_refusal(["a.mp4", "b.mp4"], [good, good], [30, 30], 12) is None
    sparse = VideoTrack(b"sps", 30, (1,), (1, 1, 1, False))
    assert "30 frames between keyframes" in copy_refusal(["a.mp4"], [sparse], [30], 12)
    late = VideoTrack(b"sps", 30, (2, 13), (1, 1, 1, False))
    assert "start on a keyframe" in copy_refusal(["a.mp4"], [late], [30], 12)
    other = VideoTrack(b"other", 30, None, (1, 1, 1, False))
    why = copy_refusal(["a.mp4", "b.mp4"], [good, other], [30, 30], 12)
    assert "other settings" in why
    assert "no H.264" in copy_refusal(["a.mp4"], [None], [30], 12)
    # the concat demuxer reads a list of lines: a line break would inject one
    assert "line break" in copy_refusal(["a\nfile b.mp4"], [good], [30], 12)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a video at all",
        b"\x00\x00\x00\x10moov\x00\x00\x00\xffbad!",  # a child longer than moov
        b"\x00\x00\x00\x20moov" + b"\x00\x00\x00\x18trak" + b"\xff" * 16,
    ],
)
def test_read_video_track_of_a_broken_file_is_none(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    assert read_video_track(path) is None


def test_storyboard_previews_use_the_fast_preset() -> None:
    assert clip_preset("animatic") == "ultrafast"
    assert clip_preset("ltx") == "veryfast"
