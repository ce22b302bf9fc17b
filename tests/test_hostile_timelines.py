"""Hostile titles through every timeline format, read back by each format's own
reader: quotes, ampersands, line breaks of every kind, characters XML cannot
hold, very long titles, a folder name with a quote and a line break, lines
longer than an EDL can number, the Screening page naming a failed export, and
the dataset manifests and README keeping one record per line.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import opentimelineio as otio
import pytest

from engine.dataset.bucket import Bucket
from engine.dataset.formats import FORMATS as DATASETS
from engine.dataset.formats import ManifestRow, render_readme
from engine.export_text import LINE_SEPARATORS, json_line, one_line, xml_line
from engine.film import FilmPlan, plan_film
from engine.film.timeline import (
    FORMATS,
    MAX_EDL_EVENTS,
    render_timeline,
    timeline_problem,
    write_timeline,
)
from engine.generate import generate_scene
from kg.example import example_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.store import load_story, save_story, update_story
from studio import screening
from studio.testing import page_test, shown_text

FPS = 24  # a timecode rate: every format can hold it

# Each accepted by the schema (a title may hold tabs and line breaks).
TITLES = {
    "arrival": 'Ana\'s "boat" & <crew>',
    "meeting": "Meeting\n002  AX V C 00:00:00:00 00:00:09:00 00:00:00:00 00:00:09:00",
    "climb": "Climb\r\nTITLE: forged\u2028* FROM CLIP: /etc/passwd\u2029end",
    "lamp-room": "L" * 119 + "'",
    "cliff-edge": "Cliff\ufffe\uffff edge\t'quoted' \"&amp;\" ]]> <!--",
    "dawn": "Dawn ]]>\r\rover\n\n the harbour's edge",
}
STORY_TITLE = 'The "Light" & Ana\'s\nTITLE: forged'
# Not accepted by the schema, written anyway by a plan made in code: control
# characters XML cannot hold, NEL, a lone surrogate.
RAW_TITLES = ["C0 \x0b\x1f\x00 controls", "NEL\x85next", "lone \ud800 surrogate"]


@pytest.fixture(scope="module")
def story_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile") / "Ana's\nstory"
    story = example_story()
    story.settings.width = story.settings.height = 64
    story.settings.fps = FPS
    for scene in story.scenes:
        scene.duration_s = 6 / FPS
    save_story(story, folder)
    for sid in generation_order(DynamicSceneGraph(story)):
        assert generate_scene(folder, sid, backend="animatic").status == "done"

    def hostile(s) -> None:  # noqa: ANN001 - kg.schema.Story
        s.title = STORY_TITLE
        for scene in s.scenes:
            scene.title = TITLES[scene.id]

    update_story(folder, hostile)
    return folder


def _plan(folder: Path, crossfade: int = 2) -> FilmPlan:
    return plan_film(load_story(folder), folder, "dawn", crossfade=crossfade)


def _read_back(text: str, fmt: str) -> otio.schema.Timeline:
    if fmt in ("fcpxml", "xml"):  # strict XML first: expat refuses what XML cannot hold
        start = text.index("<", text.index("?>") + 2) if "?>" in text else 0
        ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", text[start:]))
    return otio.adapters.read_from_string(text, FORMATS[fmt].adapter)


def _edl_events(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if re.match(r"^\d{3,} ", ln)]


def _check(text: str, fmt: str, plan: FilmPlan) -> otio.schema.Timeline:
    timeline = _read_back(text, fmt)
    clips = list(timeline.find_clips())
    assert len(clips) == len(plan.shots), (fmt, [c.name for c in clips])
    if fmt == "edl":
        # one event per scene, the dissolve sharing its scene's number
        numbers = {ln.split()[0] for ln in _edl_events(text)}
        assert numbers == {f"{n:03d}" for n in range(1, len(plan.shots) + 1)}
        # every line is the title, an event, a comment or blank: none was added
        rows = text.splitlines()
        assert [r for r in rows if r.startswith("TITLE:")] == [rows[0]], text
        assert all(re.match(r"(\d{3}  |\* |FCM: |$)", r) for r in rows[1:]), text
        assert not any(sep in text for sep in LINE_SEPARATORS[1:]), text
    else:
        # every clip keeps its scene's title (cleaned for the format)
        clean = FORMATS[fmt].text
        for clip, shot in zip(clips, plan.shots, strict=True):
            assert clip.name == clean(one_line(f"{shot.title} (take {shot.take})"))
    return timeline


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_hostile_titles_read_back_with_one_clip_per_scene(
    story_dir: Path, fmt: str
) -> None:
    plan = _plan(story_dir)
    assert len(plan.shots) == 5 and any(s.crossfade for s in plan.shots)
    text = render_timeline(story_dir, plan, fmt, name=STORY_TITLE, media_base=None)
    timeline = _check(text, fmt, plan)
    if fmt == "otio":  # the lossless format keeps the titles as typed
        meta = [c.metadata["storygraph"]["title"] for c in timeline.find_clips()]
        assert meta == [TITLES[s.scene_id] for s in plan.shots]
    if fmt == "fcpxml":  # the adapter's lookups cannot hold an apostrophe
        assert "Ana\u2019s" in timeline.find_clips()[0].name


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_hostile_prompts_stay_metadata_in_every_format(
    story_dir: Path, tmp_path: Path, fmt: str
) -> None:
    """Prompts reach the EDL's comments, the FCPXML's notes and metadata and
    the FCP 7 XML's logging info: none of them adds a line, an event or an
    element."""
    folder = Path(shutil.copytree(story_dir, tmp_path / "story"))
    prompts = {sid: f"{TITLES[sid]} ]]> <md key='x'/>" for sid in TITLES}

    def hostile_prompts(s) -> None:  # noqa: ANN001 - kg.schema.Story
        for scene in s.scenes:
            scene.selected.params.prompt = prompts[scene.id]

    update_story(folder, hostile_prompts)
    plan = _plan(folder)
    text = render_timeline(folder, plan, fmt, name=STORY_TITLE, media_base=None)
    _check(text, fmt, plan)
    if fmt == "fcpxml":
        root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", text.split("?>", 1)[1]))
        notes = [n.text for n in root.iter("note")]
        assert len(notes) == len(plan.shots)
        assert all("\n" not in n and "<md key=" in n for n in notes)
        assert len(list(root.iter("md"))) == 5 * len(plan.shots)
    if fmt == "xml":
        root = ET.fromstring(text)
        lognotes = [e.text for e in root.iter("lognote")]
        assert lognotes and all("<md key='x'/>" in n for n in lognotes)
    if fmt == "edl":
        comments = [r for r in text.splitlines() if r.startswith("* COMMENT: ")]
        assert any("PROMPT" in c for c in comments)
        assert all(len(c) <= 80 for c in comments)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_relative_media_paths_through_a_hostile_folder_name(
    story_dir: Path, tmp_path: Path, fmt: str
) -> None:
    plan = _plan(story_dir, crossfade=0)
    out = tmp_path / "cuts" / f"cut{FORMATS[fmt].suffix}"
    path = write_timeline(story_dir, plan, fmt, name=STORY_TITLE, out=out)
    timeline = _check(path.read_text(encoding="utf-8"), fmt, plan)
    if fmt != "edl":  # the EDL keeps paths in comments the reader skips
        url = timeline.find_clips()[0].media_reference.target_url
        assert "%27" in url and "%0A" in url and "\n" not in url, url


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_characters_the_schema_refuses_are_cleaned_too(
    story_dir: Path, fmt: str
) -> None:
    plan = _plan(story_dir)
    shots = [
        dataclasses.replace(s, title=RAW_TITLES[i % len(RAW_TITLES)], prompt=t)
        for i, (s, t) in enumerate(zip(plan.shots, RAW_TITLES * 2, strict=False))
    ]
    raw = dataclasses.replace(plan, shots=tuple(shots))
    text = render_timeline(story_dir, raw, fmt, name=RAW_TITLES[2], media_base=None)
    _check(text, fmt, raw)
    assert "\ud800" not in text


def test_a_line_longer_than_an_edl_can_number(story_dir: Path) -> None:
    plan = _plan(story_dir, crossfade=0)
    shots = plan.shots * (MAX_EDL_EVENTS // len(plan.shots) + 1)
    assert len(shots) == 1_000
    long = dataclasses.replace(plan, shots=shots)
    problem = timeline_problem("edl", long)
    assert problem and "001 to 999" in problem and "1,000 scenes" in problem
    with pytest.raises(ValueError, match="export OTIO, FCP X XML or FCP 7 XML"):
        render_timeline(story_dir, long, "edl", name="t", media_base=None)
    for fmt in ("otio", "fcpxml", "xml"):
        assert timeline_problem(fmt, long) is None
        text = render_timeline(story_dir, long, fmt, name="t", media_base=None)
        assert len(list(_read_back(text, fmt).find_clips())) == 1_000
    # exactly 999 still fits, numbered 001..999
    fits = dataclasses.replace(plan, shots=shots[:MAX_EDL_EVENTS])
    text = render_timeline(story_dir, fits, "edl", name="t", media_base=None)
    _check(text, "edl", fits)


def test_the_sanitiser_handles_every_separator_and_xml_invalid_character() -> None:
    for sep in LINE_SEPARATORS:
        assert one_line(f"a{sep}b").splitlines() == ["a b"]
    assert xml_line("a\x0b\x1f\ud800\ufffe\uffff\nb'<&") == "a \ufffd b'<&"
    assert "\n" not in json_line({"c": "a\u2028b\x85c\u2029"}).splitlines()[0]
    assert json_line({"c": "a\u2028b"}).splitlines() == ['{"c": "a\\u2028b"}']


def test_dataset_manifests_and_readme_keep_one_record_per_line() -> None:
    rows = [
        ManifestRow(caption=f'a{sep}b "q", c', video=f"clips/{i}.mp4")
        for i, sep in enumerate(LINE_SEPARATORS)
    ]
    for fmt in DATASETS.values():
        text = fmt.render_manifest(rows, paired=False)
        header = 1 if fmt.manifest.endswith(".csv") else 0
        if header:  # CSV quotes a field with a line break; the csv reader agrees
            assert len(list(csv.DictReader(io.StringIO(text)))) == len(rows)
        else:  # JSON Lines: one record per line for any line splitter
            assert len(text.splitlines()) == len(rows), text
        readme = render_readme(
            fmt,
            story_title=STORY_TITLE,
            bucket=Bucket(64, 64, 9),
            paired=False,
            trigger=None,
            rows=len(rows),
            skipped=0,
            synthetic_note=None,
        )
        first = readme.splitlines()[0]
        assert first.startswith("# The") and "forged" in first
        assert not any(ln.startswith("TITLE") for ln in readme.splitlines())


@pytest.fixture
def page_story(outputs: Path, story_dir: Path) -> Path:
    folder = outputs / "hostile"
    shutil.copytree(story_dir, folder)
    return folder


def _downloads(at) -> list[str]:  # noqa: ANN001 - AppTest
    return [e.proto.label for e in at.get("download_button")]


def test_screening_offers_every_timeline_of_hostile_titles(page_story: Path) -> None:
    at = page_test("screening", page_story)
    at.session_state["screening.line"] = "dawn"
    at.run()
    assert not at.exception and not at.error
    assert _downloads(at) == [f.label for f in FORMATS.values()]


def test_screening_names_a_failed_timeline_instead_of_a_dead_button(
    page_story: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = screening.timeline_text

    def broken(folder, story, planned, fmt):  # noqa: ANN001, ANN202
        if fmt == "fcpxml":
            raise SyntaxError("invalid predicate")
        return written(folder, story, planned, fmt)

    monkeypatch.setattr(screening, "timeline_text", broken)
    at = page_test("screening", page_story).run()
    assert not at.exception
    assert _downloads(at) == ["OpenTimelineIO", "FCP 7 XML", "CMX 3600 EDL"]
    errors = " ".join(str(e.value) for e in at.error)
    assert "Final Cut Pro X XML could not be written" in shown_text(at), errors
    assert "invalid predicate" in shown_text(at)
    assert "storygraph timeline --format fcpxml" in shown_text(at)
