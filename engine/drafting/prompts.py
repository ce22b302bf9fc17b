"""The messages the drafting model gets: the story so far and what to answer.

Motion is asked for the way LTX-Video's prompt guide describes a good
prompt: one flowing paragraph in the present tense that starts with the main
action, then movements and gestures, the characters' appearance, the
background, the camera angle and the lighting, literal and precise, under
200 words. The story's own words (names, descriptions, the scenes so far)
are quoted as data, each bounded, and the model is told to answer with one
JSON object of the schema only (`engine.drafting.answers`).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from engine.drafting.answers import request_schema
from kg.graph import DynamicSceneGraph, ancestor_path
from kg.schema import CAMERA_MOVES, WEATHERS, SceneNode, Story

__all__ = ["logline_messages", "next_scene_messages", "rewrite_messages"]

MOTION_GUIDE = (
    "Write motion as one flowing paragraph in the present tense, under 200 "
    "words: start with the main action, then specific movements and gestures, "
    "the characters' appearance, the background, the camera angle and the "
    "lighting. Be literal and precise, as a cinematographer describing a shot."
)
_CONTEXT_SCENES = 8  # the scenes before the chosen one the model sees
_CLIP = 400  # characters of each quoted text


def _system(answer: type[BaseModel], task: str) -> dict[str, str]:
    schema = json.dumps(request_schema(answer), separators=(",", ":"))
    return {
        "role": "system",
        "content": (
            "You help a writer plan a short video story scene by scene. "
            f"{task} {MOTION_GUIDE} Camera is one of {', '.join(CAMERA_MOVES)}; "
            f"weather one of {', '.join(WEATHERS)} or null. Plain text only: no "
            "Markdown, HTML or other markup. Answer with one JSON object that "
            f"matches this JSON schema and nothing else: {schema}"
        ),
    }


def _short(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"


def _cast(story: Story) -> dict[str, Any]:
    return {
        "characters": [
            {
                "name": c.name,
                "description": _short(c.description),
                "looks": [_short(a) for a in c.visual_attributes[:8]],
            }
            for c in story.characters
        ],
        "environments": [
            {
                "name": e.name,
                "description": _short(e.description),
                "lighting": _short(e.lighting),
            }
            for e in story.environments
        ],
    }


def _scene(story: Story, scene: SceneNode) -> dict[str, Any]:
    names = {c.id: c.name for c in story.characters}
    place = (
        story.environment(scene.environment_id).name if scene.environment_id else None
    )
    return {
        "title": scene.title,
        "characters": [names.get(c, c) for c in scene.character_ids],
        "environment": place,
        "motion": _short(scene.motion),
        "camera": scene.camera,
        "lighting": scene.lighting,
        "dialogue": [
            {"speaker": names.get(d.character_id, d.character_id), "text": d.text}
            for d in scene.dialogue
        ],
    }


def _user(data: dict[str, Any]) -> dict[str, str]:
    return {"role": "user", "content": json.dumps(data, ensure_ascii=False)}


def next_scene_messages(
    story: Story, after: str, answer: type[BaseModel]
) -> list[dict[str, str]]:
    """Ask for the scene that follows ``after``."""
    graph = DynamicSceneGraph(story)
    path = ancestor_path(graph, after)[-_CONTEXT_SCENES:]
    task = (
        "Propose the next scene after the last scene of the story so far. Use "
        "only the characters and environments listed, by their exact names."
    )
    return [
        _system(answer, task),
        _user(
            {
                "story": {
                    "title": story.title,
                    "description": _short(story.description),
                },
                **_cast(story),
                "story_so_far": [_scene(story, story.scene(s)) for s in [*path, after]],
            }
        ),
    ]


def rewrite_messages(
    story: Story, scene_id: str, answer: type[BaseModel]
) -> list[dict[str, str]]:
    """Ask for a scene's motion, camera and lighting, rewritten for the model."""
    task = (
        "Rewrite the scene's motion, camera and lighting as a prompt for a "
        "video model. Keep what happens, who is there and where; add no new "
        "characters."
    )
    return [
        _system(answer, task),
        _user({**_cast(story), "scene": _scene(story, story.scene(scene_id))}),
    ]


def logline_messages(logline: str, answer: type[BaseModel]) -> list[dict[str, str]]:
    """Ask for a whole story (cast, places, scenes) from a logline."""
    task = (
        "Draft a short story of 3 to 8 scenes from the logline: its title, "
        "characters, environments and scenes. Scenes name characters and "
        "environments by the exact names you give them. A scene continues the "
        "one before ('continuous') or cuts ('cut')."
    )
    return [_system(answer, task), _user({"logline": _short(logline)})]
