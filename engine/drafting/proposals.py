"""Proposals of the drafting model, shown per field and accepted per field.

A `Proposal` holds, for one scene, each field the model would change: what
it is now and what the model proposes. Nothing is written when a proposal is
made (only the record of the call, `kg.model_calls`); `accept_fields`
writes the fields the user accepts and only those, and refuses a field the
user changed since the proposal was made (their words win). A proposed next
scene is added on the first field accepted; its other fields stay
proposals. A story drafted from a logline (`StoryDraft`) is a new story,
saved only when the user creates it.

Answers name characters and environments by name; a name the story does not
have is refused (`AnswerRefused`) with the names it may use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from engine.drafting.answers import (
    AnswerRefused,
    RewriteAnswer,
    SceneAnswer,
    StoryAnswer,
    parse_answer,
)
from engine.drafting.client import chat
from engine.drafting.prompts import (
    logline_messages,
    next_scene_messages,
    rewrite_messages,
)
from kg.edits import add_scene, edit_story, save_scene
from kg.fountain import make_id
from kg.model_calls import ModelCall
from kg.schema import Character, Environment, SceneEdge, SceneNode, Story
from kg.settings import DraftingSettings
from kg.store import load_story

__all__ = [
    "FieldChange",
    "Proposal",
    "StoryDraft",
    "accept_fields",
    "draft_story",
    "propose_next_scene",
    "propose_rewrite",
]

SCENE_FIELDS = (
    "title",
    "character_ids",
    "environment_id",
    "pose",
    "motion",
    "camera",
    "lighting",
    "weather",
    "dialogue",
)


@dataclass(frozen=True)
class FieldChange:
    """One field of a scene: its value now and the proposed one."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Proposal:
    """What the model proposes for one scene, field by field.

    ``kind`` "rewrite": changes to ``scene_id``; "next_scene": a new scene
    after ``scene_id``, added as ``new_scene_id`` on the first acceptance.
    """

    kind: Literal["next_scene", "rewrite"]
    scene_id: str
    changes: tuple[FieldChange, ...]
    call: ModelCall
    new_scene_id: str | None = None

    @property
    def target(self) -> str | None:
        """The scene the changes go to (None: not added yet)."""
        return self.scene_id if self.kind == "rewrite" else self.new_scene_id


@dataclass(frozen=True)
class StoryDraft:
    """A story drafted from a logline, and the call that made it."""

    story: Story
    call: ModelCall


def _record(folder: Path, call: ModelCall) -> None:
    edit_story(folder, lambda story: story.model_calls.append(call))


def _refused(folder: Path | None, call: ModelCall, exc: AnswerRefused) -> AnswerRefused:
    """Record a refused answer's call (its tokens were spent) and say why."""
    call = call.model_copy(update={"outcome": "refused", "message": str(exc)[:4000]})
    if folder is not None:
        _record(folder, call)
    refused = AnswerRefused(str(exc))
    refused.call = call  # type: ignore[attr-defined]
    return refused


def _ids(
    names: Iterable[str], items: Sequence[Character] | Sequence[Environment], what: str
) -> list[str]:
    """The ids the answer's names stand for; unknown names are refused."""
    by_name = {i.name.casefold(): i.id for i in items} | {i.id: i.id for i in items}
    names = list(names)
    unknown = [n for n in names if n.casefold() not in by_name and n not in by_name]
    if unknown:
        known = ", ".join(repr(i.name) for i in items) or "none"
        raise AnswerRefused(
            f"the answer names unknown {what} ({', '.join(map(repr, unknown))}); "
            f"the story has {known}. Nothing was changed"
        )
    ids = [by_name.get(n.casefold(), by_name.get(n)) for n in names]
    return list(dict.fromkeys(i for i in ids if i is not None))


def _scene_fields(story: Story, answer: SceneAnswer) -> dict[str, Any]:
    speakers = _ids(
        (d.speaker for d in answer.dialogue), story.characters, "characters"
    )
    characters = _ids(answer.characters, story.characters, "characters")
    environment = (
        _ids([answer.environment], story.environments, "environments")[0]
        if answer.environment
        else None
    )
    dialogue = [
        {
            "character_id": _ids([d.speaker], story.characters, "characters")[0],
            "text": d.text,
            "delivery": d.delivery,
        }
        for d in answer.dialogue
    ]
    return {
        "title": answer.title,
        "character_ids": list(dict.fromkeys([*characters, *speakers])),
        "environment_id": environment,
        "pose": answer.pose,
        "motion": answer.motion,
        "camera": answer.camera,
        "lighting": answer.lighting,
        "weather": answer.weather,
        "dialogue": dialogue,
    }


def _value(scene: SceneNode, field: str) -> Any:
    value = getattr(scene, field)
    if field == "dialogue":
        return [line.model_dump() for line in value]
    return list(value) if isinstance(value, list) else value


def _changes(
    scene: SceneNode | None, fields: dict[str, Any]
) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(f, None if scene is None else _value(scene, f), fields[f])
        for f in SCENE_FIELDS
        if f in fields and (scene is None or _value(scene, f) != fields[f])
    )


