"""What the timeline adapters leave out, written after them.

OpenTimelineIO's adapters write most of a story line (`engine.film.timeline`);
this module completes two of their outputs where the adapter cannot be told
to, each a documented step on the adapter's output:

- **FCPXML** (``otio-fcpx-xml-adapter`` 1.0.0, ``fcpx_xml.py``): the adapter
  turns a dissolve into a hard cut in its middle (``FcpxOtio`` trims the
  outgoing clip and extends the incoming one by the transition's offsets)
  and writes no ``<transition>``; it writes ``hasAudio="0"`` for clips whose
  mp4 has sound and plays only their pictures (``<clip><video/></clip>``);
  its ``<format>`` has no size; it has no place for a clip's notes. The step
  (ElementTree over the adapter's document) gives every spine clip its own
  range back (``offset``, ``start``, ``duration``, so the clips abut at the
  cut), puts a ``<transition>`` over each dissolve (Final Cut's Cross
  Dissolve and Audio Crossfade effects as ``filter-video`` and
  ``filter-audio``), anchors the clip's sound under its picture
  (``<audio lane="-1">`` inside ``<video>``, as Final Cut's own exports do),
  sets ``hasAudio``, the format's ``width`` and ``height``, a ``<note>``
  with the prompt, seed, take and scores, and ``<metadata>`` ``md`` items.
  Element order follows the FCPXML DTD (Apple, "FCPXML DTD" 1.10:
  ``clip (note?, ..., (spine | clip_item)*, marker_item*, ..., metadata?)``,
  ``video (param*, note?, ..., anchor_item*, marker_item*, ...)``,
  ``transition (filter-video?, filter-audio?, marker_item*, metadata?)``).
- **CMX 3600 EDL** (``otio-cmx3600-adapter`` 1.0.0, ``EventLine``): the
  adapter's dissolve line puts the transition duration in columns 23-25
  (``D {diss:03d}``) where CMX 3600 has it in columns 25-27, so a column
  parser reads a wrong duration; and it writes every event as picture only
  (``V``). The step rewrites each event line in CMX 3600's columns (event
  1-3, reel 6-13, channel 15-18, transition 21-24, duration 25-27, source
  in/out and record in/out from 30, 42, 54 and 66) with the channel ``B``
  (picture and audio 1) or ``AA/V`` (picture and audio 1 and 2) for clips
  with sound.

Which clips sound, and with how many channels, is asked of the bundled
ffmpeg once per line (`sound_channels`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from engine.sound import audio_descriptions

__all__ = [
    "ShotSound",
    "FcpxClip",
    "sound_channels",
    "complete_fcpxml",
    "complete_edl",
    "CROSS_DISSOLVE_UID",
    "AUDIO_CROSSFADE_UID",
]

# Final Cut Pro's built-in effects, as its own FCPXML exports name them.
CROSS_DISSOLVE_UID = "FxPlug:4731E73A-8DAC-4113-9A30-AE85B1761265"
AUDIO_CROSSFADE_UID = "FFAudioTransition"


@dataclass(frozen=True)
class ShotSound:
    """A clip's sound: its audio channels (0: silent)."""

    channels: int

    @property
    def sounds(self) -> bool:
        return self.channels > 0


def sound_channels(paths: Sequence[str | Path]) -> list[ShotSound]:
    """The audio channels of each clip's first audio stream (0: none), from
    the stream list the bundled ffmpeg prints (`engine.sound.audio_descriptions`:
    one probe per batch of clips; a FIFO is refused before ffmpeg could block
    on it)."""
    return [
        ShotSound(_channels(d) if d is not None else 0)
        for d in audio_descriptions(paths)
    ]


def _channels(description: str) -> int:
    """Channels in ffmpeg's stream description ("aac, 48000 Hz, stereo, ...")."""
    layout = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.1": 6, "7.1": 8}
    for word in (w.strip() for w in description.split(",")):
        if word in layout:
            return layout[word]
        if m := re.fullmatch(r"(\d+) channels.*", word):
            return int(m.group(1))
        if m := re.fullmatch(r"(5\.1|7\.1)\(.*\)", word):
            return layout[m.group(1)]
    return 1  # an audio stream of a layout not named: at least one channel


# --- FCPXML -------------------------------------------------------------------


@dataclass(frozen=True)
class FcpxClip:
    """One spine clip as the film plays it, times in seconds.

    ``record``: where it starts on the timeline; ``start``/``duration``: its
    source range; ``dissolve_in``: the transition before it as the time
    before and after the cut (0, 0: a cut); ``note`` and ``metadata``: what
    the editor shows of it.
    """

    record: Fraction
    start: Fraction
    duration: Fraction
    dissolve_in: tuple[Fraction, Fraction]
    sound: ShotSound
    note: str
    metadata: tuple[tuple[str, str], ...]


def _time(value: Fraction) -> str:
    """FCPXML's rational time: ``"0s"``, ``"2s"``, ``"49/24s"``.

    >>> _time(Fraction(49, 24)), _time(Fraction(0))
    ('49/24s', '0s')
    """
    if value.denominator == 1:
        return f"{value.numerator}s"
    return f"{value.numerator}/{value.denominator}s"


