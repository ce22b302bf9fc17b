"""A Fountain screenplay read into a story graph.

Fountain (https://fountain.io/syntax) is the plain-text screenplay format.
The file is parsed by fountain-py (``fountain.FountainParser``), which knows
every element of the syntax and the line each came from; this module maps
those elements onto the story:

=======================  ====================================================
scene heading            a scene; ``INT.``/``EXT.``/``EST.``/``I/E`` and the
                         place name an environment (one per place, however
                         often it recurs), the time of day the scene's
                         lighting (``CONTINUOUS``, ``LATER``, ``SAME`` keep the
                         scene before's). A forced heading without a place
                         (``.FLASHBACK``) is a scene without an environment.
character cue            a character (one per name, however often it speaks)
dialogue, parenthetical  the scene's dialogue lines; a parenthetical, or an
                         extension such as ``(V.O.)``, is the line's delivery
action                   the scene's motion; a known character named in it
                         is in the scene
transition               the edge from the scene before: ``DISSOLVE`` is a
                         continuous edge, every other transition a cut; with
                         none, a ``CONTINUOUS`` heading continues, else a cut
synopsis (``=``)         under a scene heading: the scene's title
section (``#``)          the title of the next untitled scene; sections and
                         synopses elsewhere form the story's description
title page               the story's title (the rest: its description)
=======================  ====================================================

Whatever has no place in a story (centred text, lyrics, notes, text before
the first scene heading, lines over a field's limit) is listed in
`ScriptImport.unplaced` with its line, never dropped silently. A file that
cannot be read (not UTF-8, control characters, a boneyard or note never
closed, a broken StoryGraph note) raises `ScriptError` naming the line.

A note of the form ``[[storygraph {...}]]`` holds, as JSON, what a story has
and a screenplay cannot say (camera moves, seeds, ids, descriptions); the
writer (`kg.fountain_export`) adds them so that a story written out and read
back is the same story (`authored_content`).

Examples
--------
>>> result = read_script("INT. KITCHEN - NIGHT\\n\\nMARA\\n(quietly)\\nHello.\\n")
>>> scene = result.story.scenes[0]
>>> scene.lighting, result.story.environments[0].name, scene.dialogue[0].delivery
('night', 'Kitchen', 'quietly')
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from typing import Any

from fountain import FountainParser
from fountain.elements import ElementType, FountainElement
from pydantic import ValidationError

from kg.errors import StoryError
from kg.fields import CONTROL_CHARACTERS, MAX_NAME, MAX_STORY_TITLE, MAX_TEXT, MAX_TITLE
from kg.schema import (
    MAX_DIALOGUE_LINES,
    MAX_LINE_CHARS,
    Character,
    Environment,
    SceneEdge,
    SceneNode,
    Story,
)
from kg.store import validation_problems

__all__ = [
    "MAX_SCRIPT_BYTES",
    "NOTE_TAG",
    "ScriptError",
    "ScriptImport",
    "Unplaced",
    "authored_content",
    "decode_script",
    "read_script",
    "read_script_bytes",
    "lighting_for_time",
]

MAX_SCRIPT_BYTES = 5_000_000  # a feature film is about 200 KB
NOTE_TAG = "storygraph"
_NOTE_RE = re.compile(r"^\[\[\s*storygraph\s+(?P<json>.*)\]\]$", re.DOTALL)
_HEADING_RE = re.compile(
    r"^(?P<prefix>int\.?/ext|int/ext|i/e|int|ext|est)[.\s]\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_SCENE_NUMBER_RE = re.compile(r"\s*#[\w.\-]+#\s*$")
_BAD_CHARACTER_RE = re.compile(f"[{CONTROL_CHARACTERS}]")
# The time of day a heading ends with, and the lighting it stands for.
TIME_LIGHTING = {
    "DAY": "daylight",
    "NIGHT": "night",
    "MORNING": "morning light",
    "AFTERNOON": "afternoon light",
    "EVENING": "evening light",
    "DAWN": "dawn light",
    "DUSK": "dusk",
    "SUNRISE": "sunrise",
    "SUNSET": "sunset",
    "TWILIGHT": "twilight",
    "MIDNIGHT": "midnight",
    "NOON": "midday sun",
    "GOLDEN HOUR": "golden hour",
    "MAGIC HOUR": "golden hour",
}
# Times that say "as the scene before": its lighting carries over.
_SAME_TIME = {"CONTINUOUS", "LATER", "MOMENTS LATER", "SAME", "SAME TIME"}
_PREFIX_DESCRIPTION = {
    "INT": "Interior",
    "EXT": "Exterior",
    "EST": "Exterior, establishing shot",
    "I/E": "Interior and exterior",
}
_EXTENSION_DELIVERY = {
    "V.O.": "voice-over",
    "VO": "voice-over",
    "O.S.": "off screen",
    "O.C.": "off screen",
    "OS": "off screen",
    "CONT'D": "",
    "CONT’D": "",
    "CONT.": "",
}
_SCENE_NOTE_KEYS = frozenset(
    set(SceneNode.model_fields) - {"takes", "status", "selected_take"} | {"follows"}
)
_ENTITY_NOTE_KEYS = {
    "characters": frozenset(set(Character.model_fields) - {"reference_images"}),
    "environments": frozenset(set(Environment.model_fields) - {"reference_images"}),
}
_STORY_NOTE_KEYS = frozenset({"title", "description", "characters", "environments"})


class ScriptError(StoryError):
    """A screenplay that cannot be read; ``line`` is where (1-based)."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source, self.line = source, line
        super().__init__(f"{source}, line {line}: {message}")


