"""Dataset export: self-consistency, filters, skips, formats, idempotent re-export."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import generate_small_example

from engine.dataset import (
    EmptyDatasetError,
    ExportError,
    ExportOptions,
    export_dataset,
    plan_export,
    zip_dataset,
)
from engine.dataset.bucket import Bucket, BucketError, fit_to_bucket, parse_bucket
from engine.generate import generate_scene
from engine.video import read_video
from kg.schema import Scores, Take
from kg.store import load_story, update_story

BUCKET = Bucket(64, 64, 9)
TRIGGER = "SGXSTYLE"
# example story: arrival -> meeting -> climb -> lamp-room, climb -cut-> cliff-edge
# -> dawn; every edge but climb -> cliff-edge is continuous.
SCENES = ["arrival", "meeting", "climb", "lamp-room", "cliff-edge", "dawn"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_small_example(tmp_path_factory.mktemp("base") / "story")


@pytest.fixture
def story(generated: Path, tmp_path: Path) -> Path:
    """A private copy of the generated story."""
    return Path(shutil.copytree(generated, tmp_path / "story"))


def _scores(clip: float | None, subject: float | None = 0.95, **kw) -> Scores:
    return Scores(clip_score=clip, subject_consistency=subject, **kw)


def _mess_up(story: Path) -> None:
    """Scores on some takes, none on others; one scene stale, one failed."""

    def mutate(s) -> None:  # noqa: ANN001 - Story
        s.scene("arrival").selected.scores = _scores(0.31)
        s.scene("meeting").selected.scores = _scores(0.12)
        s.scene("climb").selected.scores = None  # observer was unavailable
        s.scene("lamp-room").selected.scores = _scores(
            None, unavailable={"clip_score": "no CLIP weights; fetch them"}
        )
        s.scene("cliff-edge").status = "stale"
        dawn = s.scene("dawn")
        params = dawn.selected.params.model_copy()
        dawn.takes.append(
            Take(index=2, status="failed", params=params, error="out of memory")
        )
        dawn.status = "failed"

    update_story(story, mutate)


def _files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _manifest(out: Path, fmt: str) -> list[dict[str, str]]:
    if fmt == "ltxv":
        with open(out / "dataset.csv", newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    lines = (out / "dataset.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


COLUMNS = {
    "ltx2": ("video", "reference_video"),
    "ltxv": ("media_path", "ref_media_path"),
    "plain": ("video", None),
}


def _check_consistent(out: Path, fmt: str, bucket: Bucket, trigger: str | None):
    """Every referenced file exists and decodes to the bucket; returns the rows."""
    rows = _manifest(out, fmt)
    video_col, ref_col = COLUMNS[fmt]
    meta = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    assert len(meta["rows"]) == len(rows) > 0
    referenced = set()
    for row, row_meta in zip(rows, meta["rows"], strict=True):
        assert row["caption"].strip()
        if trigger:
            assert row["caption"].startswith(trigger + " ")
        assert row_meta["caption"] == row["caption"]
        assert row_meta["video"] == row[video_col]
        shapes = []
        for col in (video_col, ref_col):
            if col is None or col not in row:
                continue
            path = out / row[col]
            assert path.is_file(), f"{row[col]} is referenced but missing"
            referenced.add(row[col])
            frames = read_video(path)
            assert frames.shape == (bucket.frames, bucket.height, bucket.width, 3)
            shapes.append(frames.shape)
        assert len(set(shapes)) == 1  # reference and target agree
        for key in ("story", "scene", "take", "seed", "model", "backend", "scores"):
            assert key in row_meta
    # nothing on disk that no row uses
    on_disk = {p.relative_to(out).as_posix() for p in (out / "videos").iterdir()}
    assert on_disk == referenced
    return rows, meta


# Bucket -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("100x64x9", "width 100 is not a multiple of 32; use 96 or 128"),
        ("64x64x10", "10 frames is not 8k+1; use 9 or 17"),
        ("64x64", "write width x height x frames"),
        ("16x64x9", "width 16 is not a multiple of 32; use 32"),
    ],
)
def test_bad_buckets_say_what_to_use(text: str, fix: str) -> None:
    with pytest.raises(BucketError, match="--bucket") as err:
        parse_bucket(text)
    assert fix in str(err.value)


def test_fit_to_bucket_centre_crops_and_keeps_the_first_frames() -> None:
    frames = np.zeros((12, 64, 96, 3), np.uint8)
    frames[:, :, :16] = (255, 0, 0)  # left margin, cropped away
    frames[:, :, 80:] = (0, 0, 255)  # right margin, cropped away
    frames[:, :, 16:80, 1] = np.arange(12, dtype=np.uint8)[:, None, None] * 10
    out = fit_to_bucket(frames, Bucket(64, 64, 9))  # height fits: crop only
    assert out.shape == (9, 64, 64, 3)
    assert out[..., 0].max() == 0 and out[..., 2].max() == 0
    assert [int(f[..., 1].mean()) for f in out] == [i * 10 for i in range(9)]
    small = fit_to_bucket(frames, Bucket(32, 32, 9))  # resized 48x32, then cropped
    assert small.shape == (9, 32, 32, 3)
    assert small[:, :, 4:-4, 0].max() == 0  # the margins stay out
    with pytest.raises(ValueError, match="12 frames, fewer than the bucket's 17"):
        fit_to_bucket(frames, Bucket(32, 32, 17))


# Export -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["ltx2", "ltxv"])
def test_paired_export_is_self_consistent_and_reexport_identical(
    story: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "ds"
    options = ExportOptions(format=fmt, trigger=TRIGGER, bucket=BUCKET)
    summary = export_dataset(story, out, options)
    rows, meta = _check_consistent(out, fmt, BUCKET, TRIGGER)
    video_col, ref_col = COLUMNS[fmt]
    pairs = {(r[ref_col], r[video_col]) for r in rows}
    assert pairs == {
        ("videos/arrival-take1.mp4", "videos/meeting-take1.mp4"),
        ("videos/meeting-take1.mp4", "videos/climb-take1.mp4"),
        ("videos/climb-take1.mp4", "videos/lamp-room-take1.mp4"),
        ("videos/cliff-edge-take1.mp4", "videos/dawn-take1.mp4"),
    }
    assert summary.skip_counts() == {"no continuous predecessor": 2}
    assert meta["pairing"] == "continuation" and meta["bucket"]["text"] == "64x64x9"
    assert summary.clips_written == 6

    before = _files(out)
    again = export_dataset(story, out, options)
    assert again.clips_written == 0 and again.clips_reused == 6
    assert _files(out) == before


def test_filters_and_skips_are_applied_as_reported(story: Path, tmp_path: Path) -> None:
    _mess_up(story)
    options = ExportOptions(
        format="ltx2", pairing="none", min_clip_score=0.2, bucket=BUCKET
    )
    plan = plan_export(story, options)
    assert [r.target.scene_id for r in plan.rows] == ["arrival"]
    reasons = {s.scene_id: s.reason for s in plan.skipped}
    assert reasons == {
        "meeting": "below threshold",
        "climb": "not scored",
        "lamp-room": "not scored",
        "cliff-edge": "stale",
        "dawn": "failed",
    }
    details = {s.scene_id: s.detail for s in plan.skipped}
    assert "no CLIP weights" in details["lamp-room"]
    assert "did not score" in details["climb"]
    assert "0.12 < 0.2" in details["meeting"]
    assert "out of memory" in details["dawn"]

    summary = export_dataset(story, tmp_path / "ds", options, plan=plan)
    rows, meta = _check_consistent(tmp_path / "ds", "ltx2", BUCKET, None)
    assert [m["scene"] for m in meta["rows"]] == ["arrival"]
    assert (
        meta["skip_counts"]
        == summary.skip_counts()
        == {
            "below threshold": 1,
            "failed": 1,
            "not scored": 2,
            "stale": 1,
        }
    )
    assert meta["rows"][0]["scores"]["clip_score"] == pytest.approx(0.31)


def test_without_thresholds_unscored_takes_pass_and_pairs_need_a_usable_reference(
    story: Path, tmp_path: Path
) -> None:
    _mess_up(story)
    plan = plan_export(story, ExportOptions(format="ltx2", bucket=BUCKET))
    assert [(r.reference.scene_id, r.target.scene_id) for r in plan.rows] == [
        ("arrival", "meeting"),
        ("meeting", "climb"),
        ("climb", "lamp-room"),
    ]
    reasons = {s.scene_id: s.reason for s in plan.skipped}
    assert reasons == {
        "arrival": "no continuous predecessor",
        "cliff-edge": "stale",
        "dawn": "failed",
    }
    # a threshold the reference fails drops the pair that needs it
    update_story(
        story, lambda s: setattr(s.scene("arrival").selected, "scores", _scores(0.05))
    )
    plan = plan_export(
        story, ExportOptions(format="ltx2", min_clip_score=0.1, bucket=BUCKET)
    )
    reasons = {s.scene_id: s.reason for s in plan.skipped}
    assert plan.rows == []
    assert reasons["arrival"] == "below threshold"
    assert reasons["meeting"] == "reference skipped"  # meeting itself passes
    assert "'arrival'" in next(
        s.detail for s in plan.skipped if s.scene_id == "meeting"
    )


def test_empty_dataset_is_refused_with_the_reasons(story: Path, tmp_path: Path) -> None:
    options = ExportOptions(format="plain", min_clip_score=0.2, bucket=BUCKET)
    with pytest.raises(EmptyDatasetError, match="6 not scored") as err:
        export_dataset(story, tmp_path / "ds", options)
    assert len(err.value.plan.skipped) == 6
    assert not (tmp_path / "ds").exists()


def test_clips_shorter_than_the_bucket_are_skipped_not_padded(story: Path) -> None:
    plan = plan_export(story, ExportOptions(format="plain", bucket=Bucket(64, 64, 25)))
    assert not plan.rows
    assert {s.reason for s in plan.skipped} == {"too short"}
    # the hint names the frame count that fits (animatic takes are 8k+1: 17)
    assert "17 frames < the bucket's 25" in plan.skipped[0].detail
    assert "--bucket 64x64x17 fits it" in plan.skipped[0].detail
    with pytest.raises(EmptyDatasetError, match="--bucket 64x64x17 fits all"):
        export_dataset(
            story, story / "dataset" / "x", ExportOptions(bucket=Bucket(64, 64, 25))
        )


def test_plain_format_has_no_reference_and_refuses_pairs(
    story: Path, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match="--pairing none"):
        plan_export(story, ExportOptions(format="plain", pairing="continuation"))
    out = tmp_path / "ds"
    export_dataset(story, out, ExportOptions(format="plain", bucket=BUCKET))
    rows, _ = _check_consistent(out, "plain", BUCKET, None)
    assert len(rows) == 6 and all(set(r) == {"caption", "video"} for r in rows)


def test_default_bucket_follows_the_story_and_its_shortest_clip(story: Path) -> None:
    plan = plan_export(story, ExportOptions(format="plain"))
    # the animatic makes the LTX models' 8k+1 counts: 2 s at 8 fps is 17
    assert plan.bucket == Bucket(96, 64, 17)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ExportOptions(format="webdataset"), "--format 'webdataset'"),
        (ExportOptions(pairing="sideways"), "--pairing 'sideways'"),
        (ExportOptions(trigger="  "), "--trigger is blank"),
        (ExportOptions(min_clip_score=float("nan")), "--min-clip-score"),
    ],
)
def test_bad_options_name_the_option(options: ExportOptions, message: str) -> None:
    with pytest.raises(ExportError, match=message.replace("(", r"\(")):
        options.check()


def test_reexport_removes_what_no_longer_belongs(story: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    export_dataset(story, out, ExportOptions(format="ltxv", bucket=BUCKET))
    assert (out / "dataset.csv").is_file()
    # regenerate a scene: a new take 2 replaces take 1 in the dataset
    take = generate_scene(story, "lamp-room", backend="animatic", force=True)
    assert take.index == 2
    summary = export_dataset(story, out, ExportOptions(format="ltx2", bucket=BUCKET))
    assert not (out / "dataset.csv").exists()
    assert "dataset.csv" in summary.removed
    assert "videos/lamp-room-take1.mp4" in summary.removed
    assert summary.clips_written == 1 and summary.clips_reused == 5
    rows, _ = _check_consistent(out, "ltx2", BUCKET, None)
    assert {"video": "videos/lamp-room-take2.mp4"}.items() <= rows[2].items()


def test_a_changed_bucket_reencodes_every_clip(story: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    export_dataset(story, out, ExportOptions(format="plain", bucket=BUCKET))
    small = Bucket(32, 32, 9)
    summary = export_dataset(story, out, ExportOptions(format="plain", bucket=small))
    assert summary.clips_written == 6 and summary.clips_reused == 0
    _check_consistent(out, "plain", small, None)


def test_foreign_or_story_folders_are_refused(story: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    options = ExportOptions(format="plain", bucket=BUCKET)
    with pytest.raises(ExportError, match="not empty"):
        export_dataset(story, foreign, options)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ExportError, match="is a story folder"):
        export_dataset(story, story, options)


def test_synthetic_sources_are_labelled(story: Path, tmp_path: Path) -> None:
    def tiny_random(s) -> None:  # noqa: ANN001 - Story
        take = s.scene("dawn").selected
        take.params = take.params.model_copy(
            update={"backend": "ltx", "random_weights": True}
        )

    update_story(story, tiny_random)
    out = tmp_path / "ds"
    export_dataset(story, out, ExportOptions(format="plain", bucket=BUCKET))
    meta = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    assert meta["source_kinds"] == {"animatic": 5, "random-weights": 1}
    assert "animatic" in meta["synthetic"] and "random-weight" in meta["synthetic"]
    dawn = next(r for r in meta["rows"] if r["scene"] == "dawn")
    assert dawn["random_weights"] is True and dawn["source_kind"] == "random-weights"
    assert "Warning" in (out / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("ltx2", ["scripts/process_dataset.py", "dataset.jsonl", '"64x64x9"']),
        (
            "ltxv",
            [
                "scripts/preprocess_dataset.py",
                "dataset.csv",
                '--reference-column "ref_media_path"',
                '--video-column "media_path"',
            ],
        ),
    ],
)
def test_readme_has_the_trainers_preprocessing_command(
    story: Path, tmp_path: Path, fmt: str, expected: list[str]
) -> None:
    out = tmp_path / "ds"
    export_dataset(story, out, ExportOptions(format=fmt, bucket=BUCKET, trigger="TOK"))
    readme = (out / "README.md").read_text(encoding="utf-8")
    for text in expected:
        assert text in readme
    assert "--resolution-buckets" in readme and "`TOK`" in readme


def test_zip_holds_the_dataset_and_is_deterministic(
    story: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    export_dataset(story, out, ExportOptions(format="ltx2", bucket=BUCKET))
    data = zip_dataset(out)
    assert data == zip_dataset(out)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert {"ds/dataset.jsonl", "ds/metadata.json", "ds/README.md"} <= names
        assert (
            zf.read("ds/videos/meeting-take1.mp4")
            == (out / "videos/meeting-take1.mp4").read_bytes()
        )


def test_export_leaves_the_story_untouched(story: Path, tmp_path: Path) -> None:
    before = load_story(story).model_dump()
    export_dataset(story, tmp_path / "ds", ExportOptions(bucket=BUCKET))
    assert load_story(story).model_dump() == before
