"""Undo and redo of story edits: a bounded history of what each edit changed.

``kg_state.json`` keeps one previous version (``kg_state.json.bak``,
`kg.store`), which is not enough to walk back several edits, and restoring a
whole earlier file would also drop the takes a generation recorded since. So
every edit made through `kg.edits.edit_story` records what it changed, item
by item (a scene, a character, an environment, an edge, the settings, the
story's title and description), before and after, in
``<story>/.kg_history.json``:

    {"version": 1, "position": 2,
     "entries": [{"label": "edit scene arrival (pose)", "revision": 7,
                  "changes": [["scenes", "arrival", {...}, {...}], ...]}]}

Entries before ``position`` can be undone, those from it on redone; a new edit
drops the redo side. At most `MAX_ENTRIES` are kept. Undo writes the "before"
side of each changed item onto the newest revision (and redo the "after"
side), so work saved in between, such as the takes of a scene generated since,
stays: a scene keeps its takes and selected take, and only its authored
fields go back. The file is written atomically, under the story's lock, and
never through a link (`kg.paths`), like the state file itself.

Examples
--------
>>> changes = _diff({"scenes": {"a": {"title": "A"}}}, {"scenes": {}})
>>> changes
[['scenes', 'a', {'title': 'A'}, None]]
>>> describe(changes)
'delete scene a'
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kg.errors import StoryFileError, StoryValidationError, UnsafePathError
from kg.paths import read_regular_file, refuse_link, write_atomic
from kg.schema import (
    GENERATED_STATUSES,
    Character,
    Environment,
    SceneEdge,
    SceneNode,
    Settings,
    Story,
)

__all__ = [
    "HISTORY_FILE",
    "MAX_ENTRIES",
    "HistoryStep",
    "Undone",
    "snapshot",
    "record",
    "describe",
    "next_steps",
    "undo",
    "redo",
]

log = logging.getLogger(__name__)

HISTORY_FILE = ".kg_history.json"
MAX_ENTRIES = 50  # each entry holds only the items an edit changed
_MAX_BYTES = 64 * 2**20
_VERSION = 1
# What the engine writes on a scene: never taken back by an undo.
_GENERATED_FIELDS = ("status", "takes", "selected_take")

Item = dict[str, Any]
Change = list[Any]  # [section, key, before item | None, after item | None]
Snapshot = dict[str, dict[str, Item]]
HistoryStep = tuple[str | None, str | None]  # (what undo undoes, what redo redoes)


@dataclass(frozen=True)
class Undone:
    """An entry undone or redone: its label and the items it wrote."""

    label: str
    items: tuple[tuple[str, str], ...]  # (section, key): ("scenes", "arrival")


def snapshot(story: Story) -> Snapshot:
    """The story's items by section and key, as JSON values."""
    return {
        "scenes": {s.id: s.model_dump(mode="json") for s in story.scenes},
        "characters": {c.id: c.model_dump(mode="json") for c in story.characters},
        "environments": {e.id: e.model_dump(mode="json") for e in story.environments},
        "edges": {
            f"{e.source}->{e.target}": e.model_dump(mode="json") for e in story.edges
        },
        "settings": {"": story.settings.model_dump(mode="json")},
        "story": {"": {"title": story.title, "description": story.description}},
    }


def _authored(section: str, item: Item | None) -> Item | None:
    if item is None or section != "scenes":
        return item
    return {k: v for k, v in item.items() if k not in _GENERATED_FIELDS}


def _diff(before: Snapshot, after: Snapshot) -> list[Change]:
    changes: list[Change] = []
    for section in dict.fromkeys([*before, *after]):
        old, new = before.get(section, {}), after.get(section, {})
        for key in dict.fromkeys([*old, *new]):
            a, b = old.get(key), new.get(key)
            if _authored(section, a) != _authored(section, b):
                changes.append([section, key, a, b])
    return changes


def _one(change: Change) -> str:
    section, key, before, after = change
    if section == "settings":
        old, new = before or {}, after or {}
        fields = [f for f in new if old.get(f) != new.get(f)]
        more = ", …" if len(fields) > 3 else ""
        return f"settings ({', '.join(fields[:3])}{more})"
    if section == "story":
        return "story title and description"
    if section == "edges":
        source, _, target = key.partition("->")
        arrow = f"{source} → {target}"
        if before is None:
            return f"connect {arrow}"
        if after is None:
            return f"disconnect {arrow}"
        return f"make {arrow} {after['transition']}"
    noun = section[:-1]
    if before is None:
        return f"add {noun} {key}"
    if after is None:
        return f"delete {noun} {key}"
    fields = [
        f for f in after if f not in _GENERATED_FIELDS and before.get(f) != after.get(f)
    ]
    more = ", …" if len(fields) > 3 else ""
    return f"edit {noun} {key} ({', '.join(fields[:3])}{more})"


def describe(changes: list[Change]) -> str:
    """What an entry changed, in a few words ("edit scene a (pose)")."""
    # a scene added or deleted brings its edges along: name the scene
    scenes = [c for c in changes if c[0] == "scenes" and (c[2] is None or c[3] is None)]
    shown = scenes or changes
    text = "; ".join(_one(c) for c in shown[:2])
    rest = len(shown) - 2
    return text + (f" and {rest} more" if rest > 0 else "")


# The history file ------------------------------------------------------------------


def _file(folder: Path) -> Path:
    return refuse_link(Path(folder) / HISTORY_FILE)


