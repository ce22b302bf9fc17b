"""A story line as an edit timeline, through OpenTimelineIO and its adapters.

One video track, one clip per scene: the clip's source range skips the frames
a take repeats from its predecessor (the same `FilmPlan` the film is made
from), a dissolve at each cut that has one (an OTIO ``SMPTE_Dissolve``), a
marker per scene with its title, and the prompt, seed, take and scores in the
clip's metadata under ``storygraph``. The film's sound plays as it does in
the film: the clips' own sound under their pictures (silence for a silent
take), crossfaded at dissolves between two clips with sound. The formats are
written by OTIO's own adapters: ``otio`` (OTIO JSON), ``fcpxml`` (Final Cut
Pro X XML, ``otio-fcpx-xml-adapter``), ``xml`` (Final Cut Pro 7 XML, which
Premiere and Resolve import, ``otio-fcp-adapter``) and ``edl`` (CMX 3600,
``otio-cmx3600-adapter``); what an adapter leaves out is written by a
documented step on its output (`engine.film.timeline_post`).

Per format:

- ``otio``: a video track and an audio track (a clip per take with sound,
  a gap per silent one), metadata under ``storygraph``.
- ``xml``: the same two tracks through the adapter; each clip item carries
  its scene and take (``logginginfo``: ``scene``, ``shottake``, the prompt
  as ``lognote``) and its seed and scores (``comments``), written from the
  clip's ``fcp_xml`` metadata the adapter turns into elements; audio clip
  items name their source track (``sourcetrack``) and audio dissolves are
  Cross Fade (+3dB).
- ``fcpxml``: dissolves as ``<transition>``, sound anchored under each
  clip's picture, ``hasAudio`` true to the clip, a complete ``<format>``, a
  ``<note>`` and ``<metadata>`` per clip (`timeline_post.complete_fcpxml`);
  media as absolute ``file://`` URLs, which is what Final Cut reads.
- ``edl``: one event per scene, picture with its audio channels (``B`` or
  ``AA/V``) where the clip has sound, dissolves in CMX 3600's columns
  (`timeline_post.complete_edl`), and ``* COMMENT:`` lines with the scene,
  take, seed, scores and prompt.

Media paths are relative to the timeline file by default (a story folder
moved as a whole keeps working), except in FCPXML; ``absolute=True``
writes ``file://`` URLs everywhere, for a timeline handed out on its own.
Both are URLs (percent-encoded), as OTIO's ``target_url`` is.

Titles are the user's text: every string written (names, markers, metadata)
goes through the format's cleaner from `engine.export_text` first, so no
title adds a line to an EDL or breaks an XML writer; names are one line in
every format. CMX 3600 numbers events with three digits: a line of more than
999 scenes is refused for EDL with a message naming the formats that hold it.
"""

from __future__ import annotations

import os
import textwrap
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.export_text import one_line, storable, xml_text
from engine.film.plan import FilmPlan, Shot
from engine.film.timeline_post import (
    FcpxClip,
    ShotSound,
    complete_edl,
    complete_fcpxml,
    sound_channels,
)
from kg.layout import timeline_file
from kg.paths import resolve_asset, write_atomic

if TYPE_CHECKING:
    import opentimelineio as otio

__all__ = [
    "TimelineFormat",
    "FORMATS",
    "MAX_EDL_EVENTS",
    "timecode_problem",
    "timeline_problem",
    "build_timeline",
    "render_timeline",
    "write_timeline",
]


def _fcpx_text(text: str) -> str:
    """XML-safe text for ``otio-fcpx-xml-adapter``, which looks clips up by
    name in XPath predicates quoted with ``'``: an apostrophe there is a
    syntax error, so it is written as the typographic one (U+2019)."""
    return xml_text(text).replace("'", "\u2019")


@dataclass(frozen=True)
class TimelineFormat:
    name: str
    adapter: str
    suffix: str
    label: str
    mime: str
    # what every string written in this format goes through (names are also
    # made one line): see engine.export_text
    text: Callable[[str], str] = storable


FORMATS: dict[str, TimelineFormat] = {
    f.name: f
    for f in (
        TimelineFormat(
            "otio", "otio_json", ".otio", "OpenTimelineIO", "application/json"
        ),
        TimelineFormat(
            "fcpxml",
            "fcpx_xml",
            ".fcpxml",
            "Final Cut Pro X XML",
            "application/xml",
            _fcpx_text,
        ),
        TimelineFormat(
            "xml", "fcp_xml", ".xml", "FCP 7 XML", "application/xml", xml_text
        ),
        TimelineFormat(
            "edl", "cmx_3600", ".edl", "CMX 3600 EDL", "text/plain", one_line
        ),
    )
}
# CMX 3600's event number is three digits (001-999); one event per scene.
MAX_EDL_EVENTS = 999