@dataclass(frozen=True)
class Unplaced:
    """Something of the screenplay the story has no place for."""

    line: int
    what: str
    text: str

    def __str__(self) -> str:
        shown = self.text if len(self.text) <= 80 else self.text[:79] + "…"
        return f"line {self.line}: {self.what}" + (f": {shown}" if shown else "")


@dataclass
class ScriptImport:
    """The story read from a screenplay and what it could not place."""

    story: Story
    unplaced: list[Unplaced] = field(default_factory=list)
    scene_lines: dict[str, int] = field(default_factory=dict)  # scene id -> line


# Decoding ----------------------------------------------------------------------------


def decode_script(data: bytes, source: str = "screenplay") -> str:
    """The text of a screenplay file: UTF-8 (a BOM is skipped), no control
    characters, line breaks as ``\\n``; `ScriptError` names the bad line."""
    if len(data) > MAX_SCRIPT_BYTES:
        raise ScriptError(
            source,
            1,
            f"the file is {len(data):,} bytes; a screenplay may have "
            f"at most {MAX_SCRIPT_BYTES:,}",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScriptError(
            source, line, "these bytes are not UTF-8 text; save the file as UTF-8"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    bad = _BAD_CHARACTER_RE.search(text.replace("\f", ""))
    if bad is not None:
        line = text[: bad.start()].count("\n") + 1
        raise ScriptError(
            source, line, f"control character U+{ord(bad.group()):04X}; remove it"
        )
    return text.replace("\f", "\n")


# Small derivations (the writer uses the same ones) ------------------------------------


def display_name(written: str) -> str:
    """A name as the story keeps it: ``MARA'S TRUCK`` -> ``Mara's Truck``; a
    name written in mixed case stays as written."""
    written = " ".join(written.split())
    return string.capwords(written) if written == written.upper() else written


def entity_key(written: str) -> str:
    """What makes two cues or two places the same entity."""
    return " ".join(written.split()).casefold()


def lighting_for_time(time: str, before: str) -> str:
    """A scene's lighting from its heading's time of day (``before``: the
    lighting of the scene before, for ``CONTINUOUS`` and the like)."""
    key = " ".join(time.split()).upper()
    if key in _SAME_TIME:
        return before
    return TIME_LIGHTING.get(key, key.lower())


def split_heading(heading: str) -> tuple[str, str, str]:
    """``(prefix, place, time)`` of a scene heading; prefix "" for a forced
    heading without one (a scene without a place).

    >>> split_heading("INT./EXT. MARA'S TRUCK - NIGHT #12#")
    ('I/E', "MARA'S TRUCK", 'NIGHT')
    """
    heading = _SCENE_NUMBER_RE.sub("", heading).strip()
    match = _HEADING_RE.match(heading)
    if match is None:
        return "", heading, ""
    prefix = match.group("prefix").upper().replace("INT./EXT", "I/E")
    prefix = "I/E" if prefix in ("INT/EXT", "I/E") else prefix
    rest = match.group("rest").strip()
    for dash in (" - ", " – ", " — "):
        place, sep, time = rest.rpartition(dash)
        if sep and place.strip():
            return prefix, place.strip(), time.strip()
    return prefix, rest, ""


def make_id(name: str, taken: set[str], fallback: str) -> str:
    """A new entity id from a name: lowercase, ``-`` between words, unique."""
    base = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:56] or fallback
    if not base[0].isalnum():
        base = f"{fallback}-{base}"[:56]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def transition_edge(text: str) -> str:
    """The edge a written transition stands for: a dissolve continues, every
    other transition cuts."""
    return "continuous" if "DISSOLVE" in text.upper() else "cut"


def authored_content(story: Story) -> dict[str, Any]:
    """What a writer authored in a story, for comparing two stories: title,
    description, characters, environments, scenes and transitions, by id.
    Left out: what generation made (takes, statuses, selected takes),
    settings, revisions, dates and reference images (files do not travel in
    a screenplay)."""
    no_refs = {"reference_images"}
    return {
        "title": story.title,
        "description": story.description,
        "characters": {
            c.id: c.model_dump(mode="json", exclude=no_refs) for c in story.characters
        },
        "environments": {
            e.id: e.model_dump(mode="json", exclude=no_refs) for e in story.environments
        },
        "scenes": {
            s.id: s.model_dump(
                mode="json", exclude={"takes", "status", "selected_take"}
            )
            for s in story.scenes
        },
        "edges": sorted(
            (e.source, e.target, e.transition, e.strength) for e in story.edges
        ),
    }


# Reading -----------------------------------------------------------------------------


@dataclass
class _Scene:
    """A scene as read, before it becomes a `SceneNode`."""

    line: int
    number: str
    prefix: str
    place: str
    time: str
    title: str = ""
    title_from_synopsis: bool = False
    transition: str | None = None  # the transition written before it
    transition_line: int = 0
    motion: list[str] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)  # entity keys, in order
    dialogue: list[dict[str, Any]] = field(default_factory=list)
    note: dict[str, Any] | None = None
    note_line: int = 0


