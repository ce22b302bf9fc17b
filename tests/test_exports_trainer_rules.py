"""The LTX trainers' own reading rules, run on our manifests.

The trainers need their model stacks to import (the LTX-2 trainer's
``scripts/process_dataset.py`` imports ``ltx_trainer.model_loader`` and
torchaudio at the top), so the rules that decide what they read are
reimplemented here from their source (``Lightricks/LTX-2`` at 400fd31,
``packages/ltx-trainer/scripts``):

- ``process_videos.py``, ``detect_dataset_columns``: the column names of a
  ``.jsonl`` are the keys of its FIRST row.
- ``process_dataset.py``, ``_resolve_columns`` with ``_KNOWN_ROLES`` and
  ``_LEGACY_ALIASES``: which column plays which role.
- ``process_videos.py``, ``_load_paths_from_dataset``: ``entry[column]`` on
  every row (a row without the column is a ``KeyError``).
- ``process_dataset.py``, ``preprocess_dataset``: sound is extracted from
  the clips when no ``audio`` column exists (``auto_audio``); an explicit
  audio column (``audio``, ``reference_audio``) is cut to
  ``max(bucket frames) / 25.0`` seconds ("Phase 3").
- ``process_videos.py``, ``MediaDataset.__getitem__`` and
  ``_extract_audio``: the extracted sound is cut (or padded) to
  ``num_frames / fps`` of the clip.

The story is the example generated on the animatic with sound on some takes
only (a story with partly silent takes).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from conftest import generate_small_example

from engine.dataset import ExportOptions, export_dataset
from engine.sound import read_wav, write_wav
from engine.video import video_info
from kg.store import update_story

# --- the LTX-2 trainer's rules (see the module docstring for the source) ----
KNOWN_ROLES = {
    "video", "audio", "reference_video", "reference_audio",
    "video_mask", "audio_mask", "caption",
}  # fmt: skip
LEGACY_ALIASES = {"media_path": "video", "ref_media_path": "reference_video"}
TRAINER_AUDIO_FPS = 25.0


def detect_dataset_columns(path: Path) -> set[str]:
    """process_videos.py: first row's keys (.jsonl), the header (.csv)."""
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            return set(next(csv.reader(f)))
    with open(path, encoding="utf-8") as f:
        return set(json.loads(f.readline()).keys())


def resolve_columns(columns: set[str]) -> dict[str, str]:
    """process_dataset.py ``_resolve_columns`` (no overrides)."""
    roles = {}
    for col in columns:
        role = LEGACY_ALIASES.get(col, col)
        if role in KNOWN_ROLES:
            roles[role] = col
    return roles


def load_paths(path: Path, column: str) -> list[Path]:
    """process_videos.py ``_load_paths_from_dataset``."""
    root = path.parent
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            return [root / row[column].strip() for row in csv.DictReader(f)]
    with open(path, encoding="utf-8") as f:
        return [root / json.loads(line)[column].strip() for line in f]


def decode_sound(path: Path, rate: int) -> np.ndarray:
    """The clip's first audio stream as mono samples (torchaudio.load's part)."""
    done = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-f",
            "s16le",
            "-",
        ],  # fmt: skip
        capture_output=True,
        check=True,
    )
    return np.frombuffer(done.stdout, "<i2").astype(np.float32) / 32767.0


def extracted_sound(clip: Path, rate: int) -> tuple[np.ndarray, bool]:
    """``_extract_audio``: the sound cut to num_frames / fps, and whether the
    trainer had to pad it (its "Padded audio" warning)."""
    info = video_info(clip)
    target = int(info["frames"] / info["fps"] * rate)
    audio = decode_sound(clip, rate)
    return np.pad(audio, (0, max(0, target - len(audio))))[:target], len(audio) < target


# --- the story -----------------------------------------------------------------
RATE = 16_000
SOUNDED = ("arrival", "climb", "lamp-room")  # the others are silent


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    story_dir = generate_small_example(tmp_path_factory.mktemp("base") / "story")

    def add_sound(s) -> None:  # noqa: ANN001 - Story
        for i, sid in enumerate(SOUNDED):
            take = s.scene(sid).selected
            seconds = take.params.num_frames / take.params.fps
            t = np.arange(round(seconds * RATE)) / RATE
            rel = f"scenes/{sid}/take-{take.index}.wav"
            write_wav(
                story_dir / rel, 0.5 * np.sin(2 * np.pi * 220 * (i + 1) * t)[None], RATE
            )
            take.files.audio = rel

    update_story(story_dir, add_sound)
    return story_dir


@pytest.fixture
def story(generated: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(generated, tmp_path / "story"))


