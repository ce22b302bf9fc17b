"""The whole pipeline in one process: engine + observer + export on one story.

Tiny random-weight encoders score every take the animatic backend makes; the
scores and embeddings land in kg_state.json, survive a reload, and flow into
the exported dataset's metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.numpy import load_file

from engine.dataset import ExportOptions, export_dataset
from engine.dataset.bucket import parse_bucket
from engine.runner import JobRunner
from kg.example import example_story
from kg.paths import resolve_asset
from kg.store import load_story, save_story
from scoring.observer import Observer
from scoring.testing import tiny_clip, tiny_dino


def test_generate_score_reload_export(tmp_path: Path) -> None:
    story_dir = tmp_path / "story"
    story = example_story()
    story.settings.width, story.settings.height, story.settings.fps = 96, 64, 8
    for scene in story.scenes:
        scene.num_frames = 9
    save_story(story, story_dir)

    observer = Observer(tiny_clip(device="cpu"), tiny_dino(device="cpu"))
    runner = JobRunner(story_dir, observer)
    runner.submit([s.id for s in story.scenes], backend="animatic")
    assert runner.wait(300)
    status = runner.status()
    assert sorted(status.finished) == sorted(s.id for s in story.scenes)

    reloaded = load_story(story_dir)
    for scene in reloaded.scenes:
        take = scene.selected
        assert scene.status == "done" and take is not None
        scores = take.scores
        assert scores is not None and scores.clip_score is not None
        assert 0.0 <= scores.subject_consistency <= 1.0
        assert 0.0 <= scores.temporal_flicker <= 1.0
        assert "random weights" in " ".join(scores.encoders.values())
        tensors = load_file(resolve_asset(story_dir, take.files.embeddings))
        assert tensors["clip_image"].shape[0] == tensors["dino_image"].shape[0] == 9
    # a continuous scene has a seam score; the first scene has none
    assert reloaded.scene("meeting").selected.scores.seam_pixel_mae is not None
    assert reloaded.scene("arrival").selected.scores.seam_pixel_mae is None

    out = tmp_path / "dataset"
    export_dataset(
        story_dir,
        out,
        ExportOptions(
            format="ltx2",
            pairing="continuation",
            bucket=parse_bucket("64x64x9"),
            trigger="LHK",
        ),
    )
    meta = json.loads((out / "metadata.json").read_text())
    rows = meta["rows"]
    assert rows and all(r["scores"]["clip_score"] is not None for r in rows)
    lines = (out / "dataset.jsonl").read_text().splitlines()
    assert len(lines) == len(rows)
    assert all(json.loads(line)["caption"].startswith("LHK") for line in lines)
