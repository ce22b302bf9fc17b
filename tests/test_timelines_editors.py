"""Timelines as editors read them: dissolves, sound and metadata in every format.

The story line ``dawn`` (arrival, meeting, climb -cut-> cliff-edge, dawn) with
a 4-frame dissolve at the cut and sound on some takes only: mono on arrival
and climb, stereo on cliff-edge, none on meeting and dawn.

FCPXML: Apple's DTD is not available offline here (no Python package ships
it), so the FCPXML test checks the DTD's rules for every element the
timeline writes, transcribed below from Apple's "FCPXML DTD" (version 1.10,
Final Cut Pro XML DTDs, developer.apple.com) — element order within
``clip``, ``video`` and ``transition``, required attributes, and that every
IDREF names an element of ``<resources>``. The EDL is read by a CMX 3600
column parser written here from the format's column layout, independent of
the adapter's reader.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from engine.film import plan_film
from engine.film.timeline import render_timeline
from engine.film.timeline_post import AUDIO_CROSSFADE_UID, CROSS_DISSOLVE_UID
from engine.generate import generate_scene
from engine.sound import write_wav
from engine.video import write_video
from kg.example import example_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.store import load_story, save_story

FPS, FRAMES, SIZE, FADE = 24, 12, 64, 4
DAWN = ["arrival", "meeting", "climb", "cliff-edge", "dawn"]
CHANNELS = {"arrival": 1, "climb": 1, "cliff-edge": 2}  # the others are silent


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("timelines") / "story"
    story = example_story()
    story.settings.width = story.settings.height = SIZE
    story.settings.fps = FPS
    for scene in story.scenes:
        scene.duration_s = FRAMES / FPS
    save_story(story, folder)
    for sid in generation_order(DynamicSceneGraph(story)):
        assert generate_scene(folder, sid, backend="animatic").status == "done"
    rng = np.random.default_rng(0)
    for pos, sid in enumerate(generation_order(DynamicSceneGraph(story))):
        take = load_story(folder).scene(sid).selected
        frames = np.full((take.params.num_frames, SIZE, SIZE, 3), 20 * pos, np.uint8)
        sound = None
        if sid in CHANNELS:
            sound = folder / f"scenes/{sid}/sound.wav"
            seconds = len(frames) / FPS
            noise = rng.uniform(-0.3, 0.3, (CHANNELS[sid], round(seconds * 16000)))
            write_wav(sound, noise, 16000)
        write_video(folder / take.files.video, frames, FPS, audio=sound)
    return folder


def _render(story: Path, fmt: str, tmp_path: Path) -> str:
    copy = tmp_path / "story"
    if not copy.exists():
        shutil.copytree(story, copy)
    plan = plan_film(load_story(copy), copy, "dawn", crossfade=FADE)
    return render_timeline(copy, plan, fmt, name="dawn", media_base=copy / "films")


def _plan(story: Path):
    return plan_film(load_story(story), story, "dawn", crossfade=FADE)


# --- FCPXML: rules of Apple's FCPXML DTD (1.10) ---------------------------------
# Children allowed, in order, for the elements the timeline writes (a group
# may repeat where the DTD has "*"); "clip_item" = audio | video | clip |
# title | mc-clip | ref-clip | sync-clip | asset-clip | audition | gap;
# "marker_item" = marker | chapter-marker | rating | keyword | analysis-marker.
CLIP_ITEM = {"audio", "video", "clip", "title", "mc-clip", "ref-clip",
             "sync-clip", "asset-clip", "audition", "gap"}  # fmt: skip
MARKER_ITEM = {"marker", "chapter-marker", "rating", "keyword", "analysis-marker"}
ANCHOR_ITEM = CLIP_ITEM - {"gap"} | {"caption", "spine"}
ORDER = {
    # <!ELEMENT clip (note?, %timing-params;, %intrinsic-params;, (spine |
    #   (%clip_item;) | caption)*, (%marker_item;)*, audio-channel-source*,
    #   (%video_filter_item;)*, filter-audio*, metadata?)>
    "clip": [{"note"}, CLIP_ITEM | {"spine", "caption"}, MARKER_ITEM,
             {"metadata"}],
    # <!ELEMENT video (param*, note?, %timing-params;, %intrinsic-params-video;,
    #   (%anchor_item;)*, (%marker_item;)*, (%video_filter_item;)*, reserved?)>
    "video": [{"param"}, {"note"}, ANCHOR_ITEM, MARKER_ITEM],
    # <!ELEMENT transition (filter-video?, filter-audio?, (%marker_item;)*,
    #   metadata?, reserved?)>
    "transition": [{"filter-video"}, {"filter-audio"}, MARKER_ITEM, {"metadata"}],
    # <!ELEMENT spine (%clip_item; | transition)* >
    "spine": [CLIP_ITEM | {"transition"}],
    # <!ELEMENT audio (note?, %timing-params;, adjust-volume?, (%anchor_item;)*,
    #   (%marker_item;)*, filter-audio*)>
    "audio": [{"note"}, ANCHOR_ITEM, MARKER_ITEM],
    # <!ELEMENT metadata (md*)>, <!ELEMENT md (array?)>
    "metadata": [{"md"}],
    # <!ELEMENT resources (asset | effect | format | media | locator)*>
    "resources": [{"asset", "effect", "format", "media", "locator"}],
}  # fmt: skip
SINGLE = {"note", "metadata", "filter-video", "filter-audio"}  # "?" in the DTD
REQUIRED = {
    "format": ["id"],
    "asset": ["id"],
    "effect": ["id", "uid"],  # <!ATTLIST effect uid CDATA #REQUIRED>
    "clip": ["duration"],  # %clip_attrs;: duration #REQUIRED
    "video": ["ref", "duration"],
    "audio": ["ref", "duration"],
    "transition": ["duration"],
    "filter-video": ["ref"],
    "filter-audio": ["ref"],
    "md": ["key"],
    "marker": ["start", "value"],
}
IDREFS = {"video": "ref", "audio": "ref", "filter-video": "ref",
          "filter-audio": "ref", "asset": "format", "sequence": "format"}  # fmt: skip


def dtd_problems(root: ET.Element) -> list[str]:
    """Breaches of the transcribed DTD rules anywhere in the document."""
    problems = []
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    for element in root.iter():
        tag = element.tag
        for attr in REQUIRED.get(tag, []):
            if element.get(attr) is None:
                problems.append(f"<{tag}> without {attr}")
        if tag in IDREFS and element.get(IDREFS[tag]) not in ids | {None}:
            problems.append(f"<{tag}> {IDREFS[tag]}={element.get(IDREFS[tag])}")
        groups = ORDER.get(tag)
        if groups is None:
            continue
        position, seen = 0, set()
        for child in element:
            while position < len(groups) and child.tag not in groups[position]:
                position += 1
            if position == len(groups):
                problems.append(f"<{child.tag}> out of order in <{tag}>")
                break
            if child.tag in SINGLE and child.tag in seen:
                problems.append(f"two <{child.tag}> in <{tag}>")
            seen.add(child.tag)
    return problems


def seconds(text: str) -> Fraction:
    """FCPXML time ("49/24s", "2s") in seconds."""
    return Fraction(text.removesuffix("s"))


def test_fcpxml_follows_the_dtd_and_has_a_transition_per_dissolve(
    story: Path, tmp_path: Path
) -> None:
    text = _render(story, "fcpxml", tmp_path)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>')
    root = ET.fromstring(text.split("\n", 2)[2])
    assert dtd_problems(root) == []
    fmt = root.find("./resources/format")
    assert (fmt.get("width"), fmt.get("height")) == (str(SIZE), str(SIZE))
    assets = {a.get("id"): a for a in root.iter("asset")}
    assert all(a.get("src", "").startswith("file:///") for a in assets.values())
    effects = {e.get("id"): e.get("uid") for e in root.iter("effect")}

    plan = _plan(story)
    spine = root.find("./project/sequence/spine")
    items = list(spine)
    clips = [e for e in items if e.tag == "clip"]
    assert len(clips) == len(DAWN)
    # the clips abut: each starts where the one before ends, and the
    # sequence is as long as the film
    end = Fraction(0)
    for clip in clips:
        assert seconds(clip.get("offset")) == end
        end += seconds(clip.get("duration"))
    assert end == Fraction(plan.frames, FPS)
    assert seconds(root.find("./project/sequence").get("duration")) == end
    # one transition per dissolve, centred on the cut into cliff-edge
    transitions = [e for e in items if e.tag == "transition"]
    dissolves = [s for s in plan.shots if s.crossfade]
    assert len(transitions) == len(dissolves) == 1
    after = items[items.index(transitions[0]) + 1]
    assert after.get("name").startswith(plan.shots[3].title)
    cut = seconds(after.get("offset"))
    assert seconds(transitions[0].get("duration")) == Fraction(FADE, FPS)
    assert seconds(transitions[0].get("offset")) == cut - Fraction(FADE // 2, FPS)
    assert effects[transitions[0].find("filter-video").get("ref")] == (
        CROSS_DISSOLVE_UID
    )
    assert effects[transitions[0].find("filter-audio").get("ref")] == (
        AUDIO_CROSSFADE_UID
    )
    # the incoming clip starts on its handle-free frame (2 late)
    assert seconds(after.get("start")) == Fraction(FADE - FADE // 2, FPS)

    for clip, sid in zip(clips, DAWN, strict=True):
        video = clip.find("video")
        asset = assets[video.get("ref")]
        sounds = sid in CHANNELS
        assert asset.get("hasAudio") == ("1" if sounds else "0"), sid
        audio = video.find("audio")
        assert (audio is not None) == sounds, sid
        if sounds:
            assert audio.get("lane") == "-1" and audio.get("ref") == video.get("ref")
            assert audio.get("duration") == video.get("duration")
        # metadata: the note and md items say scene, take, seed, prompt
        note = clip.find("note").text
        assert f"scene {sid}, take 1" in note and "prompt:" in note
        md = {m.get("key"): m.get("value") for m in clip.iter("md")}
        assert md["com.storygraph.scene"] == sid and md["com.storygraph.prompt"]
        assert int(md["com.storygraph.seed"]) >= 0


# --- sound in every format -------------------------------------------------------


def test_otio_has_an_audio_track_that_plays_as_the_film(
    story: Path, tmp_path: Path
) -> None:
    import opentimelineio as otio

    text = _render(story, "otio", tmp_path)
    timeline = otio.adapters.read_from_string(text, "otio_json")
    video, audio = timeline.tracks
    assert audio.kind == otio.schema.TrackKind.Audio
    assert audio.duration() == video.duration()
    items = [i for i in audio if not isinstance(i, otio.schema.Transition)]
    assert len(items) == len(DAWN)
    for item, sid in zip(items, DAWN, strict=True):
        if sid in CHANNELS:
            assert isinstance(item, otio.schema.Clip)
            assert item.metadata["storygraph"]["scene"] == sid
        else:
            assert isinstance(item, otio.schema.Gap)
    # climb and cliff-edge both sound: the dissolve is a crossfade in audio too
    fades = [i for i in audio if isinstance(i, otio.schema.Transition)]
    assert len(fades) == 1
    video_clips = [c for c in video if isinstance(c, otio.schema.Clip)]
    for clip, item in zip(video_clips, items, strict=True):
        assert item.source_range == clip.source_range


def test_fcp7_xml_has_audio_clip_items_and_logging_info(
    story: Path, tmp_path: Path
) -> None:
    root = ET.fromstring(_render(story, "xml", tmp_path))
    media = root.find("./project/children/sequence/media")
    video_items = media.findall("./video/track/clipitem")
    audio_items = media.findall("./audio/track/clipitem")
    assert len(video_items) == len(DAWN)
    assert [i.findtext("logginginfo/scene") for i in video_items] == DAWN
    assert all(i.findtext("logginginfo/lognote") for i in video_items)
    assert all(
        i.findtext("comments/mastercomment1").startswith("seed ") for i in video_items
    )
    assert [i.findtext("sourcetrack/mediatype") for i in audio_items] == (
        ["audio"] * len(CHANNELS)
    )
    assert [i.findtext("logginginfo/scene") for i in audio_items] == [
        s for s in DAWN if s in CHANNELS
    ]
    audio_fades = media.findall("./audio/track/transitionitem")
    assert [t.findtext("effect/mediatype") for t in audio_fades] == ["audio"]
    assert [
        t.findtext("effect/mediatype")
        for t in media.findall("./video/track/transitionitem")
    ] == ["video"]


# --- CMX 3600, read by its columns -------------------------------------------------


def read_cmx_3600(text: str) -> list[dict[str, str]]:
    """Event lines by CMX 3600's fixed columns (1-based: event 1-3, reel
    6-13, channel 15-18, transition 21-24, duration 25-27, source in 30-40,
    source out 42-52, record in 54-64, record out 66-76)."""

    def col(line: str, a: int, b: int) -> str:
        return line[a - 1 : b].strip()

    events = []
    for line in text.splitlines():
        if not re.match(r"^\d{3} ", line):
            continue
        events.append(
            {
                "event": col(line, 1, 3),
                "reel": col(line, 6, 13),
                "channel": col(line, 15, 18),
                "transition": col(line, 21, 24),
                "duration": col(line, 25, 27),
                "src_in": col(line, 30, 40),
                "src_out": col(line, 42, 52),
                "rec_in": col(line, 54, 64),
                "rec_out": col(line, 66, 76),
            }
        )
    return events


def frames(timecode: str) -> int:
    h, m, s, f = (int(x) for x in re.split("[:;]", timecode))
    return ((h * 60 + m) * 60 + s) * FPS + f


def test_edl_reads_right_by_its_columns_with_sound_and_comments(
    story: Path, tmp_path: Path
) -> None:
    text = _render(story, "edl", tmp_path)
    events = read_cmx_3600(text)
    dissolves = [e for e in events if e["transition"] == "D"]
    assert len(dissolves) == 1 and int(dissolves[0]["duration"]) == FADE
    assert all(e["transition"] in ("C", "D") for e in events)
    for e in events:
        assert e["duration"] == ("" if e["transition"] == "C" else e["duration"])
        assert re.fullmatch(r"\d\d:\d\d:\d\d:\d\d", e["rec_out"]), e
    # the record side rebuilds the film: the last event ends with it
    assert frames(events[-1]["rec_out"]) == _plan(story).frames
    # picture with its audio channels where the clip has sound
    by_event: dict[str, str] = {}
    for e in events:
        by_event[e["event"]] = e["channel"]
    expected = {1: "B", 2: "V", 3: "B", 4: "AA/V", 5: "V"}
    assert by_event == {f"{k:03d}": v for k, v in expected.items()}
    # metadata as comments: scene, take, seed and the prompt
    comments = [ln for ln in text.splitlines() if ln.startswith("* COMMENT:")]
    for sid in DAWN:
        assert any(f"SCENE {sid} TAKE 1 SEED" in c for c in comments), sid
    assert any(c.startswith("* COMMENT: PROMPT ") for c in comments)
    assert all(len(c) <= 80 for c in comments)
