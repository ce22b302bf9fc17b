"""Training datasets for the LTX trainers (IC-LoRA pairs or T2V), from a story.

A story is a data engine: every scene's selected take is a captioned clip, and
a scene that continues from another (a ``continuous`` edge) makes an IC-LoRA
pair, the predecessor's clip as the reference and the scene's clip as the
target. `engine.dataset.plan` decides which rows a dataset gets and why each other
scene is left out (failed, stale, not generated, not scored or under a score
threshold, too short for the bucket, no continuous predecessor);
`engine.dataset.write` writes them:

    OUT/videos/<scene>-take<n>.mp4   clips normalised to the bucket (H.264; in a
                                     dataset with sound each with an AAC track
                                     and a lossless .wav beside it)
    OUT/dataset.jsonl | dataset.csv  the trainer's manifest (engine.dataset.formats)
    OUT/metadata.json                story, scene, take, seed, model, backend and
                                     every score per row; the skipped scenes
    OUT/README.md                    the preprocessing command lines

Formats follow the LTX-2 trainer (``Lightricks/LTX-2``,
``packages/ltx-trainer/docs/dataset-preparation.md``: ``caption``, ``video``,
``reference_video``, ``reference_audio``) and the older
``Lightricks/LTX-Video-Trainer`` (``caption``, ``media_path``,
``ref_media_path``, names the LTX-2 trainer also reads); see
`engine.dataset.formats`. Clips are resized and
centre-cropped to one ``WxHxF`` bucket, as their preprocessing does, so a
reference and its target always have the same shape.

Re-exporting into the same folder is idempotent: names and encodings are
deterministic, a clip whose source and bucket are unchanged (content hash) is
not encoded again, and files of a previous export that no longer belong are
removed. A dataset made of animatic or random-weight takes says so in its
metadata and README.
"""

from engine.dataset.bucket import parse_bucket
from engine.dataset.options import (
    CLIPS_DIR,
    GENERATOR,
    METADATA_FILE,
    PAIRINGS,
    README_FILE,
    ClipRef,
    EmptyDatasetError,
    ExportError,
    ExportOptions,
    ExportPlan,
    ExportSummary,
    PlannedRow,
    Skip,
)
from engine.dataset.plan import default_bucket, plan_export
from engine.dataset.write import export_dataset, zip_dataset

__all__ = [
    "PAIRINGS",
    "GENERATOR",
    "METADATA_FILE",
    "README_FILE",
    "CLIPS_DIR",
    "ExportError",
    "EmptyDatasetError",
    "ExportOptions",
    "ClipRef",
    "PlannedRow",
    "Skip",
    "ExportPlan",
    "ExportSummary",
    "default_bucket",
    "plan_export",
    "export_dataset",
    "zip_dataset",
    "parse_bucket",
]