@dataclass
class _Reading:
    source: str
    scenes: list[_Scene] = field(default_factory=list)
    cues: dict[str, str] = field(default_factory=dict)  # key -> as written first
    places: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (p, w)
    unplaced: list[Unplaced] = field(default_factory=list)
    outline: list[str] = field(default_factory=list)
    pending_section: tuple[int, str] | None = None
    story_note: dict[str, Any] | None = None
    story_note_line: int = 0
    transition: tuple[int, str] | None = None
    title: str = ""
    front: list[str] = field(default_factory=list)  # the title page's other lines
    lines: dict[str, int] = field(default_factory=dict)  # cue or place key -> line

    def skip(self, element: FountainElement, what: str) -> None:
        self.unplaced.append(Unplaced(element.line_number, what, element.text))


def _note(reading: _Reading, element: FountainElement) -> dict[str, Any] | None:
    """The JSON of a StoryGraph note, or None for a writer's note."""
    match = _NOTE_RE.match(element.text.strip())
    if match is None:
        return None
    try:
        value = json.loads(match.group("json"))
    except json.JSONDecodeError as exc:
        raise ScriptError(
            reading.source,
            element.line_number,
            f"the {NOTE_TAG} note is not valid JSON ({exc.msg}); fix or remove it",
        ) from None
    if not isinstance(value, dict):
        raise ScriptError(
            reading.source,
            element.line_number,
            f"the {NOTE_TAG} note must hold a JSON object",
        )
    return value


def _check_keys(
    reading: _Reading, line: int, value: dict[str, Any], allowed: frozenset[str]
) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ScriptError(
            reading.source,
            line,
            f"the {NOTE_TAG} note names {', '.join(map(repr, unknown))}, which "
            f"it cannot set; use {', '.join(sorted(allowed))}",
        )