def _load(folder: Path) -> dict[str, Any]:
    empty = {"version": _VERSION, "position": 0, "entries": []}
    try:
        data = read_regular_file(_file(folder), _MAX_BYTES)
    except FileNotFoundError:
        return empty
    except (OSError, UnsafePathError, StoryFileError):
        return empty  # unreadable: the story itself is unaffected; start afresh
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return empty
    if (
        not isinstance(doc, dict)
        or doc.get("version") != _VERSION
        or not isinstance(doc.get("entries"), list)
        or not isinstance(doc.get("position"), int)
        or not 0 <= doc["position"] <= len(doc["entries"])
    ):
        return empty
    return doc


def _save(folder: Path, doc: dict[str, Any]) -> None:
    write_atomic(_file(folder), json.dumps(doc, separators=(",", ":")).encode())


def record(folder: Path, before: Snapshot, after: Story) -> None:
    """Add the edit that turned ``before`` into ``after`` (call under the lock).

    The edit is saved already: a history that cannot be written (a link in its
    place, a full disk) is logged and leaves the edit without an undo.
    """
    changes = _diff(before, snapshot(after))
    if not changes:
        return
    try:
        _record(folder, changes, after.revision)
    except (OSError, UnsafePathError) as exc:
        log.warning("edit saved without undo: %s: %s", Path(folder) / HISTORY_FILE, exc)


def _record(folder: Path, changes: list[Change], revision: int) -> None:
    doc = _load(folder)
    entries = doc["entries"][: doc["position"]]  # a new edit drops the redo side
    entries.append(
        {"label": describe(changes), "revision": revision, "changes": changes}
    )
    entries = entries[-MAX_ENTRIES:]
    _save(folder, {"version": _VERSION, "position": len(entries), "entries": entries})


def next_steps(folder: Path) -> HistoryStep:
    """What undo and redo would do now (None: nothing to undo or redo)."""
    doc = _load(folder)
    entries, position = doc["entries"], doc["position"]
    undo_label = entries[position - 1]["label"] if position > 0 else None
    redo_label = entries[position]["label"] if position < len(entries) else None
    return undo_label, redo_label


# Applying an entry -----------------------------------------------------------------

_MODELS = {"characters": Character, "environments": Environment}


def _scene(current: SceneNode | None, target: Item) -> SceneNode:
    """``target``'s authored fields; the takes, and their status, of ``current``."""
    if current is None:
        return SceneNode.model_validate(target)
    data = current.model_dump(mode="json")
    data.update(_authored("scenes", target) or {})
    scene = SceneNode.model_validate(data)
    if _authored("scenes", scene.model_dump(mode="json")) == _authored(
        "scenes", current.model_dump(mode="json")
    ):
        return scene
    same_takes = (scene.selected_take, len(scene.takes)) == (
        target.get("selected_take"),
        len(target.get("takes", [])),
    )
    if scene.status == "stale" and same_takes and target["status"] != "stale":
        scene.status = target["status"]  # back to what its takes were made from
    elif scene.status in GENERATED_STATUSES and scene.takes:
        scene.status = "stale"  # its takes no longer match its description
    return scene


def _replace(items: list[Any], key: str, item: Any, key_of: Any) -> list[Any]:
    out = [x for x in items if key_of(x) != key]
    if item is None:
        return out
    for i, x in enumerate(items):
        if key_of(x) == key:
            out.insert(i, item)
            return out
    return [*out, item]


def _apply(story: Story, changes: list[Change], side: int) -> None:
    """Write side 2 (before) or 3 (after) of every change onto ``story``."""
    for change in changes:
        section, key, target = change[0], change[1], change[side]
        if section == "scenes":
            current = next((s for s in story.scenes if s.id == key), None)
            item = None if target is None else _scene(current, target)
            story.scenes = _replace(story.scenes, key, item, lambda s: s.id)
        elif section in _MODELS:
            item = None if target is None else _MODELS[section].model_validate(target)
            items = _replace(getattr(story, section), key, item, lambda x: x.id)
            setattr(story, section, items)
        elif section == "edges":
            item = None if target is None else SceneEdge.model_validate(target)
            story.edges = _replace(
                story.edges, key, item, lambda e: f"{e.source}->{e.target}"
            )
        elif section == "settings" and target is not None:
            story.settings = Settings.model_validate(target)
        elif section == "story" and target is not None:
            story.title, story.description = target["title"], target["description"]


def _step(folder: Path, undoing: bool) -> Undone | None:
    from kg.edits import _revalidate  # the checks every edit passes
    from kg.store import STATE_FILE, story_lock, update_story

    folder = Path(folder)
    with story_lock(folder):
        doc = _load(folder)
        entries, position = doc["entries"], doc["position"]
        index = position - 1 if undoing else position
        if not 0 <= index < len(entries):
            return None
        entry = entries[index]

        def mutate(story: Story) -> None:
            _apply(story, entry["changes"], 2 if undoing else 3)
            try:
                _revalidate(story, str(folder / STATE_FILE))
            except StoryValidationError as exc:
                what = "Undo" if undoing else "Redo"
                raise StoryValidationError(
                    f"{what} of '{entry['label']}'", exc.problems
                ) from None

        update_story(folder, mutate)
        doc["position"] = index if undoing else index + 1
        _save(folder, doc)
    items = tuple((str(c[0]), str(c[1])) for c in entry["changes"])
    return Undone(str(entry["label"]), items)


def undo(folder: Path) -> Undone | None:
    """Undo the latest edit not yet undone; returns what it undid (None: none).

    Raises `StoryValidationError` when the story moved on so that the edit
    cannot be taken back (a scene it added now has edits of its own that
    depend on it); nothing is written then.
    """
    return _step(folder, undoing=True)


def redo(folder: Path) -> Undone | None:
    """Redo the latest undone edit; returns what it redid (None: none)."""
    return _step(folder, undoing=False)
