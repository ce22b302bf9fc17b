"""The manifest formats of the LTX trainers, and the README written beside them.

- ``ltx2``: ``dataset.jsonl`` with ``caption``, ``video`` and, for IC-LoRA
  pairs, ``reference_video``: the column names the LTX-2 trainer's
  ``scripts/process_dataset.py`` detects by convention
  (``Lightricks/LTX-2``, ``packages/ltx-trainer/docs/dataset-preparation.md``,
  "Convention-Based Column Detection" and "IC-LoRA Reference Video
  Preprocessing"); takes with sound (ltx2) also fill ``audio``, the column
  that names an explicit audio file (a lossless .wav beside the clip) and
  overrides the trainer's extraction from the video.
- ``ltxv``: ``dataset.csv`` with ``caption``, ``media_path`` and
  ``reference_path``, the older ``Lightricks/LTX-Video-Trainer``
  (``docs/dataset-preparation.md``: ``scripts/preprocess_dataset.py
  --caption-column caption --video-column media_path --reference-column
  reference_path``).
- ``plain``: ``dataset.jsonl`` with ``caption`` and ``video`` only, for a
  text-to-video LoRA with either trainer.

Paths in a manifest are relative to the manifest's folder. Writing is
deterministic (same rows, same bytes) so a re-export changes nothing. Story
text goes through `engine.export_text`: a JSON Lines record stays one line
for every reader, and the README's title line stays one line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from engine.dataset.bucket import Bucket
from engine.export_text import json_line, one_line

__all__ = ["FORMATS", "DatasetFormat", "ManifestRow", "get_format", "render_readme"]


@dataclass(frozen=True)
class ManifestRow:
    """One training sample: a caption, a target clip, an optional reference."""

    caption: str
    video: str
    reference: str | None = None
    audio: str | None = None  # the sample's .wav (takes with sound)


@dataclass(frozen=True)
class DatasetFormat:
    """Where a trainer reads captions, targets and references from."""

    name: str
    manifest: str
    caption_column: str
    video_column: str
    # None: the format has no reference column (text-to-video only).
    reference_column: str | None
    trainer: str
    # None: the trainer reads no separate audio file.
    audio_column: str | None = None

    def columns(self, paired: bool, audio: bool = False) -> list[str]:
        cols = [self.caption_column, self.video_column]
        if paired and self.reference_column:
            cols.append(self.reference_column)
        if audio and self.audio_column:
            cols.append(self.audio_column)
        return cols

    def render_manifest(self, rows: Sequence[ManifestRow], paired: bool) -> str:
        """The manifest's text (``\\n`` line ends, UTF-8 characters kept)."""
        records = []
        for row in rows:
            record = {self.caption_column: row.caption, self.video_column: row.video}
            if paired and self.reference_column:
                assert row.reference, f"paired row without a reference: {row}"
                record[self.reference_column] = row.reference
            if self.audio_column and row.audio:
                record[self.audio_column] = row.audio
            records.append(record)
        if self.manifest.endswith(".jsonl"):
            return "".join(json_line(r) + "\n" for r in records)
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=self.columns(paired), lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(records)
        return buf.getvalue()


FORMATS: dict[str, DatasetFormat] = {
    "ltx2": DatasetFormat(
        "ltx2",
        "dataset.jsonl",
        "caption",
        "video",
        "reference_video",
        "LTX-2 trainer (Lightricks/LTX-2, packages/ltx-trainer)",
        "audio",
    ),
    "ltxv": DatasetFormat(
        "ltxv",
        "dataset.csv",
        "caption",
        "media_path",
        "reference_path",
        "LTX-Video-Trainer (Lightricks/LTX-Video-Trainer)",
    ),
    "plain": DatasetFormat(
        "plain",
        "dataset.jsonl",
        "caption",
        "video",
        None,
        "any caption + video trainer (text-to-video LoRA)",
    ),
}