def test_ltx2_pairs_with_partly_silent_takes_read_as_the_trainer_reads_them(
    story: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    export_dataset(story, out, ExportOptions(format="ltx2", pairing="continuation"))
    manifest = out / "dataset.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(rows) >= 3
    # the same keys on every row: what the first row says is what all have
    assert all(list(r) == list(rows[0]) for r in rows)
    roles = resolve_columns(detect_dataset_columns(manifest))
    assert roles == {
        "caption": "caption",
        "video": "video",
        "reference_video": "reference_video",
        "reference_audio": "reference_audio",
    }
    for column in roles.values():
        if column != "caption":
            assert all(p.is_file() for p in load_paths(manifest, column))

    # no explicit audio column: the trainer extracts each clip's sound itself
    auto_audio = "audio" not in roles
    assert auto_audio
    meta = json.loads((out / "metadata.json").read_text())
    bucket = meta["bucket"]["frames"]
    kinds = set()
    for path, row_meta in zip(load_paths(manifest, "video"), meta["rows"], strict=True):
        sound, padded = extracted_sound(path, RATE)
        assert not padded, f"{path.name}: the trainer would pad its sound"
        info = video_info(path)
        assert len(sound) == int(info["frames"] / info["fps"] * RATE)
        # the take's own sound where it has one, silence of its length where not
        kinds.add(row_meta["sound"])
        loud = float(np.abs(sound).max())
        if row_meta["scene"] in SOUNDED:
            assert row_meta["sound"] == "take" and loud > 0.3
        else:
            assert row_meta["sound"] == "silence" and loud < 1e-3
    assert kinds == {"take", "silence"}

    # the reference sound: the reference clip's, cut like it; the trainer keeps
    # min(its length, bucket frames / 25) of it
    fps = meta["rows"][0]["fps"]
    for ref_audio, ref_video in zip(
        load_paths(manifest, "reference_audio"),
        load_paths(manifest, "reference_video"),
        strict=True,
    ):
        samples, rate = read_wav(ref_audio)
        assert samples.shape[1] == round(bucket / fps * rate)
        assert ref_audio.with_suffix(".mp4") == ref_video
        kept = min(samples.shape[1] / rate, bucket / TRAINER_AUDIO_FPS)
        assert kept == pytest.approx(min(bucket / fps, bucket / 25.0), abs=1e-3)

    readme = (out / "README.md").read_text()
    command = readme.split("```bash\n")[1].split("```")[0]
    assert "--skip-audio" not in command
    assert "`reference_audio`" in readme and "av2av_ic_lora" in readme
    assert "`audio` column" in readme  # says there is none, and why
    silent_refs = {
        r["reference_video"] for r in meta["rows"] if r["reference_sound"] == "silence"
    }
    silent = len(
        {r["video"] for r in meta["rows"] if r["sound"] == "silence"} | silent_refs
    )
    assert f"{silent} of the takes are silent" in readme


def test_a_story_without_sound_skips_audio_and_has_no_sound_columns(
    generated: Path, tmp_path: Path
) -> None:
    story = Path(shutil.copytree(generated, tmp_path / "story"))

    def silence(s) -> None:  # noqa: ANN001 - Story
        for scene in s.scenes:
            scene.selected.files.audio = None

    update_story(story, silence)
    out = tmp_path / "ds"
    export_dataset(story, out, ExportOptions(format="ltx2", pairing="continuation"))
    manifest = out / "dataset.jsonl"
    roles = resolve_columns(detect_dataset_columns(manifest))
    assert set(roles) == {"caption", "video", "reference_video"}
    assert "--skip-audio" in (out / "README.md").read_text()
    assert not list((out / "videos").glob("*.wav"))


@pytest.mark.parametrize("fmt", ["plain", "ltx2"])
def test_plain_and_unpaired_manifests_have_no_sound_column_and_say_so(
    story: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / fmt
    export_dataset(story, out, ExportOptions(format=fmt, pairing="none"))
    manifest = out / "dataset.jsonl"
    assert resolve_columns(detect_dataset_columns(manifest)) == {
        "caption": "caption",
        "video": "video",
    }
    readme = (out / "README.md").read_text()
    # the README describes the manifest it sits beside: columns caption, video
    assert "columns `caption`, `video`, for" in readme
    assert "`audio` column names" not in readme


def test_ltxv_csv_is_read_by_both_trainers(story: Path, tmp_path: Path) -> None:
    out = tmp_path / "ltxv"
    export_dataset(story, out, ExportOptions(format="ltxv", pairing="continuation"))
    manifest = out / "dataset.csv"
    # LTX-2: the legacy aliases make media_path/ref_media_path video/reference
    roles = resolve_columns(detect_dataset_columns(manifest))
    assert roles == {
        "caption": "caption",
        "video": "media_path",
        "reference_video": "ref_media_path",
    }
    # LTX-Video-Trainer: the README's command names the same columns
    readme = (out / "README.md").read_text()
    assert '--video-column "media_path"' in readme
    assert '--reference-column "ref_media_path"' in readme
    for column in ("media_path", "ref_media_path"):
        assert all(p.is_file() for p in load_paths(manifest, column))