def _next_id(resources: ET.Element) -> str:
    used = {
        int(e.get("id", "r0")[1:])
        for e in resources
        if re.fullmatch(r"r\d+", e.get("id", ""))
    }
    return f"r{max(used, default=0) + 1}"


def complete_fcpxml(
    text: str, clips: Sequence[FcpxClip], *, width: int, height: int
) -> str:
    """The adapter's FCPXML with dissolves, sound, format size and notes (see
    the module docstring). ``clips``: the spine's clips in order."""
    root = ET.fromstring(text)
    resources = root.find("resources")
    spine = root.find("./project/sequence/spine")
    assert resources is not None and spine is not None, "not the adapter's FCPXML"
    spine_clips = [e for e in spine if e.tag == "clip"]
    if len(spine_clips) != len(clips):
        raise ValueError(
            f"the FCPXML spine has {len(spine_clips)} clips, the line {len(clips)}"
        )
    for fmt in resources.iter("format"):
        fmt.set("width", str(width))
        fmt.set("height", str(height))
    assets = {a.get("id"): a for a in resources.iter("asset")}
    effects: dict[str, str] = {}

    def effect(name: str, uid: str) -> str:
        if uid not in effects:
            ref = _next_id(resources)
            ET.SubElement(resources, "effect", {"id": ref, "name": name, "uid": uid})
            effects[uid] = ref
        return effects[uid]

    end = Fraction(0)
    for element, clip in zip(spine_clips, clips, strict=True):
        element.set("offset", _time(clip.record))
        element.set("start", _time(clip.start))
        element.set("duration", _time(clip.duration))
        end = max(end, clip.record + clip.duration)
        video = element.find("video")
        asset = assets.get(video.get("ref")) if video is not None else None
        if asset is not None:
            asset.set("hasAudio", "1" if clip.sound.sounds else "0")
            if clip.sound.sounds:
                asset.set("audioSources", "1")
                asset.set("audioChannels", str(clip.sound.channels))
        if video is not None and clip.sound.sounds:
            audio = ET.Element(
                "audio",
                {
                    "lane": "-1",
                    "offset": video.get("offset", "0s"),
                    "ref": video.get("ref", ""),
                    "duration": video.get("duration", ""),
                    "role": "dialogue",
                },
            )
            markers = [i for i, e in enumerate(video) if e.tag.endswith("marker")]
            video.insert(markers[0] if markers else len(video), audio)
        note = ET.Element("note")
        note.text = clip.note
        element.insert(0, note)
        metadata = ET.SubElement(element, "metadata")
        for key, value in clip.metadata:
            ET.SubElement(metadata, "md", {"key": key, "value": value})
        before, after = clip.dissolve_in
        if before or after:
            transition = ET.Element(
                "transition",
                {
                    "name": "Cross Dissolve",
                    "offset": _time(clip.record - before),
                    "duration": _time(before + after),
                },
            )
            ET.SubElement(
                transition,
                "filter-video",
                {"ref": effect("Cross Dissolve", CROSS_DISSOLVE_UID),
                 "name": "Cross Dissolve"},
            )  # fmt: skip
            ET.SubElement(
                transition,
                "filter-audio",
                {"ref": effect("Audio Crossfade", AUDIO_CROSSFADE_UID),
                 "name": "Audio Crossfade"},
            )  # fmt: skip
            spine.insert(list(spine).index(element), transition)
    sequence = root.find("./project/sequence")
    if sequence is not None and clips:
        sequence.set("duration", _time(end))
    ET.indent(root, space="    ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n\n' + body + "\n"


# --- CMX 3600 -----------------------------------------------------------------

_TC = r"\d\d:\d\d:\d\d[:;]\d\d"
_EVENT = re.compile(
    rf"^(?P<event>\d{{3}})\s+(?P<reel>\S+)\s+(?P<channel>\S+)\s+"
    rf"(?P<kind>C|D|W\d{{3}}|K[BO]?)(?:\s+(?P<dur>\d{{1,3}}))?\s+"
    rf"(?P<times>{_TC} {_TC} {_TC} {_TC})\s*$"
)


def _channel(sound: ShotSound) -> str:
    """CMX 3600's channel field: picture alone, or with audio 1 (and 2)."""
    if not sound.sounds:
        return "V"
    return "B" if sound.channels == 1 else "AA/V"


def complete_edl(text: str, sounds: Sequence[ShotSound]) -> str:
    """The adapter's EDL with every event line in CMX 3600's columns and the
    audio channels of clips with sound (module docstring). ``sounds``: per
    event number (the line's shots in order)."""
    out = []
    for line in text.splitlines():
        match = _EVENT.match(line)
        if not match:
            out.append(line)
            continue
        event = int(match["event"])
        sound = sounds[event - 1] if 0 < event <= len(sounds) else ShotSound(0)
        kind = match["kind"]
        duration = f"{int(match['dur']):03d}" if match["dur"] else "   "
        out.append(
            f"{match['event']}  {match['reel'][:8]:<8} {_channel(sound):<4}  "
            f"{kind:<4}{duration}  {match['times']}"
        )
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")
