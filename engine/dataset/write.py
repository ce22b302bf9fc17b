"""Writing a planned dataset: clips fitted to the bucket, manifest, metadata.

Idempotent: names and encodings are deterministic, a clip whose source and
bucket are unchanged (content hash) is not encoded again, and files of a
previous export that no longer belong are removed. Writes stay inside the
output folder and never go through a link in the story folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.dataset.bucket import fit_to_bucket
from engine.dataset.formats import (
    FORMATS,
    ManifestRow,
    render_readme,
)
from engine.dataset.options import (
    CLIPS_DIR,
    ENCODING,
    GENERATOR,
    METADATA_FILE,
    README_FILE,
    ClipRef,
    EmptyDatasetError,
    ExportError,
    ExportOptions,
    ExportPlan,
    ExportSummary,
    ProgressFn,
    Skip,
    skip_counts,
)
from engine.dataset.plan import plan_export
from kg.errors import StoryError
from kg.files import MAX_MEDIA_BYTES, check_story_file, read_story_file
from kg.paths import atomic_path, inside, refuse_link, resolve_asset, walk_files
from kg.store import STATE_FILE

log = logging.getLogger(__name__)

MAX_METADATA_BYTES = 256 * 1024**2  # the previous export's record of its clips


# What a dataset with sound gives a silent take: a silent track of its
# length (every sample then has sound, as the trainers' audio strategies
# need), at the rate and channels of the dataset's first sound.
SILENT_RATE, SILENT_CHANNELS = 16_000, 1


def sound_dest(clip: ClipRef) -> str:
    """Where a clip's .wav goes in a dataset with sound: beside the clip."""
    return clip.audio_dest or clip.dest.removesuffix(".mp4") + ".wav"


def _sound_format(story_dir: Path, clips: list[ClipRef]) -> tuple[int, int] | None:
    """``(rate, channels)`` of the first take's sound, None when every take is
    silent (the dataset then has no sound)."""
    from engine.sound import read_wav

    for clip in clips:
        if clip.audio_source:
            try:
                samples, rate = read_wav(
                    resolve_asset(story_dir, clip.audio_source), max_seconds=0.01
                )
            except (OSError, StoryError):
                continue  # that clip fails again, by name, when it is written
            return rate, samples.shape[0]
    if any(c.audio_source for c in clips):
        return SILENT_RATE, SILENT_CHANNELS
    return None


def _fitted_sound(
    story_dir: Path,
    out: Path,
    clip: ClipRef,
    frames: int,
    silence: tuple[int, int] | None,
) -> tuple[Path | None, str | None]:
    """The take's sound cut to the bucket's first ``frames`` (as the clip is),
    written beside the clip, and what it is: ``"take"``; ``"silence"`` for a
    silent take in a dataset with sound (``silence``: its rate and channels),
    a silent track as long as the clip; ``(None, None)`` without sound."""
    from engine.clip_probe import MAX_CLIP_SECONDS
    from engine.sound import read_wav, write_wav

    seconds = min(frames / clip.fps, MAX_CLIP_SECONDS)  # the record may lie
    dest = inside(out, sound_dest(clip))
    if not clip.audio_source:
        if silence is None:
            return None, None
        rate, channels = silence
        samples = np.zeros((channels, max(1, round(seconds * rate))), np.float32)
        return write_wav(dest, samples, rate), "silence"
    samples, rate = read_wav(
        resolve_asset(story_dir, clip.audio_source),
        max_seconds=seconds,
        what=f"sound of take {clip.take} of {clip.scene_id}",
    )
    want = max(1, round(seconds * rate))
    if samples.shape[1] < want:  # a take's sound a little short: pad to the clip
        samples = np.pad(samples, ((0, 0), (0, want - samples.shape[1])))
    return write_wav(dest, samples[:, :want], rate), "take"


