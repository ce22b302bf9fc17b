"""The relevance term of story memory: CLIP text similarity to the current scene.

Generative Agents (Park et al., 2023) rank memories by recency, importance and
relevance; ``kg.memory.story_memory(graph, scene_id, relevance=...)`` takes the
relevance as a mapping ``entity key -> similarity``. Here the similarity is the
cosine of CLIP text features of an entity's description (name, description,
visual attributes or lighting) and of the scene's own text (title, motion,
pose, lighting, prompt override); the scene's prompt is not used because it
already carries the remembered entities.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kg.memory import entity_key
from kg.schema import Character, Environment, SceneNode, Story
from scoring.metrics import cosine_matrix

if TYPE_CHECKING:
    from scoring.encoders import ClipEncoder

__all__ = ["entity_text", "scene_text", "scene_relevance", "default_relevance"]

log = logging.getLogger(__name__)


def entity_text(entity: Character | Environment) -> str:
    """What CLIP reads for an entity.

    >>> from kg.schema import Character
    >>> entity_text(Character(id="ana", name="Ana", visual_attributes=["red scarf"]))
    'Ana, red scarf'
    """
    parts = [entity.name, entity.description]
    if isinstance(entity, Character):
        parts += entity.visual_attributes
    else:
        parts.append(entity.lighting)
    return ", ".join(p for p in parts if p)


def scene_text(scene: SceneNode) -> str:
    """What CLIP reads for a scene: its own words, not the remembered entities."""
    parts = [scene.title, scene.motion, scene.pose, scene.lighting]
    if scene.prompt_override:
        parts.append(scene.prompt_override)
    return ", ".join(p for p in parts if p)


def scene_relevance(story: Story, scene_id: str, clip: ClipEncoder) -> dict[str, float]:
    """``{"character:<id>" | "environment:<id>": cosine}`` for every entity.

    The mapping ``kg.memory.story_memory(..., relevance=...)`` accepts.
    """
    entities: list[tuple[str, Character | Environment]] = [
        (entity_key("character", c.id), c) for c in story.characters
    ] + [(entity_key("environment", e.id), e) for e in story.environments]
    if not entities:
        return {}
    texts = [scene_text(story.scene(scene_id))] + [entity_text(e) for _, e in entities]
    feats = clip.encode_text(texts).numpy()  # [1 + E, D]
    cos = cosine_matrix(feats[1:], feats[:1])[:, 0]
    return {key: float(c) for (key, _), c in zip(entities, cos, strict=True)}


def default_relevance(story: Story, scene_id: str) -> dict[str, float] | None:
    """`scene_relevance` with the default CLIP, or ``None`` when it has no weights."""
    from scoring.encoders import WeightsUnavailable, get_clip

    try:
        clip = get_clip()
    except WeightsUnavailable as exc:
        log.info("no memory relevance: %s", exc)
        return None
    return scene_relevance(story, scene_id, clip)