def get_format(name: str) -> DatasetFormat:
    """The format called ``name``; ``ValueError`` lists the choices."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(
            f"--format {name!r} is not a dataset format; choose one of "
            f"{', '.join(FORMATS)}"
        ) from None


def _ltx2_commands(
    fmt: DatasetFormat, bucket: Bucket, paired: bool, audio: bool = False
) -> str:
    cmd = (
        "uv run python scripts/process_dataset.py /path/to/this/folder/"
        f"{fmt.manifest} \\\n"
        f'    --resolution-buckets "{bucket.text}" \\\n'
        "    --model-path /path/to/ltx-2-checkpoint.safetensors \\\n"
        "    --text-encoder-path /path/to/gemma-root"
        + ("" if audio else " \\\n    --skip-audio")
    )
    notes = [
        "Run it from `packages/ltx-trainer` of Lightricks/LTX-2. "
        + (
            "The clips carry their sound (AAC), and the `audio` column names each "
            "sample's lossless .wav, cut like its clip; the trainer encodes it "
            "into `.precomputed/audio_latents/`."
            if audio
            else "The clips have no audio track, hence `--skip-audio`."
        ),
    ]
    if paired:
        notes.append(
            "The `reference_video` column is detected by its name and encoded "
            "into `.precomputed/reference_latents/` (IC-LoRA). With an older "
            "ltx-trainer whose `process_dataset.py` has no column detection, "
            "add `--video-column video --reference-column reference_video` "
            "(and drop `--skip-audio`)."
        )
    else:
        notes.append(
            "With an older ltx-trainer whose `process_dataset.py` has no column "
            "detection, add `--video-column video` (and drop `--skip-audio`)."
        )
    notes.append(
        "Then set `data.preprocessed_data_root` of the training config to "
        "`/path/to/this/folder/.precomputed`."
    )
    return _block(cmd, notes)


def _ltxv_commands(fmt: DatasetFormat, bucket: Bucket, paired: bool) -> str:
    cmd = (
        "python scripts/preprocess_dataset.py /path/to/this/folder/"
        f"{fmt.manifest} \\\n"
        f'    --resolution-buckets "{bucket.text}" \\\n'
        f'    --caption-column "{fmt.caption_column}" \\\n'
        f'    --video-column "{fmt.video_column}"'
    )
    if paired:
        cmd += f' \\\n    --reference-column "{fmt.reference_column}"'
    notes = [
        "Run it from a checkout of Lightricks/LTX-Video-Trainer; it writes "
        "`.precomputed/latents`, `conditions`"
        + (" and `reference_latents` (IC-LoRA)." if paired else "."),
        "That trainer uses a single resolution bucket; this dataset has one.",
    ]
    return _block(cmd, notes)


def _block(cmd: str, notes: list[str]) -> str:
    return "```bash\n" + cmd + "\n```\n\n" + "".join(f"- {n}\n" for n in notes)


def render_readme(
    fmt: DatasetFormat,
    *,
    story_title: str,
    bucket: Bucket,
    paired: bool,
    trigger: str | None,
    rows: int,
    skipped: int,
    synthetic_note: str | None,
    audio: bool = False,
) -> str:
    """The dataset folder's README: what it holds and how to preprocess it."""
    lines = [f"# {one_line(story_title)}: training dataset ({fmt.name})", ""]
    if synthetic_note:
        lines += [f"> **Warning:** {synthetic_note}", ""]
    pairing = (
        "IC-LoRA pairs: the reference is the previous scene's clip on a "
        "continuous edge, the target the scene that continues from it"
        if paired
        else "text-to-video samples (no reference clips)"
    )
    lines += [
        f"Exported by `storygraph export`: {rows} samples, {skipped} scenes "
        "skipped (see `metadata.json` for every row's story, scene, take, seed, "
        "model, backend and scores, and why each skipped scene was left out).",
        "",
        f"- Manifest: `{fmt.manifest}`, columns "
        + ", ".join(f"`{c}`" for c in fmt.columns(paired, audio))
        + f", for the {fmt.trainer}.",
        f"- Samples: {pairing}.",
        f"- Clips: H.264 mp4, {bucket.width}x{bucket.height}, {bucket.frames} "
        "frames each (resized, centre-cropped, first frames kept), so the "
        f'bucket below matches them exactly: "{bucket.text}".',
    ]
    if trigger:
        lines.append(
            f"- Every caption already starts with the trigger `{trigger}`: do not "
            "pass `--lora-trigger`/`--id-token` as well, or it is added twice."
        )
    else:
        lines.append(
            "- The captions carry no trigger word; add one with `--lora-trigger` "
            "(LTX-2) or `--id-token` (LTX-Video-Trainer) if you want one."
        )
    lines += ["", "## Preprocessing", ""]
    if fmt.name == "ltxv":
        lines.append(_ltxv_commands(fmt, bucket, paired))
    else:
        lines.append(_ltx2_commands(fmt, bucket, paired, audio))
        if fmt.name == "plain":
            lines += [
                "With the LTX-Video-Trainer instead:",
                "",
                _ltxv_commands(fmt, bucket, paired=False),
            ]
    return "\n".join(lines).rstrip("\n") + "\n"
