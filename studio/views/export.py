"""Export page: the open story as a training dataset for the LTX trainers.

The same options as ``storygraph export`` (format, pairing, score thresholds,
trigger, bucket); a preview of the rows and of the scenes left out (and why)
before anything is written; a progress bar while clips are encoded; the
dataset as a zip download. Datasets live in the story folder under
``dataset/<name>``. Formats: ``dataset.jsonl`` for the LTX-2 trainer
(``caption``, ``video``, ``reference_video``), ``dataset.csv`` for the
LTX-Video-Trainer (``caption``, ``media_path``, ``ref_media_path``), or plain
caption + video (see `engine.dataset`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from kg.layout import DATASETS_DIR, dataset_dir
from studio import services
from studio.literal import markdown_literal as md
from studio.session import story_page

if TYPE_CHECKING:
    from studio.datasets import ExportOptions, ExportPlan

__all__ = ["export_page", "RESULT_KEY", "DATASETS_DIR"]

RESULT_KEY = "export.result"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FORMAT_LABELS = {
    "ltx2": "ltx2: LTX-2 trainer (dataset.jsonl)",
    "ltxv": "ltxv: LTX-Video-Trainer (dataset.csv)",
    "plain": "plain: caption + video (text-to-video)",
}


def _options() -> tuple[dict[str, Any], str]:
    """The option widgets; returns (ExportOptions fields, dataset name)."""
    left, right = st.columns(2)
    fmt = left.selectbox(
        "Format",
        list(_FORMAT_LABELS),
        format_func=_FORMAT_LABELS.get,
        key="export.format",
    )
    pairings = ["continuation", "none"] if fmt != "plain" else ["none"]
    pairing = right.selectbox(
        "Pairing",
        pairings,
        key=f"export.pairing.{fmt}",
        help="continuation: the reference is the previous scene's clip on a "
        "continuous edge, the target the scene's clip (IC-LoRA).",
    )
    a, b = st.columns(2)
    min_clip = a.number_input(
        "Minimum clip_score",
        min_value=0.0,
        max_value=2.5,
        value=None,
        step=0.01,
        key="export.min_clip_score",
        help="Blank: no threshold. Takes without this score are skipped when set.",
    )
    min_subject = b.number_input(
        "Minimum subject_consistency",
        min_value=0.0,
        max_value=1.0,
        value=None,
        step=0.01,
        key="export.min_subject_consistency",
        help="Blank: no threshold. Takes without this score are skipped when set.",
    )
    c, d, e = st.columns(3)
    trigger = c.text_input(
        "Trigger token", key="export.trigger", help="Prepended to every caption."
    )
    bucket = d.text_input(
        "Bucket (WxHxF)",
        key="export.bucket",
        placeholder="automatic",
        help="Width and height multiples of 32, frames 8k+1, e.g. 768x512x49. "
        "Blank: the story's size and its shortest clip.",
    )
    name = e.text_input(
        "Dataset name",
        value=fmt,
        key=f"export.name.{fmt}",
        help=f"Written to {DATASETS_DIR}/<name> in the story folder.",
    )
    fields = {
        "format": fmt,
        "pairing": pairing,
        "min_clip_score": min_clip,
        "min_subject_consistency": min_subject,
        "trigger": trigger.strip() or None,
        "bucket": bucket.strip() or None,
    }
    return fields, name.strip()


def _preview(plan: ExportPlan) -> None:
    a, b, c = st.columns(3)
    a.metric("Rows", len(plan.rows))
    b.metric("Skipped scenes", len(plan.skipped))
    c.metric("Bucket", plan.bucket.text)
    st.subheader("Rows")
    if plan.rows:
        st.dataframe(plan.preview(), hide_index=True, width="stretch")
    else:
        st.info("No scene passes the filters; see the skipped scenes below.")
    if plan.skipped:
        counts = ", ".join(f"{n} {why}" for why, n in plan.skip_counts().items())
        st.subheader("Skipped scenes")
        st.caption(md(counts))
        st.dataframe(
            [s.as_dict() for s in plan.skipped], hide_index=True, width="stretch"
        )


_PLACEHOLDER_KINDS = {
    "animatic": "animatic storyboard clips (drawn cards, not footage)",
    "random-weights": "clips of a random-weight test model (noise)",
}


def _placeholder_warning(plan: ExportPlan) -> bool:
    """Warn when placeholder clips would go into the dataset; True once the
    user confirmed it (or when there are none)."""
    clips = plan.clips()
    kinds: dict[str, list[str]] = {}
    for clip in clips:
        if clip.source_kind in _PLACEHOLDER_KINDS:
            kinds.setdefault(clip.source_kind, []).append(clip.scene_id)
    if not kinds:
        return True
    parts = [
        f"{len(scenes)} {_PLACEHOLDER_KINDS[kind]}: "
        + md(", ".join(dict.fromkeys(scenes)))
        for kind, scenes in kinds.items()
    ]
    total = sum(len(v) for v in kinds.values())
    st.warning(
        f"**Placeholder footage**: {total} of the {len(clips)} clips are not "
        "made by a video model:\n"
        + "\n".join(f"- {part}" for part in parts)
        + "\n\nA model trained on them learns the placeholders. Generate these "
        "scenes with a real model (Settings: Backend and Model) first, or export "
        "them on purpose (a pipeline check).",
        icon=":material/warning:",
    )
    return st.checkbox(
        "Export the placeholder footage anyway", key="export.placeholders_ok"
    )


def _run(folder: Path, out: Path, options: ExportOptions, plan: ExportPlan) -> None:
    from studio import datasets  # the engine's export, imported on use

    bar = st.progress(0.0, text="Encoding clips...")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Clips {done}/{total}")

    try:
        summary = datasets.export(folder, out, options, progress, plan)
    except datasets.EXPORT_ERRORS as exc:
        bar.empty()
        st.error(md(exc))
        return
    bar.progress(1.0, text="Done")
    st.session_state[RESULT_KEY] = {
        "out": str(out),
        "rows": summary.rows,
        "written": summary.clips_written,
        "reused": summary.clips_reused,
        "removed": len(summary.removed),
    }


def _result_and_download(folder: Path, out: Path) -> None:
    from studio import datasets

    result = st.session_state.get(RESULT_KEY)
    if result and result["out"] == str(out):
        st.success(
            f"Exported {result['rows']} rows to {md(out)}: {result['written']} clips "
            f"encoded, {result['reused']} unchanged, {result['removed']} old files "
            "removed."
        )
    if datasets.has_export(out):
        st.download_button(
            "Download dataset (zip)",
            data=lambda: datasets.zip_folder(out),
            file_name=f"{folder.name}-{out.name}.zip",
            mime="application/zip",
            key="export.download",
            icon="📦",
        )
        st.caption(f"The dataset folder: {md(out)}")


def export_page() -> None:
    """Options, preview, export with a progress bar, zip download."""
    from studio import datasets  # the engine's export, imported on use

    folder = story_page("Export")
    if folder is None:
        return
    st.caption(
        "Each scene's selected take becomes a training sample; failed, stale, "
        "unscored (when a threshold is set) and below-threshold takes are left out."
    )
    fields, name = _options()
    if not _NAME_RE.match(name):
        st.error(
            f"Dataset name {md(repr(name))}: use lowercase letters, digits, '-' "
            "and '_', starting with a letter or digit"
        )
        return
    try:
        options = datasets.build_options(fields)
        plan = datasets.plan(folder, options)
    except datasets.EXPORT_ERRORS as exc:
        st.error(md(exc))
        return
    try:
        out = services.dataset_folder(folder, dataset_dir(name))
    except services.StoryError as exc:
        st.error(md(exc))
        return
    _preview(plan)
    confirmed = _placeholder_warning(plan)
    if st.button(
        "Export dataset",
        type="primary",
        key="export.run",
        disabled=not plan.rows or not confirmed,
        help=None if confirmed else "Confirm the placeholder footage above first.",
    ):
        _run(folder, out, options, plan)
    _result_and_download(folder, out)
