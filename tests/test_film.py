"""Films and timelines of story lines: frames skipped, dissolves, cache, sound,
conforming, refusals, and timelines that read back with the same cuts.

Each take's clip is replaced by a coded clip: frame k of the scene at story
position p is a flat colour (R = 40 + 12k, G = 20 + 30p), so the decoded film
says exactly which take frame each of its frames is.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

from engine.film import FilmRefusedError, assemble_film, plan_film
from engine.film.timeline import render_timeline, write_timeline
from engine.generate import generate_scene
from engine.sound import has_audio
from engine.video import read_video, write_video
from kg.errors import UnsafePathError
from kg.example import example_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.lines import UnknownLineError, story_lines
from kg.store import load_story, save_story, update_story
from studio.cli import app

FPS, FRAMES, SIZE = 24, 12, 64
MAIN = ["arrival", "meeting", "climb", "lamp-room"]
DAWN = ["arrival", "meeting", "climb", "cliff-edge", "dawn"]


def coded_clip(pos: int, frames: int = FRAMES, size: int = SIZE) -> np.ndarray:
    clip = np.zeros((frames, size, size, 3), np.uint8)
    for k in range(frames):
        clip[k, ..., 0] = 40 + 12 * k
        clip[k, ..., 1] = 20 + 30 * pos
        clip[k, ..., 2] = 128
    return clip


def decode(frame: np.ndarray) -> tuple[int, int]:
    """(story position, frame index) of a decoded coded frame."""
    r, g = frame[..., 0].mean(), frame[..., 1].mean()
    return round((g - 20) / 30), round((r - 40) / 12)


@pytest.fixture(scope="module")
def story_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("film") / "story"
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
    return folder


@pytest.fixture()
def story(story_dir: Path, tmp_path: Path) -> Path:
    """A fresh copy (tests change takes and films)."""
    import shutil

    copy = tmp_path / "story"
    shutil.copytree(story_dir, copy)
    return copy


def positions(folder: Path) -> dict[str, int]:
    order = generation_order(DynamicSceneGraph(load_story(folder)))
    return {sid: pos for pos, sid in enumerate(order)}


def overlaps(folder: Path) -> dict[str, int]:
    return {s.id: s.selected.overlap_frames for s in load_story(folder).scenes}


def test_lines_main_first_then_by_leaf(story_dir: Path) -> None:
    lines = story_lines(DynamicSceneGraph(load_story(story_dir)))
    assert [list(x.scenes) for x in lines] == [MAIN, DAWN]
    assert [x.main for x in lines] == [True, False]
    with pytest.raises(UnknownLineError, match="'climb' does not end a story line"):
        plan_film(load_story(story_dir), story_dir, "climb")
    with pytest.raises(UnknownLineError, match="'nope' is not a scene.*lamp-room"):
        plan_film(load_story(story_dir), story_dir, "nope")


def test_film_skips_the_repeated_frames_of_continuous_joins(story: Path) -> None:
    repeats = overlaps(story)
    assert all(repeats[s] == 1 for s in MAIN[1:]), repeats  # animatic: frame 0
    plan = plan_film(load_story(story), story)
    film = assemble_film(story, plan)
    frames = read_video(film.path)
    assert len(frames) == film.frames == 4 * FRAMES - sum(repeats[s] for s in MAIN[1:])
    pos = positions(story)
    expected = [(pos["arrival"], k) for k in range(FRAMES)]
    for sid in MAIN[1:]:
        expected += [(pos[sid], k) for k in range(repeats[sid], FRAMES)]
    assert [decode(f) for f in frames] == expected
    # the first frame after each join is that take's first non-repeated frame
    starts = plan.starts()
    for shot, at in zip(plan.shots[1:], starts[1:], strict=True):
        assert decode(frames[at]) == (pos[shot.scene_id], shot.head)


def test_crossfade_at_the_cut_blends_and_shortens(story: Path) -> None:
    plan = plan_film(load_story(story), story, "dawn", crossfade=4)
    assert [s.join for s in plan.shots] == [
        "start",
        *["continuous"] * 2,
        "cut",
        "continuous",
    ]
    repeats = overlaps(story)
    film = assemble_film(story, plan)
    frames = read_video(film.path)
    assert len(frames) == 5 * FRAMES - sum(repeats[s] for s in DAWN[1:]) - 4
    cut = plan.starts()[3]  # where cliff-edge starts fading in
    pos = positions(story)
    greens = [frames[cut + j][..., 1].mean() for j in range(4)]
    g_from, g_to = 20 + 30 * pos["climb"], 20 + 30 * pos["cliff-edge"]
    # rising strictly between the two shots' greens
    assert all(min(g_from, g_to) < g < max(g_from, g_to) for g in greens), greens
    assert greens == sorted(greens) or greens == sorted(greens, reverse=True)
    assert decode(frames[cut + 4]) == (pos["cliff-edge"], 4)


def test_unchanged_line_is_not_reencoded(story: Path) -> None:
    plan = plan_film(load_story(story), story)
    first = assemble_film(story, plan)
    before = first.path.stat()
    again = assemble_film(story, plan_film(load_story(story), story))
    assert again.reused and again.path == first.path
    after = again.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # a changed take changes the key; the older film of the line is removed
    write_video(story / "scenes/climb/take-1.mp4", coded_clip(5), FPS)
    third = assemble_film(story, plan_film(load_story(story), story))
    assert not third.reused and third.path != first.path
    assert not first.path.exists()


def test_other_size_and_fps_are_conformed_with_a_note(story: Path) -> None:
    # meeting re-made at half the size and half the frame rate
    write_video(story / "scenes/meeting/take-1.mp4", coded_clip(1, 6, 32), 12)

    def shrink(st) -> None:  # noqa: ANN001
        p = st.scene("meeting").selected.params
        p.width = p.height = 32
        p.fps, p.num_frames = 12, 6

    update_story(story, shrink)
    plan = plan_film(load_story(story), story)
    assert any("conformed to 64x64 at 24 fps" in n for n in plan.notes), plan.notes
    film = assemble_film(story, plan)
    frames = read_video(film.path)
    assert frames.shape[1:3] == (SIZE, SIZE)
    meeting = plan.shots[1]
    # 5 frames at 12 fps after the repeated one last 10 frames at 24 fps
    assert meeting.film_frames == 10
    at = plan.starts()[1]
    got = [decode(f)[1] for f in frames[at : at + 10]]
    assert got == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_a_clip_shorter_than_its_take_plays_its_own_frames(story: Path) -> None:
    # the record says 12 frames; the film trusts the clip's 7, never freezing
    write_video(story / "scenes/meeting/take-1.mp4", coded_clip(1, 7), FPS)
    plan = plan_film(load_story(story), story)
    assert plan.shots[1].frames == 7
    assert any("its clip holds 7" in n for n in plan.notes), plan.notes
    frames = read_video(assemble_film(story, plan).path)
    assert len(frames) == plan.frames
    at = plan.starts()[1]
    got = [decode(f) for f in frames[at : at + plan.shots[1].film_frames]]
    assert got == [(1, k) for k in range(1, 7)]
    assert decode(frames[at + plan.shots[1].film_frames]) == (2, 1)


def test_sound_is_carried_and_lasts_as_long_as_the_picture(story: Path) -> None:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    clip = story / "scenes/meeting/take-1.mp4"
    with_sound = clip.with_name("sound.mp4")
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-i", str(clip), "-f", "lavfi",
         "-i", "sine=frequency=440:duration=1", "-c:v", "copy", "-c:a", "aac",
         "-shortest", str(with_sound)],
        check=True,
    )  # fmt: skip
    os.replace(with_sound, clip)
    plan = plan_film(load_story(story), story, "dawn", crossfade=2)
    film = assemble_film(story, plan)
    assert film.audio and has_audio(film.path)
    raw = subprocess.run(
        [ffmpeg, "-loglevel", "error", "-i", str(film.path), "-map", "0:a",
         "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    audio_s = len(raw) / 2 / 48000
    assert abs(audio_s - film.frames / FPS) <= 1 / FPS, (audio_s, film.seconds)
    # sound where meeting plays, silence where arrival does
    samples = np.frombuffer(raw, np.int16).astype(np.float32)
    arrival = samples[: int(0.4 * 48000)]
    at = plan.starts()[1] / FPS
    meeting = samples[int((at + 0.05) * 48000) : int((at + 0.35) * 48000)]
    assert np.abs(arrival).max() < 50 and np.abs(meeting).max() > 1000


def test_refusals_name_the_scenes(story: Path, tmp_path: Path) -> None:
    def undo(st) -> None:  # noqa: ANN001
        for sid in ("climb", "dawn"):
            scene = st.scene(sid)
            scene.selected_take = None
            scene.takes, scene.status = [], "draft"

    update_story(story, undo)
    with pytest.raises(FilmRefusedError) as err:
        plan_film(load_story(story), story, "dawn")
    text = str(err.value)
    assert "2 of its 5 scenes" in text and "(climb)" in text and "(dawn)" in text
    assert "(arrival)" not in text


def test_a_clip_linked_outside_the_story_is_refused(
    story: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.mp4"
    write_video(outside, coded_clip(0), FPS)
    clip = story / "scenes/arrival/take-1.mp4"
    clip.unlink()
    clip.symlink_to(outside)
    with pytest.raises(UnsafePathError, match="link"):
        assemble_film(story, plan_film(load_story(story), story))


def test_otio_reads_back_with_the_same_clips_and_ranges(story: Path) -> None:
    import opentimelineio as otio

    plan = plan_film(load_story(story), story, "dawn", crossfade=4)
    path = write_timeline(story, plan, "otio", name="t")
    assert path == story / "films/dawn.otio"
    timeline = otio.adapters.read_from_file(str(path))
    clips = list(timeline.find_clips())
    assert [c.metadata["storygraph"]["scene"] for c in clips] == DAWN
    assert timeline.duration().to_frames() == plan.frames
    repeats = overlaps(story)
    starts = [c.source_range.start_time.to_frames() for c in clips]
    # repeated frames skipped; the dissolve into cliff-edge starts it 2 late
    assert starts == [0, repeats["meeting"], repeats["climb"], 2, repeats["dawn"]]
    assert clips[2].source_range.duration.to_frames() == FRAMES - repeats["climb"] - 2
    transitions = [
        t for t in timeline.tracks[0] if isinstance(t, otio.schema.Transition)
    ]
    assert len(transitions) == 1
    # relative media paths, resolving to the takes
    url = clips[0].media_reference.target_url
    assert url == "../scenes/arrival/take-1.mp4"
    assert (path.parent / url).resolve() == (
        story / "scenes/arrival/take-1.mp4"
    ).resolve()
    assert [m.name for c in clips for m in c.markers][0] == "Arrival at the harbour"
    meta = clips[0].metadata["storygraph"]
    assert meta["take"] == 1 and meta["seed"] >= 0 and meta["prompt"]


def test_fcpxml_holds_one_clip_per_scene(story: Path) -> None:
    plan = plan_film(load_story(story), story)
    text = render_timeline(story, plan, "fcpxml", name="t", media_base=None)
    root = ET.fromstring(text.split("\n", 2)[2])  # past the XML and DOCTYPE lines
    spine = root.find("./project/sequence/spine")
    assert spine is not None and len(list(spine)) == len(MAIN)
    assets = root.findall("./resources/asset")
    assert all(a.get("src", "").startswith("file:///") for a in assets)


def test_edl_has_one_event_per_scene_with_the_source_in_and_out(story: Path) -> None:
    plan = plan_film(load_story(story), story)
    text = render_timeline(story, plan, "edl", name="t", media_base=story / "films")
    events = [ln.split() for ln in text.splitlines() if re.match(r"^\d{3} ", ln)]
    assert len(events) == len(MAIN)
    repeats = overlaps(story)

    def tc(frames: int) -> str:
        return f"00:00:00:{frames:02d}"

    for event, sid in zip(events, MAIN, strict=True):
        head = repeats[sid] if sid != "arrival" else 0
        assert event[4:6] == [tc(head), tc(FRAMES)], event
    assert [e[1] for e in events] == ["S001T1", "S002T1", "S003T1", "S004T1"]


def test_timecode_formats_refuse_a_rate_without_timecode(story: Path) -> None:
    update_story(story, lambda st: setattr(st.settings, "fps", 8))
    plan = plan_film(load_story(story), story)
    with pytest.raises(ValueError, match="no 8 fps.*export OTIO or FCP X XML"):
        render_timeline(story, plan, "edl", name="t", media_base=None)
    assert render_timeline(story, plan, "otio", name="t", media_base=None)


def test_cli_film_timeline_and_run_film(story: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    done = cli.invoke(app, ["film", str(story), "--line", "dawn", "--crossfade", "2"])
    assert done.exit_code == 0, done.output
    assert "5 scenes" in done.output and "assembled" in done.output
    again = cli.invoke(app, ["film", str(story), "--line", "dawn", "--crossfade", "2"])
    assert "reused" in again.output
    bad = cli.invoke(app, ["film", str(story), "--line", "climb"])
    assert bad.exit_code == 2 and "lamp-room, dawn" in bad.output
    out = tmp_path / "cut.edl"
    edl = cli.invoke(
        app, ["timeline", str(story), "--format", "edl", "--out", str(out)]
    )
    assert edl.exit_code == 0, edl.output
    assert out.read_text().startswith("TITLE:")
    wrong = cli.invoke(app, ["timeline", str(story), "--format", "aaf"])
    assert wrong.exit_code == 2 and "otio, fcpxml, xml, edl" in wrong.output

    fresh = tmp_path / "fresh"
    assert cli.invoke(app, ["new", str(fresh), "--example"]).exit_code == 0
    update_story(fresh, lambda st: setattr(st.settings, "width", 64))
    update_story(fresh, lambda st: setattr(st.settings, "height", 64))
    ran = cli.invoke(app, ["run", str(fresh), "--no-score", "--film"])
    assert ran.exit_code == 0, ran.output
    films = sorted(p.name.rsplit("-", 1)[0] for p in (fresh / "films").glob("*.mp4"))
    assert films == ["dawn", "lamp-room"]