# Formats that write SMPTE timecode (only the standard frame rates have one).
TIMECODE_FORMATS = frozenset({"xml", "edl"})
# Formats whose adapter writes an audio track (FCPXML anchors each clip's
# sound under its picture and EDL events name their audio channels instead:
# `engine.film.timeline_post`).
AUDIO_TRACK_FORMATS = frozenset({"otio", "xml"})
# FCP 7's audio dissolve (the adapter writes every transition as video's
# Cross Dissolve unless the transition's metadata names its effect).
_AUDIO_DISSOLVE = {
    "effect": {
        "name": "Cross Fade (+3dB)",
        "effectid": "KGAudioTransCrossFade3dB",
        "effecttype": "transition",
        "mediatype": "audio",
    }
}


def timecode_problem(fmt: str, fps: int) -> str | None:
    """Why ``fmt`` cannot hold a timeline at ``fps`` (None: it can).

    EDL and FCP 7 XML count time in SMPTE timecode, which only the standard
    frame rates have.
    """
    import opentimelineio as otio

    spec = _format(fmt)
    if spec.name not in TIMECODE_FORMATS:
        return None
    if otio.opentime.RationalTime.is_valid_timecode_rate(float(fps)):
        return None
    return (
        f"{spec.label} counts time in SMPTE timecode, which has no {fps} fps; "
        "set the story's fps to 24, 25, 30, 48, 50 or 60, or export OTIO or "
        "FCP X XML"
    )


def timeline_problem(fmt: str, plan: FilmPlan) -> str | None:
    """Why ``plan`` cannot be written as ``fmt`` (None: it can): a frame rate
    without SMPTE timecode, or more scenes than an EDL has event numbers."""
    problem = timecode_problem(fmt, plan.fps)
    if problem is None and fmt == "edl" and len(plan.shots) > MAX_EDL_EVENTS:
        problem = (
            f"CMX 3600 EDL numbers its events 001 to {MAX_EDL_EVENTS}, and this "
            f"story line has {len(plan.shots):,} scenes; export OTIO, FCP X XML "
            "or FCP 7 XML, which have no such limit, or choose a shorter line"
        )
    return problem


def _format(name: str) -> TimelineFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unknown timeline format {name!r}; choose one of {', '.join(FORMATS)}"
        ) from None


def _media_url(clip: Path, base: Path | None) -> str:
    """A ``file://`` URL, or a relative URL (percent-encoded: a folder name
    with a quote or a line break stays one plain token in every format)."""
    if base is None:
        return clip.absolute().as_uri()
    rel = Path(os.path.relpath(clip.absolute(), base.absolute())).as_posix()
    return urllib.parse.quote(rel, safe="/")