def _sha256_file(path: Path) -> str:
    check_story_file(path, max_bytes=MAX_MEDIA_BYTES)  # a FIFO would block here
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_text(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return  # unchanged: keep the file (and its mtime) as it is
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _previous_export(story_dir: Path, out: Path) -> dict[str, Any]:
    """The metadata of the previous export in ``out``, {} for a new or empty folder.

    Refuses folders that hold anything but a previous export.
    """
    if (out / STATE_FILE).exists() or out.resolve() == story_dir.resolve():
        raise ExportError(
            f"--out {out} is a story folder; choose a folder for the dataset, "
            f"e.g. {story_dir / 'dataset'}"
        )
    if not out.exists() or not any(out.iterdir()):
        return {}
    try:  # a regular file only: a FIFO there would block the export for good
        data = read_story_file(out / METADATA_FILE, max_bytes=MAX_METADATA_BYTES)
        meta = json.loads(data.decode("utf-8"))
    except (OSError, ValueError, StoryError):
        meta = None
    if not isinstance(meta, dict) or meta.get("generator") != GENERATOR:
        raise ExportError(
            f"--out {out} is not empty and holds no previous StoryGraph export "
            f"({METADATA_FILE}); choose an empty or new folder"
        )
    return meta


def _previous_clips(previous: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The clip hashes a previous export recorded, or {}."""
    clips = previous.get("clips")
    return clips if isinstance(clips, dict) else {}


def _synthetic_note(kinds: Counter[str]) -> str | None:
    """The warning for datasets with clips that are not model footage, or None."""
    total = sum(kinds.values())
    parts = []
    if kinds["animatic"]:
        parts.append(
            f"{kinds['animatic']} of its {total} clips are animatic storyboard previews"
        )
    if kinds["random-weights"]:
        parts.append(
            f"{kinds['random-weights']} of its {total} clips come from a tiny "
            "random-weight model"
        )
    if not parts:
        return None
    return (
        "; ".join(parts)
        + ", not model footage: use this dataset to test a training pipeline, "
        "not to train a LoRA worth keeping."
    )


def _metadata(
    plan: ExportPlan, clips: dict[str, dict[str, str]], late: list[Skip]
) -> dict[str, Any]:
    opts = plan.options
    kinds = Counter(c.source_kind for c in plan.clips())
    skipped = plan.skipped + late
    return {
        "generator": GENERATOR,
        "story": plan.story_title,
        "format": opts.format,
        "manifest": opts.dataset_format.manifest,
        "pairing": opts.resolved_pairing,
        "bucket": {
            "width": plan.bucket.width,
            "height": plan.bucket.height,
            "frames": plan.bucket.frames,
            "text": plan.bucket.text,
        },
        "trigger": opts.trigger,
        "thresholds": opts.thresholds,
        "source_kinds": dict(sorted(kinds.items())),
        "synthetic": _synthetic_note(kinds),
        "rows": [r.metadata for r in plan.rows],
        "skipped": [s.as_dict() for s in skipped],
        "skip_counts": skip_counts(skipped),
        "clips": clips,
    }


def export_dataset(
    story_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ExportOptions,
    *,
    progress: ProgressFn | None = None,
    plan: ExportPlan | None = None,
) -> ExportSummary:
    """Write the dataset of ``story_dir`` into ``out``; returns what it did.

    Parameters
    ----------
    story_dir : the story folder.
    out : the dataset folder: new, empty, or a previous export (updated in
        place; files that no longer belong are removed).
    options : format, pairing, thresholds, trigger, bucket.
    progress : called as ``progress(clips_done, clips_total)``.
    plan : a plan made by `plan_export` with the same options (saves a pass).

    Raises `ExportError` for invalid options or ``out``, `EmptyDatasetError`
    when no scene passes the filters (nothing is written then).
    """
    from engine.video import read_video, remove_partial_files, write_video

    story_dir, out = Path(story_dir), _confined_out(Path(story_dir), Path(out))
    plan = plan or plan_export(story_dir, options)
    if not plan.rows:
        raise EmptyDatasetError(plan)
    previous = _previous_clips(_previous_export(story_dir, out))
    out.mkdir(parents=True, exist_ok=True)
    remove_partial_files(out)
    progress = progress or (lambda done, total: None)
    summary = ExportSummary(out, plan)

    clips: dict[str, dict[str, str]] = {}
    bad: dict[str, str] = {}  # dest -> why it could not be written
    todo = plan.clips()
    silence = _sound_format(story_dir, todo)  # None: a dataset without sound
    sounds: dict[str, str] = {}  # dest -> "take" or "silence"
    progress(0, len(todo))
    for done, clip in enumerate(todo, start=1):
        src = resolve_asset(story_dir, clip.source)
        dest = inside(out, clip.dest)
        try:
            digest = _sha256_file(src)
        except (OSError, StoryError) as exc:
            log.warning("clip %s could not be exported: %s", clip.source, exc)
            bad[clip.dest] = f"{clip.source}: {exc}"
            progress(done, len(todo))
            continue
        kind = None if silence is None else "take" if clip.audio_source else "silence"
        record = {
            "source": clip.source,
            "source_sha256": digest,
            "bucket": plan.bucket.text,
            "encoding": ENCODING,
            "sound": kind or "none",
        }
        old = previous.get(clip.dest)
        if (
            isinstance(old, dict)
            and {k: old.get(k) for k in record} == record
            and dest.is_file()
            and _sha256_file(dest) == old.get("sha256")
            and (kind is None or inside(out, sound_dest(clip)).is_file())
        ):
            clips[clip.dest] = old
            summary.clips_reused += 1
            if kind:
                sounds[clip.dest] = kind
        else:
            try:
                frames = read_video(src, max_frames=plan.bucket.frames)
                frames = fit_to_bucket(frames, plan.bucket)
                sound, kind = _fitted_sound(story_dir, out, clip, len(frames), silence)
                write_video(dest, frames, clip.fps, audio=sound)
            except (ValueError, OSError, StoryError) as exc:
                log.warning("clip %s could not be exported: %s", clip.source, exc)
                bad[clip.dest] = f"{clip.source}: {exc}"
            else:
                clips[clip.dest] = {**record, "sha256": _sha256_file(dest)}
                summary.clips_written += 1
                if kind:
                    sounds[clip.dest] = kind
        progress(done, len(todo))

    if bad:
        kept = []
        for row in plan.rows:
            broken = [c for c in (row.target, row.reference) if c and c.dest in bad]
            if broken:
                summary.late_skips.append(
                    Skip(
                        row.target.scene_id,
                        row.target.take,
                        "unreadable clip",
                        bad[broken[0].dest],
                    )
                )
            else:
                kept.append(row)
        plan = summary.plan = replace(plan, rows=kept)
        if not kept:
            raise EmptyDatasetError(replace(plan, skipped=summary.skipped))
    used = {c.dest for c in plan.clips()}
    audio = silence is not None
    if audio:
        used |= {sound_dest(c) for c in plan.clips()}
    clips = {k: v for k, v in sorted(clips.items()) if k in used}

    fmt = options.dataset_format
    manifest = [
        ManifestRow(
            r.caption,
            r.target.dest,
            r.reference.dest if r.reference else None,
            sound_dest(r.reference) if audio and r.reference else None,
        )
        for r in plan.rows
    ]
    _write_text(
        inside(out, fmt.manifest),
        fmt.render_manifest(manifest, plan.paired, audio=audio),
    )
    for row in plan.rows:
        row.metadata["sound"] = sounds.get(row.target.dest)
        row.metadata["sound_file"] = sound_dest(row.target) if audio else None
        if row.reference is not None:
            row.metadata["reference_sound"] = sounds.get(row.reference.dest)
            row.metadata["reference_audio"] = (
                sound_dest(row.reference) if audio else None
            )
    meta = _metadata(plan, clips, summary.late_skips)
    _write_text(
        inside(out, METADATA_FILE),
        json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
    )
    readme = render_readme(
        fmt,
        story_title=plan.story_title,
        bucket=plan.bucket,
        paired=plan.paired,
        trigger=options.trigger,
        rows=len(plan.rows),
        skipped=len(summary.skipped),
        synthetic_note=meta["synthetic"],
        audio=audio,
        silent=sum(sounds.get(c.dest) == "silence" for c in plan.clips()),
        fps=_common_fps(plan),
    )
    _write_text(inside(out, README_FILE), readme)

    # files of a previous export that no longer belong
    keep = {fmt.manifest, METADATA_FILE, README_FILE} | used
    for name in {f.manifest for f in FORMATS.values()} - {fmt.manifest}:
        if (out / name).is_file():
            (out / name).unlink()
            summary.removed.append(name)
    for path in sorted(walk_files(out, CLIPS_DIR)):
        rel = path.relative_to(out).as_posix()
        if rel not in keep:
            path.unlink()
            summary.removed.append(rel)
    return summary


def _common_fps(plan: ExportPlan) -> int | None:
    """The clips' frame rate when they share one (a story's usually do)."""
    rates = {c.fps for c in plan.clips()}
    return rates.pop() if len(rates) == 1 else None


def _confined_out(story_dir: Path, out: Path) -> Path:
    """``out``; inside the story folder it must not go through a link.

    A dataset folder elsewhere is the user's explicit choice; one under the
    story (the default ``dataset/<format>``) could be a link planted to make
    the export write outside.
    """
    story_abs = Path(os.path.abspath(story_dir))
    out_abs = Path(os.path.abspath(out))
    if out_abs != story_abs and out_abs.is_relative_to(story_abs):
        inside(story_abs, out_abs.relative_to(story_abs).as_posix())
    else:
        refuse_link(out_abs)
    return out


def zip_dataset(out: str | os.PathLike[str]) -> bytes:
    """The dataset folder as zip bytes (deterministic: sorted, fixed dates).

    Hidden entries (``.precomputed``, temporary files) are left out; every
    name starts with the folder's name.
    """
    root = Path(out)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(walk_files(root, ".")):
            rel = path.relative_to(root)
            if any(p.startswith(".") for p in rel.parts):
                continue
            info = zipfile.ZipInfo(
                f"{root.name}/{rel.as_posix()}", (1980, 1, 1, 0, 0, 0)
            )
            # mp4 is already compressed; text compresses well
            info.compress_type = (
                zipfile.ZIP_STORED if path.suffix == ".mp4" else zipfile.ZIP_DEFLATED
            )
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()
