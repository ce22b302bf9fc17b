"""A story written out as a Fountain screenplay that reads back as the same story.

The screenplay follows the Fountain syntax (https://fountain.io/syntax) the
way `kg.fountain` reads it: a title page, then each scene in story order as
a numbered scene heading (``INT. LIGHTHOUSE - NIGHT #1#``; the environment's
place, the lighting as time of day), its title as a synopsis, its motion as
action, its dialogue under character cues with the delivery as a
parenthetical, and the transition to the next scene (``CUT TO:``, or
``DISSOLVE TO:`` for a continuous edge).

What a screenplay cannot say (a camera move, a seed, an id, a description,
a branch of the story) goes into ``[[storygraph {...}]]`` notes: the writer
first writes the plain screenplay, reads it back, and notes exactly the
fields that did not come back, then checks that the whole file reads back
as the same story (`kg.fountain.authored_content`). Writers can edit the
file in any Fountain tool; a note they leave alone keeps its fields.

Examples
--------
>>> from kg.example import example_story
>>> from kg.fountain import authored_content, read_script
>>> story = example_story()
>>> text = write_script(story)
>>> text.splitlines()[0]
"Title: The Lighthouse Keeper's Daughter"
>>> authored_content(read_script(text).story) == authored_content(story)
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from kg.fountain import (
    NOTE_TAG,
    TIME_LIGHTING,
    ScriptError,
    authored_content,
    display_name,
    entity_key,
    read_script,
)
from kg.graph import DynamicSceneGraph, generation_order
from kg.lines import line as story_line
from kg.schema import Character, Environment, SceneNode, Story

__all__ = ["write_script"]

_LIGHTING_TIME = {lighting: time for time, lighting in reversed(TIME_LIGHTING.items())}
_DESCRIPTION_PREFIX = {
    "Interior": "INT.",
    "Exterior": "EXT.",
    "Exterior, establishing shot": "EST.",
    "Interior and exterior": "INT./EXT.",
}
_CUE_RE = re.compile(r"^[A-Z][A-Z0-9 .'\-]*$")
_PLACE_RE = re.compile(r"^[A-Z0-9][A-Z0-9 .,'&\-]*$")
_TIME_RE = re.compile(r"^[a-z][a-z ]*$")
_HEADING_START = re.compile(r"^(int|ext|est|i/e)[.\s/]", re.IGNORECASE)
_SCENE_KEYS = ("takes", "status", "selected_take")


# Plain text of each element ----------------------------------------------------------


def _body(text: str) -> str:
    """Text as a Fountain body: emphasis markers escaped, no note or boneyard
    openers (a note holds the exact text where this changes it)."""
    text = text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")
    return text.replace("[[", "[ [").replace("]]", "] ]").replace("/*", "/ *")


def _risky(line: str) -> bool:
    """Would this action line read as something else than action?"""
    stripped = line.strip()
    return (
        not stripped
        or stripped[0] in ".!@#=~>[(^"
        or stripped != line
        or bool(_HEADING_START.match(stripped))
        or (stripped.upper() == stripped and any(c.isalpha() for c in stripped))
        or stripped.endswith("TO:")
        or stripped.startswith("===")
    )


def _action(motion: str) -> list[str]:
    """Motion as action paragraphs, each line forced as action where needed."""
    blocks: list[str] = []
    if not motion.strip():
        return blocks
    for paragraph in re.split(r"\n\s*\n", motion.strip()):
        lines = [_body(x) for x in paragraph.split("\n")]
        blocks.append("\n".join("!" + x if _risky(x) else x for x in lines))
    return [b for b in blocks if b.strip()]


def _speech(cue: str, delivery: str, text: str) -> str:
    rows = [cue]
    if delivery:
        rows.append(f"({_body(delivery).replace(chr(10), ' ')})")
    rows += [_body(x) if x.strip() else "  " for x in text.split("\n")]
    return "\n".join(rows)


def _single_line(text: str) -> str:
    return " ".join(_body(text).split())


# Names in the screenplay -------------------------------------------------------------


def _unique(
    items: Sequence[Character] | Sequence[Environment], pattern: re.Pattern[str]
) -> dict[str, str]:
    """A name for each entity as the screenplay writes it (a cue or a place):
    its name in capitals, else its id in capitals, never one twice."""
    written: dict[str, str] = {}
    used: set[str] = set()
    for item in items:
        for candidate in (item.name.upper(), item.id.upper(), f"{item.id.upper()} X"):
            candidate = " ".join(candidate.split())
            key = entity_key(candidate)
            if pattern.match(candidate) and key not in used and " - " not in candidate:
                written[item.id] = candidate
                used.add(key)
                break
    return written


def _time(lighting: str) -> str:
    if lighting in _LIGHTING_TIME:
        return _LIGHTING_TIME[lighting]
    return lighting.upper() if _TIME_RE.match(lighting) else ""


# The screenplay ---------------------------------------------------------------------


def _note(value: dict[str, Any]) -> str:
    """A StoryGraph note: JSON that no Fountain reader takes for markup."""
    data = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    data = (
        data.replace("\\\\", "\\u005c")
        .replace("*", "\\u002a")
        .replace("\u2028", "\\u2028")
    )
    data = data.replace("\u2029", "\\u2029")
    data = data.replace("[[", "[\\u005b").replace("]]", "]\\u005d")
    return f"[[{NOTE_TAG} {data}]]"


def _heading(scene: SceneNode, story: Story, places: dict[str, str], n: int) -> str:
    if scene.environment_id is None:
        title = _single_line(scene.title).upper().lstrip(".!")
        readable = _CUE_RE.match(title) and not _HEADING_START.match(title)
        plain = title if readable else f"SCENE {n}"
        return f".{plain} #{n}#"
    env = story.environment(scene.environment_id)
    prefix = _DESCRIPTION_PREFIX.get(env.description, "INT.")
    time = _time(scene.lighting)
    place = places[env.id]
    return f"{prefix} {place}" + (f" - {time}" if time else "") + f" #{n}#"


def _render(
    story: Story,
    order: list[str],
    edges: dict[tuple[str, str], str],
    notes: dict[str, Any],
) -> str:
    cues = _unique(story.characters, _CUE_RE)
    places = _unique(story.environments, _PLACE_RE)
    blocks = [f"Title: {_single_line(story.title)}"]
    if notes.get("story"):
        blocks.append(_note(notes["story"]))
    previous: str | None = None
    for n, sid in enumerate(order, start=1):
        scene = story.scene(sid)
        if previous is not None and (previous, sid) in edges:
            cut = edges[(previous, sid)] == "cut"
            blocks.append("CUT TO:" if cut else "DISSOLVE TO:")
        blocks.append(_heading(scene, story, places, n))
        blocks.append(f"= {_single_line(scene.title)}")
        if sid in notes:
            blocks.append(_note(notes[sid]))
        blocks += _action(scene.motion)
        blocks += [
            _speech(cues[line.character_id], line.delivery, line.text)
            for line in scene.dialogue
        ]
        previous = sid
    return "\n\n".join(blocks) + "\n"


def _diff(have: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in want.items() if have.get(k) != v}


def _entity_notes(story: Story, derived: Story, kind: str) -> dict[str, dict[str, Any]]:
    """Per entity, keyed as the screenplay writes it: the fields that did not
    come back (every field of one no scene names)."""
    mine = story.characters if kind == "characters" else story.environments
    theirs = derived.characters if kind == "characters" else derived.environments
    written = _unique(mine, _CUE_RE if kind == "characters" else _PLACE_RE)
    by_key = {entity_key(x.name): x for x in theirs}
    notes: dict[str, dict[str, Any]] = {}
    for item in mine:
        want = item.model_dump(mode="json", exclude={"reference_images"})
        back = by_key.get(entity_key(written[item.id]))
        have = {} if back is None else back.model_dump(mode="json")
        if back is None:
            have = {"name": display_name(written[item.id])}
        notes[written[item.id]] = _diff(have, want)
    return notes


def _incoming(
    story: Story, order: list[str]
) -> tuple[dict[tuple[str, str], str], dict[str, dict[str, Any]]]:
    """Edges written as transitions (between neighbours in the file) and, per
    scene whose incoming edges differ from that, its ``follows``."""
    inside = set(order)
    position = {sid: n for n, sid in enumerate(order, start=1)}
    written: dict[tuple[str, str], str] = {}
    follows: dict[str, dict[str, Any]] = {}
    for n, sid in enumerate(order):
        incoming = [e for e in story.edges if e.target == sid and e.source in inside]
        previous = order[n - 1] if n else None
        plain = [e for e in incoming if e.source == previous and e.strength == 1.0]
        for e in incoming:
            if e.source == previous:
                written[(e.source, sid)] = e.transition
        if len(incoming) != len(plain) or (previous is not None and not plain):
            follows[sid] = {
                str(position[e.source]): (
                    e.transition
                    if e.strength == 1.0
                    else {"transition": e.transition, "strength": e.strength}
                )
                for e in incoming
            }
    return written, follows


def write_script(story: Story, leaf: str | None = None) -> str:
    """The story (or the story line ending at ``leaf``) as Fountain text that
    `kg.fountain.read_script` reads back as the same story.

    Raises `ScriptError` in the unlikely case that something cannot be
    written so (the message names the scene and field).
    """
    graph = DynamicSceneGraph(story)
    order = list(story_line(graph, leaf).scenes) if leaf else generation_order(graph)
    if not order:
        raise ScriptError(story.title, 1, "the story has no scenes to write")
    part = _part(story, order)
    edges, follows = _incoming(part, order)
    plain = _render(part, order, edges, {})
    derived = read_script(plain, "written screenplay").story
    if len(derived.scenes) != len(order):
        raise ScriptError(
            story.title,
            1,
            "a scene's text reads as a scene heading; "
            "check the motion and dialogue for lines such as 'INT.'",
        )
    notes: dict[str, Any] = {}
    story_note = _diff(
        {"title": derived.title, "description": derived.description},
        {"title": part.title, "description": part.description},
    )
    for kind in ("characters", "environments"):
        entities = {k: v for k, v in _entity_notes(part, derived, kind).items() if v}
        if entities:
            story_note[kind] = entities
    notes["story"] = story_note
    for sid, back in zip(order, derived.scenes, strict=True):
        want = part.scene(sid).model_dump(mode="json", exclude=set(_SCENE_KEYS))
        have = back.model_dump(mode="json", exclude=set(_SCENE_KEYS))
        have = _mapped(have, derived, part)
        note = _diff(have, want)
        if sid in follows:
            note["follows"] = follows[sid]
        if note:
            notes[sid] = note
    text = _render(part, order, edges, notes)
    if authored_content(read_script(text, "written screenplay").story) != (
        authored_content(part)
    ):
        raise ScriptError(
            story.title,
            1,
            "the screenplay does not read back as "
            "the same story; write it as kg_state.json instead",
        )
    return text


def _mapped(scene: dict[str, Any], derived: Story, story: Story) -> dict[str, Any]:
    """A read-back scene with the ids of the entities it names turned into the
    story's own (matched as the screenplay names them)."""
    char_ids = _id_map(derived.characters, story.characters, _CUE_RE)
    env_ids = _id_map(derived.environments, story.environments, _PLACE_RE)
    scene = dict(scene)
    scene["character_ids"] = [char_ids.get(c, c) for c in scene["character_ids"]]
    scene["dialogue"] = [
        {**x, "character_id": char_ids.get(x["character_id"], x["character_id"])}
        for x in scene["dialogue"]
    ]
    if scene["environment_id"] is not None:
        scene["environment_id"] = env_ids.get(scene["environment_id"])
    return scene


def _id_map(
    derived: Sequence[Character] | Sequence[Environment],
    mine: Sequence[Character] | Sequence[Environment],
    pattern: re.Pattern[str],
) -> dict[str, str]:
    written = _unique(mine, pattern)
    by_key = {entity_key(w): i for i, w in written.items()}
    return {
        x.id: by_key[entity_key(x.name)]
        for x in derived
        if entity_key(x.name) in by_key
    }


def _part(story: Story, order: list[str]) -> Story:
    """The story restricted to ``order``'s scenes (all of it when all)."""
    if len(order) == len(story.scenes):
        return story
    keep = set(order)
    return Story.model_validate(
        {
            **story.model_dump(mode="json"),
            "scenes": [s.model_dump(mode="json") for s in story.scenes if s.id in keep],
            "edges": [
                e.model_dump(mode="json")
                for e in story.edges
                if e.source in keep and e.target in keep
            ],
        }
    )