def _cleaned(value: object, text: Callable[[str], str]) -> object:
    """``value`` (metadata: dicts, lists, scalars) with every string cleaned."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {text(str(k)): _cleaned(v, text) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cleaned(v, text) for v in value]
    return value


def _in_shot_frames(frames: int, shot_fps: int, film_fps: int) -> int:
    return round(frames * shot_fps / film_fps)


def _scores_text(scores: dict[str, Any] | None) -> str:
    """The take's numeric scores as ``name value`` pairs, table order."""
    if not scores:
        return "not scored"
    parts = [
        f"{k} {v:.4g}"
        for k, v in scores.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return ", ".join(parts) or "not scored"


def _summary(shot: Shot) -> str:
    """One line an editor reads: take, seed, scores, prompt."""
    return (
        f"scene {shot.scene_id}, take {shot.take}, seed {shot.seed}; scores: "
        f"{_scores_text(shot.scores)}; prompt: {shot.prompt}"
    )


def _edl_comments(shot: Shot) -> list[str]:
    """``COMMENT:`` lines (the adapter writes each as ``* COMMENT: ...``),
    each under 80 characters, the width EDL readers show."""
    lines = [
        f"STORYGRAPH SCENE {shot.scene_id} TAKE {shot.take} SEED {shot.seed}",
        f"SCORES {_scores_text(shot.scores)}",
        f"PROMPT {shot.prompt}",
    ]
    out = []
    for line in lines:
        wrapped = textwrap.wrap(one_line(line), 66) or [""]
        out += [f"COMMENT: {part}" for part in wrapped]
    return out


def _fcp7_metadata(shot: Shot, audio: bool) -> dict[str, Any]:
    """FCP 7 XML elements of a clip item, through the adapter's ``fcp_xml``
    metadata: its source track, logging info and comments."""
    return {
        "sourcetrack": {
            "mediatype": "audio" if audio else "video",
            "trackindex": "1",
        },
        "logginginfo": {
            "scene": shot.scene_id,
            "shottake": str(shot.take),
            "lognote": shot.prompt,
        },
        "comments": {
            "mastercomment1": f"seed {shot.seed}",
            "mastercomment2": f"scores: {_scores_text(shot.scores)}",
        },
    }


def build_timeline(
    story_dir: str | Path,
    plan: FilmPlan,
    *,
    name: str,
    media_base: str | Path | None,
    text: Callable[[str], str] = storable,
    sounds: Sequence[ShotSound] | None = None,
    fmt: str = "otio",
) -> otio.schema.Timeline:
    """The OTIO timeline of ``plan``; media URLs relative to ``media_base``
    (the folder the timeline file is in), or absolute ``file://`` when None.
    Every string goes through ``text`` (a format's cleaner), names also
    through `one_line`. ``sounds``: each shot's sound (None: all silent);
    ``fmt``: the format it is for (an audio track for ``otio`` and ``xml``,
    the metadata each format has a place for)."""
    import opentimelineio as otio

    def label(value: str) -> str:
        return text(one_line(value))

    root = Path(story_dir)
    base = None if media_base is None else Path(media_base)
    sounds = list(sounds) if sounds is not None else [ShotSound(0)] * len(plan.shots)
    assert len(sounds) == len(plan.shots), "one sound per shot"
    with_audio = fmt in AUDIO_TRACK_FORMATS and any(s.sounds for s in sounds)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio_track = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    # A dissolve of N frames is centred on the cut: the outgoing clip ends
    # N//2 frames early and the incoming one starts the rest late; OTIO plays
    # those trimmed frames as the transition's handles, so the track is as
    # long as the film and shows the same frames.
    fades = [_in_shot_frames(s.crossfade, s.fps, plan.fps) for s in plan.shots]
    for i, shot in enumerate(plan.shots):
        rate = float(shot.fps)
        fade_in = fades[i]
        fade_out = fades[i + 1] if i + 1 < len(plan.shots) else 0
        late, early = fade_in - fade_in // 2, fade_out // 2
        clip_path = resolve_asset(root, shot.video)
        media = otio.schema.ExternalReference(
            target_url=_media_url(clip_path, base),
            available_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, rate),
                otio.opentime.RationalTime(shot.frames, rate),
            ),
        )
        source = otio.opentime.TimeRange(
            otio.opentime.RationalTime(shot.head + late, rate),
            otio.opentime.RationalTime(shot.played - late - early, rate),
        )
        metadata: dict[str, Any] = {
            "storygraph": {
                "scene": shot.scene_id,
                "title": shot.title,
                "take": shot.take,
                "prompt": shot.prompt,
                "seed": shot.seed,
                "join": shot.join,
                "repeated_frames_skipped": shot.head,
                "scores": shot.scores or {},
                "sound": sounds[i].sounds,
            },
            # every take file is called take-<n>.mp4, so the reel the EDL
            # writer would derive from the file name says nothing
            "cmx_3600": {"reel": f"S{i + 1:03d}T{shot.take}"[:8]},
        }
        if fmt == "edl":
            metadata["cmx_3600"]["comments"] = _edl_comments(shot)
        if fmt == "xml":
            metadata["fcp_xml"] = _fcp7_metadata(shot, audio=False)
        clip = otio.schema.Clip(
            name=label(f"{shot.title} (take {shot.take})"),
            media_reference=media,
            source_range=source,
            metadata=_cleaned(metadata, text),
        )
        clip.markers.append(
            otio.schema.Marker(
                name=label(shot.title),
                marked_range=otio.opentime.TimeRange(
                    source.start_time, otio.opentime.RationalTime(0, rate)
                ),
                color=otio.schema.MarkerColor.BLUE,
            )
        )
        if fade_in:
            track.append(
                otio.schema.Transition(
                    name=label(f"dissolve into {shot.title}"),
                    transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                    # the incoming clip's frames before the cut, the outgoing
                    # clip's frames after it
                    in_offset=otio.opentime.RationalTime(late, rate),
                    out_offset=otio.opentime.RationalTime(fade_in // 2, rate),
                )
            )
        track.append(clip)
        if with_audio:
            # the film crossfades sound only where both sides have some; a
            # dissolve from or into a silent take is a cut in the audio track
            if fade_in and sounds[i].sounds and sounds[i - 1].sounds:
                audio_track.append(
                    otio.schema.Transition(
                        name=label(f"crossfade into {shot.title}"),
                        transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                        in_offset=otio.opentime.RationalTime(late, rate),
                        out_offset=otio.opentime.RationalTime(fade_in // 2, rate),
                        metadata={"fcp_xml": _AUDIO_DISSOLVE} if fmt == "xml" else {},
                    )
                )
            if sounds[i].sounds:
                audio_meta = dict(clip.metadata)
                if fmt == "xml":
                    audio_meta["fcp_xml"] = _cleaned(
                        _fcp7_metadata(shot, audio=True), text
                    )
                audio_track.append(
                    otio.schema.Clip(
                        name=clip.name,
                        media_reference=otio.schema.ExternalReference(
                            target_url=media.target_url,
                            available_range=media.available_range,
                        ),
                        source_range=source,
                        metadata=audio_meta,
                    )
                )
            else:
                audio_track.append(otio.schema.Gap(source_range=source))
    timeline = otio.schema.Timeline(
        name=label(name),
        global_start_time=otio.opentime.RationalTime(0, float(plan.fps)),
    )
    timeline.tracks.append(track)
    if with_audio:
        timeline.tracks.append(audio_track)
    timeline.metadata["storygraph"] = _cleaned(
        {
            "line": list(plan.line.scenes),
            "leaf": plan.line.leaf,
            "film_frames": plan.frames,
            "fps": plan.fps,
            "width": plan.width,
            "height": plan.height,
        },
        text,
    )
    return timeline


def render_timeline(
    story_dir: str | Path,
    plan: FilmPlan,
    fmt: str,
    *,
    name: str,
    media_base: str | Path | None,
) -> str:
    """The timeline of ``plan`` as text in format ``fmt`` (see `FORMATS`)."""
    import opentimelineio as otio

    spec = _format(fmt)
    problem = timeline_problem(fmt, plan)
    if problem is not None:
        raise ValueError(problem)
    root = Path(story_dir)
    sounds = sound_channels([resolve_asset(root, s.video) for s in plan.shots])
    if spec.name == "fcpxml":
        media_base = None  # Final Cut reads absolute file:// URLs
    timeline = build_timeline(
        story_dir,
        plan,
        name=name,
        media_base=media_base,
        text=spec.text,
        sounds=sounds,
        fmt=spec.name,
    )
    written = otio.adapters.write_to_string(timeline, spec.adapter)
    if spec.name == "fcpxml":
        return complete_fcpxml(
            written,
            _fcpx_clips(timeline, plan, sounds, spec.text),
            width=plan.width,
            height=plan.height,
        )
    if spec.name == "edl":
        return complete_edl(written, sounds)
    return written


def _seconds(time: otio.opentime.RationalTime) -> Fraction:
    value = Fraction(time.value).limit_denominator(10**6)
    return value / Fraction(time.rate).limit_denominator(10**6)


def _fcpx_clips(
    timeline: otio.schema.Timeline,
    plan: FilmPlan,
    sounds: Sequence[ShotSound],
    text: Callable[[str], str],
) -> list[FcpxClip]:
    """The video track's clips as FCPXML places them (record, source range,
    the dissolve before each), with their notes and metadata."""
    import opentimelineio as otio

    track = timeline.tracks[0]
    out: list[FcpxClip] = []
    before = (Fraction(0), Fraction(0))
    shots = iter(zip(plan.shots, sounds, strict=True))
    for index, item in enumerate(track):
        if isinstance(item, otio.schema.Transition):
            before = (_seconds(item.in_offset), _seconds(item.out_offset))
            continue
        shot, sound = next(shots)
        record = track.range_of_child_at_index(index).start_time
        source = item.source_range
        meta = (
            ("com.storygraph.scene", shot.scene_id),
            ("com.storygraph.take", str(shot.take)),
            ("com.storygraph.seed", str(shot.seed)),
            ("com.storygraph.scores", _scores_text(shot.scores)),
            ("com.storygraph.prompt", shot.prompt),
        )
        out.append(
            FcpxClip(
                record=_seconds(record),
                start=_seconds(source.start_time),
                duration=_seconds(source.duration),
                dissolve_in=before,
                sound=sound,
                note=text(one_line(_summary(shot))),
                metadata=tuple((k, text(one_line(v))) for k, v in meta),
            )
        )
        before = (Fraction(0), Fraction(0))
    return out


def write_timeline(
    story_dir: str | Path,
    plan: FilmPlan,
    fmt: str,
    *,
    name: str,
    out: str | Path | None = None,
    absolute: bool = False,
) -> Path:
    """Write the timeline atomically to ``out`` (default
    ``films/<leaf><suffix>`` in the story folder) and return its path."""
    spec = _format(fmt)
    target = (
        Path(out)
        if out is not None
        else resolve_asset(story_dir, timeline_file(plan.line.leaf, spec.suffix))
    )
    base = None if absolute else target.absolute().parent
    text = render_timeline(story_dir, plan, fmt, name=name, media_base=base)
    write_atomic(target, text.encode("utf-8"))
    return target