def _on_note(reading: _Reading, element: FountainElement) -> None:
    value = _note(reading, element)
    if value is None:
        reading.skip(element, "note")
        return
    if not reading.scenes:
        _check_keys(reading, element.line_number, value, _STORY_NOTE_KEYS)
        reading.story_note, reading.story_note_line = value, element.line_number
        return
    scene = reading.scenes[-1]
    _check_keys(reading, element.line_number, value, _SCENE_NOTE_KEYS)
    scene.note, scene.note_line = value, element.line_number


def _on_heading(reading: _Reading, element: FountainElement) -> None:
    prefix, place, time = split_heading(element.text)
    number = str(element.metadata.get("scene_number") or "")
    scene = _Scene(element.line_number, number, prefix, place, time)
    if not prefix:  # a forced heading: no place, its text is the title
        scene.title, scene.place = display_name(place), ""
    elif reading.pending_section is not None:
        scene.title = reading.pending_section[1]
    reading.pending_section = None
    if reading.transition is not None:
        scene.transition_line, scene.transition = reading.transition
        reading.transition = None
    if prefix:
        reading.places.setdefault(entity_key(place), (prefix, place))
        reading.lines.setdefault(entity_key(place), element.line_number)
    reading.scenes.append(scene)


def _speech(
    reading: _Reading,
    cue: FountainElement,
    parts: list[FountainElement],
) -> None:
    """One speech: a cue, then dialogue and parentheticals."""
    scene = reading.scenes[-1]
    name = cue.text.strip()
    key = entity_key(name)
    reading.cues.setdefault(key, name)
    reading.lines.setdefault(key, cue.line_number)
    if key not in scene.speakers:
        scene.speakers.append(key)
    extension = str(cue.metadata.get("extension") or "").strip()
    how = _EXTENSION_DELIVERY.get(extension.upper(), extension.lower())
    delivery, words, first = how, [], cue.line_number + 1

    def flush() -> None:
        text = "\n".join(words).strip("\n")
        if text.strip():
            scene.dialogue.append(
                {"speaker": key, "text": text, "delivery": delivery, "line": first}
            )

    for part in parts:
        if part.type == ElementType.PARENTHETICAL:
            flush()
            said = part.text.strip().removeprefix("(").removesuffix(")").strip()
            delivery = ", ".join(x for x in (how, said) if x)
            words, first = [], part.line_number + 1
        else:
            words.append(part.text)
    flush()


def _walk(reading: _Reading, elements: list[FountainElement]) -> None:
    i = 0
    while i < len(elements):
        element = elements[i]
        kind = element.type
        i += 1
        if kind == ElementType.SCENE_HEADING:
            _on_heading(reading, element)
        elif kind == ElementType.NOTE:
            _on_note(reading, element)
        elif kind == ElementType.SECTION:
            reading.outline.append(
                "#" * int(element.metadata.get("level") or 1)
                + " "
                + element.text.strip()
            )
            reading.pending_section = (element.line_number, element.text.strip())
        elif kind == ElementType.SYNOPSIS:
            scene = reading.scenes[-1] if reading.scenes else None
            if (
                scene is not None
                and not scene.motion
                and not scene.dialogue
                and (not scene.title_from_synopsis)
            ):
                scene.title, scene.title_from_synopsis = element.text.strip(), True
            else:
                reading.outline.append(element.text.strip())
        elif kind == ElementType.TRANSITION:
            if reading.transition is not None:
                reading.unplaced.append(
                    Unplaced(
                        reading.transition[0],
                        "transition followed by another",
                        reading.transition[1],
                    )
                )
            reading.transition = (element.line_number, element.text.strip())
        elif kind in (ElementType.PAGE_BREAK, ElementType.BONEYARD):
            continue  # layout and text the writer cut: nothing to place
        elif not reading.scenes:
            reading.skip(element, "before the first scene heading")
            if kind == ElementType.CHARACTER:
                while i < len(elements) and elements[i].type in (
                    ElementType.DIALOGUE,
                    ElementType.PARENTHETICAL,
                ):
                    reading.skip(elements[i], "before the first scene heading")
                    i += 1
        elif kind == ElementType.ACTION:
            reading.scenes[-1].motion.append(element.text)
        elif kind == ElementType.CHARACTER:
            parts = []
            while i < len(elements) and elements[i].type in (
                ElementType.DIALOGUE,
                ElementType.PARENTHETICAL,
            ):
                parts.append(elements[i])
                i += 1
            if parts:
                _speech(reading, element, parts)
            else:
                reading.skip(element, "character cue without dialogue")
        elif kind == ElementType.DUAL_DIALOGUE:
            reading.unplaced.append(
                Unplaced(
                    element.line_number,
                    "dual dialogue, read as one line after the other",
                    "",
                )
            )
            for side in ("left", "right"):
                cue = element.metadata.get(f"{side}_character")
                parts = element.metadata.get(f"{side}_dialogue") or []
                if isinstance(cue, FountainElement) and isinstance(parts, list):
                    _speech(reading, cue, parts)
        elif kind == ElementType.CENTERED:
            reading.skip(element, "centred text")
        elif kind == ElementType.LYRICS:
            reading.skip(element, "lyrics")
        else:
            reading.skip(element, kind.value.replace("_", " "))
    if reading.transition is not None:
        line, text = reading.transition
        reading.unplaced.append(Unplaced(line, "transition after the last scene", text))