def _ask(
    folder: Path, story: Story, messages: list[dict[str, str]], answer: type, purpose
) -> tuple[Any, ModelCall]:
    settings = story.settings.drafting
    result = chat(settings, messages, answer, purpose, story=story)
    try:
        if result.call.outcome == "refused":
            raise AnswerRefused(result.call.message + "; nothing was changed")
        return parse_answer(result.content, answer), result.call
    except AnswerRefused as exc:
        raise _refused(folder, result.call, exc) from None


def propose_next_scene(folder: Path, after: str) -> Proposal:
    """Ask for the scene after ``after``; records the call, changes nothing else."""
    story = load_story(folder)
    story.scene(after)  # KeyError for an unknown scene, before any call
    messages = next_scene_messages(story, after, SceneAnswer)
    answer, call = _ask(folder, story, messages, SceneAnswer, "next_scene")
    try:
        fields = _scene_fields(story, answer)
    except AnswerRefused as exc:
        raise _refused(folder, call, exc) from None
    _record(folder, call)
    return Proposal("next_scene", after, _changes(None, fields), call)


def propose_rewrite(folder: Path, scene_id: str) -> Proposal:
    """Ask for the scene's motion, camera and lighting rewritten for the
    video model's prompt guide; records the call, changes nothing else."""
    story = load_story(folder)
    scene = story.scene(scene_id)
    messages = rewrite_messages(story, scene_id, RewriteAnswer)
    answer, call = _ask(folder, story, messages, RewriteAnswer, "rewrite")
    _record(folder, call)
    return Proposal("rewrite", scene_id, _changes(scene, answer.model_dump()), call)


def accept_fields(folder: Path, proposal: Proposal, fields: Iterable[str]) -> Proposal:
    """Write the accepted fields of ``proposal`` (only those); returns the
    proposal with the rest. A field changed since the proposal was made is
    refused (`ValueError`), so nothing the user wrote is lost."""
    wanted = list(dict.fromkeys(fields))
    chosen = {c.field: c for c in proposal.changes if c.field in wanted}
    missing = [f for f in wanted if f not in chosen]
    if missing:
        raise ValueError(f"the proposal has no change to {', '.join(missing)}")
    if not chosen:
        return proposal
    if proposal.target is None:
        proposal = replace(proposal, new_scene_id=add_scene(folder, proposal.scene_id))
        scene = load_story(folder).scene(proposal.new_scene_id or "")
        changes = tuple(
            replace(c, before=_value(scene, c.field)) for c in proposal.changes
        )
        proposal = replace(proposal, changes=changes)
        chosen = {c.field: c for c in changes if c.field in chosen}
    target = proposal.target or ""
    scene = load_story(folder).scene(target)
    changed = [f for f, c in chosen.items() if _value(scene, f) != c.before]
    if changed:
        raise ValueError(
            f"scene {target!r}: {', '.join(changed)} changed since the proposal "
            "was made; your edit is kept. Propose again to compare with it"
        )
    save_scene(folder, target, {f: c.after for f, c in chosen.items()})
    rest = tuple(c for c in proposal.changes if c.field not in chosen)
    return replace(proposal, changes=rest)


def draft_story(logline: str, settings: DraftingSettings) -> StoryDraft:
    """A new story drafted from ``logline`` (nothing is saved)."""
    if not logline.strip():
        raise ValueError("logline: write one or two sentences of the story")
    messages = logline_messages(logline.strip(), StoryAnswer)
    result = chat(settings, messages, StoryAnswer, "logline")
    try:
        if result.call.outcome == "refused":
            raise AnswerRefused(result.call.message + "; nothing was changed")
        answer = parse_answer(result.content, StoryAnswer)
        story = _story(answer, settings)
    except AnswerRefused as exc:
        raise _refused(None, result.call, exc) from None
    story.model_calls.append(result.call)
    return StoryDraft(story, result.call)


def _story(answer: StoryAnswer, settings: DraftingSettings) -> Story:
    taken: set[str] = set()
    characters = [
        Character(
            id=make_id(c.name, taken, "character"),
            name=c.name,
            description=c.description,
            visual_attributes=c.visual_attributes,
        )
        for c in answer.characters
    ]
    taken = set()
    environments = [
        Environment(
            id=make_id(e.name, taken, "place"),
            name=e.name,
            description=e.description,
            lighting=e.lighting,
            default_weather=e.default_weather,
        )
        for e in answer.environments
    ]
    shell = Story(title=answer.title, characters=characters, environments=environments)
    scenes, edges = [], []
    for n, scene in enumerate(answer.scenes, start=1):
        node = SceneNode(id=f"scene-{n}", seed=n, **_scene_fields(shell, scene))
        if scenes:
            edges.append(
                SceneEdge(
                    source=scenes[-1].id, target=node.id, transition=scene.transition
                )
            )
        scenes.append(node)
    story = Story(
        title=answer.title,
        description=answer.description,
        characters=characters,
        environments=environments,
        scenes=scenes,
        edges=edges,
    )
    story.settings.drafting = settings
    return story
