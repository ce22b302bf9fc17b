"""The manifest formats of the LTX trainers, and the README written beside them.

- ``ltx2``: ``dataset.jsonl`` with ``caption``, ``video`` and, for IC-LoRA
  pairs, ``reference_video``: the column names the LTX-2 trainer's
  ``scripts/process_dataset.py`` detects by convention
  (``Lightricks/LTX-2``, ``packages/ltx-trainer/docs/dataset-preparation.md``,
  "Convention-Based Column Detection"; ``_KNOWN_ROLES`` and
  ``_resolve_columns`` in ``scripts/process_dataset.py``, which reads the
  column names from the first row only: ``detect_dataset_columns`` in
  ``scripts/process_videos.py``, so every row has the same keys). Sound is
  left to the trainer's own extraction from each clip (no ``audio`` column):
  ``MediaDataset.__getitem__`` cuts it to ``num_frames / fps`` of the clip,
  exactly, where an explicit ``audio`` column would be cut to
  ``frames / 25`` s (``preprocess_dataset``, "Phase 3", a fixed 25). In a
  dataset with sound every clip carries a track (a silent take a silent
  one of its length), and continuation pairs name the reference clip's
  sound in ``reference_audio``, the column the trainer encodes into
  ``reference_audio_latents/`` for its ``av2av_ic_lora`` configuration.
- ``ltxv``: ``dataset.csv`` with ``caption``, ``media_path`` and
  ``ref_media_path``, for the older ``Lightricks/LTX-Video-Trainer``
  (``docs/dataset-preparation.md``: ``scripts/preprocess_dataset.py
  --caption-column caption --video-column media_path --reference-column
  ref_media_path``); ``media_path`` and ``ref_media_path`` are also the
  LTX-2 trainer's legacy aliases of ``video`` and ``reference_video``
  (``_LEGACY_ALIASES``), so both trainers read this file.
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
    # the reference clip's sound (.wav), in a dataset with sound
    reference_audio: str | None = None


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
    # None: the trainer reads no reference sound (its pairs are video only).
    reference_audio_column: str | None = None

    def columns(self, paired: bool, audio: bool = False) -> list[str]:
        """The manifest's columns: the same on every row (the LTX-2 trainer
        detects them from the first)."""
        cols = [self.caption_column, self.video_column]
        if paired and self.reference_column:
            cols.append(self.reference_column)
        if paired and audio and self.reference_audio_column:
            cols.append(self.reference_audio_column)
        return cols

    def render_manifest(
        self, rows: Sequence[ManifestRow], paired: bool, audio: bool = False
    ) -> str:
        """The manifest's text (``\\n`` line ends, UTF-8 characters kept).

        ``audio``: the dataset has sound (every clip carries a track).
        """
        records = []
        columns = self.columns(paired, audio)
        for row in rows:
            record = {self.caption_column: row.caption, self.video_column: row.video}
            if paired and self.reference_column:
                assert row.reference, f"paired row without a reference: {row}"
                record[self.reference_column] = row.reference
            if self.reference_audio_column in columns:
                assert row.reference_audio, f"paired row without its sound: {row}"
                record[self.reference_audio_column] = row.reference_audio
            assert list(record) == columns, f"{list(record)} != {columns}"
            records.append(record)
        if self.manifest.endswith(".jsonl"):
            return "".join(json_line(r) + "\n" for r in records)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
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
        "reference_audio",
    ),
    "ltxv": DatasetFormat(
        "ltxv",
        "dataset.csv",
        "caption",
        "media_path",
        "ref_media_path",
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


# The LTX-2 trainer cuts an explicit audio column (here: ``reference_audio``)
# to the bucket's frames over this rate, whatever the clips' own rate
# (packages/ltx-trainer/scripts/process_dataset.py, preprocess_dataset,
# "Phase 3": ``max(f for f, _h, _w in resolution_buckets) / 25.0``).
TRAINER_AUDIO_FPS = 25


def _ltx2_commands(
    fmt: DatasetFormat,
    bucket: Bucket,
    paired: bool,
    audio: bool = False,
    *,
    silent: int = 0,
    fps: int | None = None,
) -> str:
    cmd = (
        "uv run python scripts/process_dataset.py /path/to/this/folder/"
        f"{fmt.manifest} \\\n"
        f'    --resolution-buckets "{bucket.text}" \\\n'
        "    --model-path /path/to/ltx-2-checkpoint.safetensors \\\n"
        "    --text-encoder-path /path/to/gemma-root"
        + ("" if audio else " \\\n    --skip-audio")
    )
    if audio:
        sound = (
            "Run it from `packages/ltx-trainer` of Lightricks/LTX-2. The clips "
            "carry their sound (AAC) and the manifest has no `audio` column: the "
            "trainer extracts each clip's sound itself and cuts it to the clip's "
            "frames at its frame rate (`scripts/process_videos.py`, "
            "`MediaDataset.__getitem__`), the exact length, into "
            "`.precomputed/audio_latents/`."
        )
        if silent:
            sound += (
                f" {silent} of the takes are silent: their clips carry a silent "
                "track of their length, so every sample has sound "
                "(`metadata.json` says which, per row)."
            )
    else:
        sound = (
            "Run it from `packages/ltx-trainer` of Lightricks/LTX-2. "
            "The clips have no audio track, hence `--skip-audio`."
        )
    notes = [sound]
    if paired:
        notes.append(
            f"The `{fmt.reference_column}` column is detected by its name and "
            "encoded into `.precomputed/reference_latents/` (IC-LoRA)."
        )
        if audio and fmt.reference_audio_column:
            notes.append(_reference_sound_note(fmt, bucket, fps))
    notes.append(
        "Every row has the same columns: the trainer detects them from the "
        "first row (`detect_dataset_columns`)."
    )
    notes.append(
        "Then set `data.preprocessed_data_root` of the training config to "
        "`/path/to/this/folder/.precomputed`"
        + (
            " (`configs/av2av_ic_lora.yaml` trains on the pairs with their "
            "sound, `configs/v2v_ic_lora.yaml` on the pictures only)."
            if paired and audio
            else "."
        )
    )
    return _block(cmd, notes)


def _reference_sound_note(fmt: DatasetFormat, bucket: Bucket, fps: int | None) -> str:
    """What the trainer does with the reference sound, with this bucket's figures."""
    text = (
        f"`{fmt.reference_audio_column}` names the reference clip's sound (a "
        "lossless .wav cut like the clip); the trainer encodes it into "
        "`.precomputed/reference_audio_latents/`, the reference sound "
        "`configs/av2av_ic_lora.yaml` reads. It cuts an explicit audio "
        f"column to the bucket's frames / {TRAINER_AUDIO_FPS} s whatever the "
        "clips' rate (`scripts/process_dataset.py`, a fixed 25)"
    )
    if fps is None:
        return text + "."
    clip_s = bucket.frames / fps
    kept_s = min(clip_s, bucket.frames / TRAINER_AUDIO_FPS)
    if kept_s < clip_s:
        return text + (
            f": at {fps} fps it keeps {kept_s:.2f} s of each reference's "
            f"{clip_s:.2f} s (a story at {TRAINER_AUDIO_FPS} fps or more keeps "
            "all of it)."
        )
    return text + f": at {fps} fps it keeps all {clip_s:.2f} s of each reference."


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
    silent: int = 0,
    fps: int | None = None,
) -> str:
    """The dataset folder's README: what it holds and how to preprocess it.

    ``audio``: the clips carry sound (``silent`` of them a silent track);
    ``fps``: the clips' frame rate (what the trainer keeps of the sound).
    """
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
        (
            "- Sound: every clip carries an AAC track cut like its pictures"
            + (f" ({silent} of them silence: silent takes)" if silent else "")
            + "; a lossless .wav of each sits beside its clip."
            if audio
            else "- Sound: none (the takes are silent)."
        ),
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
        lines += [
            "With the LTX-2 trainer instead (it reads `media_path` and "
            "`ref_media_path` as `video` and `reference_video`):",
            "",
            _ltx2_commands(fmt, bucket, paired, audio, silent=silent, fps=None),
        ]
    else:
        lines.append(_ltx2_commands(fmt, bucket, paired, audio, silent=silent, fps=fps))
        if fmt.name == "plain":
            lines += [
                "With the LTX-Video-Trainer instead:",
                "",
                _ltxv_commands(fmt, bucket, paired=False),
            ]
    return "\n".join(lines).rstrip("\n") + "\n"