def _parse(text: str, source: str) -> _Reading:
    parser = FountainParser()
    for issue in parser.validate(text):
        if issue.severity == "error" and issue.code != "empty-document":
            raise ScriptError(source, issue.line_number, f"{issue.message}; close it")
    document = parser.parse(text)
    reading = _Reading(source)
    _walk(reading, list(document.elements))
    if not reading.scenes:
        raise ScriptError(
            source,
            1,
            "no scene heading: a scene starts with a line such as "
            "'INT. KITCHEN - NIGHT' or 'EXT. BEACH - DAY'",
        )
    _title_page(reading, dict(document.metadata))
    return reading


def _title_page(reading: _Reading, metadata: dict[str, Any]) -> None:
    title_lines = [_plain(x) for x in str(metadata.pop("title", "")).splitlines()]
    title_lines = [x for x in title_lines if x]
    reading.title = display_name(title_lines[0]) if title_lines else ""
    extra = title_lines[1:] + [
        f"{key.capitalize()}: {' / '.join(str(value).split(chr(10)))}"
        for key, value in metadata.items()
        if str(value).strip()
    ]
    reading.front = extra


def _plain(text: str) -> str:
    """Text without Fountain's emphasis markers."""
    return (
        re.sub(r"(?<!\\)[*_]", "", text).replace("\\*", "*").replace("\\_", "_").strip()
    )


# Building the story -------------------------------------------------------------------


