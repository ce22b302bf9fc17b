"""A story line as an edit timeline, through OpenTimelineIO and its adapters.

One video track, one clip per scene: the clip's source range skips the frames
a take repeats from its predecessor (the same `FilmPlan` the film is made
from), a dissolve at each cut that has one (an OTIO ``SMPTE_Dissolve``), a
marker per scene with its title, and the prompt, seed, take and scores in the
clip's metadata under ``storygraph``. The formats are written by OTIO's own
adapters (no hand-written XML): ``otio`` (OTIO JSON), ``fcpxml`` (Final Cut
Pro X XML, ``otio-fcpx-xml-adapter``), ``xml`` (Final Cut Pro 7 XML, which
Premiere and Resolve import, ``otio-fcp-adapter``) and ``edl`` (CMX 3600,
``otio-cmx3600-adapter``).

Media paths are relative to the timeline file by default (a story folder
moved as a whole keeps working); ``absolute=True`` writes ``file://`` URLs,
for a timeline handed out on its own. Both are URLs (percent-encoded), as
OTIO's ``target_url`` is.

Titles are the user's text: every string written (names, markers, metadata)
goes through the format's cleaner from `engine.export_text` first, so no
title adds a line to an EDL or breaks an XML writer; names are one line in
every format. CMX 3600 numbers events with three digits: a line of more than
999 scenes is refused for EDL with a message naming the formats that hold it.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.export_text import one_line, storable, xml_text
from engine.film.plan import FilmPlan
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


def build_timeline(
    story_dir: str | Path,
    plan: FilmPlan,
    *,
    name: str,
    media_base: str | Path | None,
    text: Callable[[str], str] = storable,
) -> otio.schema.Timeline:
    """The OTIO timeline of ``plan``; media URLs relative to ``media_base``
    (the folder the timeline file is in), or absolute ``file://`` when None.
    Every string goes through ``text`` (a format's cleaner), names also
    through `one_line`."""
    import opentimelineio as otio

    def label(value: str) -> str:
        return text(one_line(value))

    root = Path(story_dir)
    base = None if media_base is None else Path(media_base)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
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
        clip = otio.schema.Clip(
            name=label(f"{shot.title} (take {shot.take})"),
            media_reference=media,
            source_range=source,
            metadata=_cleaned(
                {
                    "storygraph": {
                        "scene": shot.scene_id,
                        "title": shot.title,
                        "take": shot.take,
                        "prompt": shot.prompt,
                        "seed": shot.seed,
                        "join": shot.join,
                        "repeated_frames_skipped": shot.head,
                        "scores": shot.scores or {},
                    },
                    # every take file is called take-<n>.mp4, so the reel the EDL
                    # writer would derive from the file name says nothing
                    "cmx_3600": {"reel": f"S{i + 1:03d}T{shot.take}"[:8]},
                },
                text,
            ),
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
    timeline = otio.schema.Timeline(
        name=label(name),
        global_start_time=otio.opentime.RationalTime(0, float(plan.fps)),
    )
    timeline.tracks.append(track)
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
    timeline = build_timeline(
        story_dir, plan, name=name, media_base=media_base, text=spec.text
    )
    return otio.adapters.write_to_string(timeline, spec.adapter)


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