def _clip(reading: _Reading, line: int, what: str, text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    reading.unplaced.append(
        Unplaced(
            line,
            f"{what} over {limit:,} characters; the rest was left out",
            text[limit:],
        )
    )
    return text[:limit]


def _entities(reading: _Reading) -> tuple[dict[str, Character], dict[str, Environment]]:
    taken: set[str] = set()
    characters = {
        key: Character(
            id=make_id(display_name(written), taken, "character"),
            name=_clip(
                reading,
                reading.lines[key],
                "character name",
                display_name(written),
                MAX_NAME,
            ),
        )
        for key, written in reading.cues.items()
    }
    taken = set()
    environments = {
        key: Environment(
            id=make_id(display_name(written), taken, "place"),
            name=_clip(
                reading,
                reading.lines[key],
                "place name",
                display_name(written),
                MAX_NAME,
            ),
            description=_PREFIX_DESCRIPTION.get(prefix, ""),
        )
        for key, (prefix, written) in reading.places.items()
    }
    return characters, environments


def _mentioned(motion: str, characters: dict[str, Character]) -> list[str]:
    """Keys of the characters whose names appear in ``motion``, in order."""
    found = []
    for key, character in characters.items():
        match = re.search(rf"\b{re.escape(character.name)}\b", motion, re.IGNORECASE)
        if match is not None:
            found.append((match.start(), key))
    return [key for _, key in sorted(found)]


def _scene_node(
    reading: _Reading,
    index: int,
    read: _Scene,
    characters: dict[str, Character],
    environments: dict[str, Environment],
    lighting_before: str,
) -> SceneNode:
    motion = _clip(reading, read.line, "action", "\n\n".join(read.motion), MAX_TEXT)
    keys = read.speakers + [
        k for k in _mentioned(motion, characters) if k not in read.speakers
    ]
    dialogue = []
    for spoken in read.dialogue:
        if len(dialogue) == MAX_DIALOGUE_LINES:
            reading.unplaced.append(
                Unplaced(
                    spoken["line"],
                    f"dialogue past the {MAX_DIALOGUE_LINES} lines a scene holds",
                    spoken["text"],
                )
            )
            continue
        dialogue.append(
            {
                "character_id": characters[spoken["speaker"]].id,
                "text": _clip(
                    reading,
                    spoken["line"],
                    "dialogue line",
                    spoken["text"],
                    MAX_LINE_CHARS,
                ),
                "delivery": _clip(
                    reading, spoken["line"], "parenthetical", spoken["delivery"], 80
                ),
            }
        )
    time = "" if " ".join(read.time.split()).upper() in _SAME_TIME else read.time
    title = (
        read.title
        or display_name(" - ".join(x for x in (read.place, time) if x))
        or f"Scene {index}"
    )
    return SceneNode.model_validate(
        {
            "id": f"scene-{index}",
            "title": _clip(reading, read.line, "scene title", title, MAX_TITLE),
            "character_ids": [characters[k].id for k in keys][:64],
            "environment_id": (
                environments[entity_key(read.place)].id if read.prefix else None
            ),
            "lighting": lighting_for_time(read.time, lighting_before),
            "motion": motion,
            "dialogue": dialogue,
        }
    )


def _derive(reading: _Reading, fallback_title: str) -> Story:
    """The story a screenplay says, before its StoryGraph notes."""
    characters, environments = _entities(reading)
    scenes: list[SceneNode] = []
    edges: list[SceneEdge] = []
    lighting = ""
    for index, read in enumerate(reading.scenes, start=1):
        scene = _scene_node(reading, index, read, characters, environments, lighting)
        lighting = scene.lighting
        if scenes:
            if read.transition is not None:
                transition = transition_edge(read.transition)
            else:
                same = " ".join(read.time.split()).upper() == "CONTINUOUS"
                transition = "continuous" if same else "cut"
            edges.append(
                SceneEdge(source=scenes[-1].id, target=scene.id, transition=transition)
            )
        elif read.transition is not None:
            reading.unplaced.append(
                Unplaced(
                    read.transition_line,
                    "transition before the first scene",
                    read.transition,
                )
            )
        scenes.append(scene)
    description = "\n".join([*reading.front, *reading.outline])
    title = reading.title or (
        reading.outline[0].lstrip("# ") if reading.outline else fallback_title
    )
    return Story.model_construct(
        title=title[:MAX_STORY_TITLE] or "Screenplay",
        description=description[:MAX_TEXT],
        characters=list(characters.values()),
        environments=list(environments.values()),
        scenes=scenes,
        edges=edges,
    )


# StoryGraph notes --------------------------------------------------------------------


def _apply_entity_notes(
    reading: _Reading,
    story: dict[str, Any],
    kind: str,
    keys: dict[str, str],  # entity key -> id as derived
) -> dict[str, str]:
    """Apply the story note's entries for characters or environments; returns
    how ids changed (derived id -> final id)."""
    note = (reading.story_note or {}).get(kind) or {}
    if not isinstance(note, dict):
        raise ScriptError(
            reading.source,
            reading.story_note_line,
            f"{kind} in the {NOTE_TAG} note must be a JSON object",
        )
    items = {item["id"]: item for item in story[kind]}
    renamed: dict[str, str] = {}
    ordered: list[dict[str, Any]] = []
    taken = set(items)
    for written, fields in note.items():
        if not isinstance(fields, dict):
            raise ScriptError(
                reading.source,
                reading.story_note_line,
                f"{kind}.{written} in the {NOTE_TAG} note must be a JSON object",
            )
        _check_keys(reading, reading.story_note_line, fields, _ENTITY_NOTE_KEYS[kind])
        derived = keys.get(entity_key(written))
        if derived is None:  # an entity no scene names: all of it is in the note
            fallback = "character" if kind == "characters" else "place"
            item = {
                "id": make_id(display_name(written), taken, fallback),
                "name": display_name(written),
            }
        else:
            item = items.pop(derived)
        old = item["id"]
        item.update(fields)
        renamed[old] = item["id"]
        ordered.append(item)
    story[kind] = ordered + list(items.values())
    return renamed


def _apply_notes(reading: _Reading, derived: Story) -> dict[str, Any]:
    """The story as a dict, with every StoryGraph note applied."""
    story = derived.model_dump(mode="json", exclude_defaults=False)
    note = reading.story_note or {}
    for key in ("title", "description"):
        if key in note:
            story[key] = note[key]
    char_keys = {
        entity_key(w): c["id"]
        for w, c in zip(reading.cues, story["characters"], strict=True)
    }
    env_keys = {
        k: e["id"] for k, e in zip(reading.places, story["environments"], strict=True)
    }
    chars = _apply_entity_notes(reading, story, "characters", char_keys)
    envs = _apply_entity_notes(reading, story, "environments", env_keys)
    scene_ids: dict[str, str] = {}
    numbers: dict[str, str] = {}
    for read, scene in zip(reading.scenes, story["scenes"], strict=True):
        scene["character_ids"] = [chars.get(c, c) for c in scene["character_ids"]]
        for line in scene["dialogue"]:
            line["character_id"] = chars.get(line["character_id"], line["character_id"])
        if scene["environment_id"] is not None:
            scene["environment_id"] = envs.get(
                scene["environment_id"], scene["environment_id"]
            )
        derived_id = scene["id"]
        scene.update({k: v for k, v in (read.note or {}).items() if k != "follows"})
        scene_ids[derived_id] = scene["id"]
        if read.number:
            numbers[read.number] = scene["id"]
    story["edges"] = _edges(reading, story, scene_ids, numbers)
    return story


def _edges(
    reading: _Reading,
    story: dict[str, Any],
    scene_ids: dict[str, str],
    numbers: dict[str, str],
) -> list[dict[str, Any]]:
    edges = [
        {**e, "source": scene_ids[e["source"]], "target": scene_ids[e["target"]]}
        for e in story["edges"]
    ]
    for read, scene in zip(reading.scenes, story["scenes"], strict=True):
        follows = (read.note or {}).get("follows")
        if follows is None:
            continue
        if not isinstance(follows, dict):
            raise ScriptError(
                reading.source,
                read.note_line,
                "follows must map scene numbers to 'cut' or 'continuous'",
            )
        edges = [e for e in edges if e["target"] != scene["id"]]
        for number, how in follows.items():
            if number not in numbers:
                raise ScriptError(
                    reading.source,
                    read.note_line,
                    f"follows names scene #{number}#, which no heading has",
                )
            how = how if isinstance(how, dict) else {"transition": how}
            edges.append({"source": numbers[number], "target": scene["id"], **how})
    return edges


def read_script(text: str, source: str = "screenplay", title: str = "") -> ScriptImport:
    """A story from a screenplay's text (`decode_script` for a file's bytes).

    ``title`` is used when neither a title page nor a section names the story.
    Raises `ScriptError` naming the line it could not read.
    """
    reading = _parse(text, source)
    derived = _derive(reading, title or "Screenplay")
    data = _apply_notes(reading, derived)
    try:
        story = Story.model_validate(data)
    except ValidationError as exc:
        raise _located(reading, exc) from None
    lines = {s.id: r.line for r, s in zip(reading.scenes, story.scenes, strict=True)}
    unplaced = sorted(reading.unplaced, key=lambda u: u.line)
    return ScriptImport(story, unplaced, lines)


def _located(reading: _Reading, exc: ValidationError) -> ScriptError:
    """The first schema problem, at the line of the scene (or note) it is in."""
    path, message = validation_problems(exc)[0]
    line = reading.story_note_line or 1
    match = re.match(r"scenes\[(\d+)\]", path)
    if match is not None and int(match.group(1)) < len(reading.scenes):
        read = reading.scenes[int(match.group(1))]
        line = read.note_line or read.line
    return ScriptError(reading.source, line, f"{path}: {message}")


def read_script_bytes(
    data: bytes, source: str = "screenplay", title: str = ""
) -> ScriptImport:
    """`read_script` of a file's bytes (UTF-8)."""
    return read_script(decode_script(data, source), source, title)
