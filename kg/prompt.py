"""Scene prompts from the story graph.

Order: motion, character visuals, environment, lighting/weather/camera, then
the entities still in story memory. Motion comes first because LTX-Video
follows an instruction better when the action leads the prompt.

For backends that make sound (LTX-2) the scene's sound and dialogue follow,
written the way LTX-2's own prompt guide asks: its prompt-enhancement system
prompt (Lightricks/LTX-2, ``ltx-core`` ``gemma_t2v_system_prompt.txt``, shipped
in diffusers as ``pipelines.ltx2.utils.T2V_DEFAULT_SYSTEM_PROMPT``) wants one
flowing paragraph; a specific soundscape ("soft footsteps on tile", not
"ambient sound is present") integrated in order with the action; and speech
as the exact words in quotes with who says them and how ("The man says in an
excited voice: 'You won't believe what I just saw!'"). So the ambience and
effects come as one sentence after the visuals, then every line in the
scene's order: ``Name says (how): "words"``, cleaned so that no field can
forge a line for another speaker (`kg.speech`). Lines are the user's words:
they are dropped last (after everything but the motion). When the prompt
exceeds the text encoder's token budget the least salient parts are dropped
first (remembered entities, then minor characters...), never the
motion. The same scene always gives the same prompt.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from kg.graph import DynamicSceneGraph
from kg.memory import (
    EntityMemory,
    entity_key,
    remembered,
    story_memory,
)
from kg.speech import say, unquoted

__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "PromptPart",
    "ScenePrompt",
    "build_prompt",
    "sound_parts",
    "window_prompts",
    "count_tokens",
    "weather_phrase",
    "camera_phrase",
]

# The budget when neither the backend nor the story names one.
DEFAULT_TOKEN_BUDGET = 128
DEFAULT_NEGATIVE_PROMPT = (
    "worst quality, inconsistent motion, blurry, jittery, distorted"
)

_WEATHER = {
    "clear": "clear sky",
    "overcast": "overcast sky, soft diffuse light",
    "rain": "falling rain, wet reflective surfaces",
    "storm": "stormy sky, heavy rain and wind",
    "fog": "thick drifting fog",
    "snow": "falling snow",
}
_CAMERA = {
    "static": "static camera",
    "pan_left": "the camera pans slowly to the left",
    "pan_right": "the camera pans slowly to the right",
    "tilt_up": "the camera tilts up",
    "tilt_down": "the camera tilts down",
    "zoom_in": "the camera slowly pushes in",
    "zoom_out": "the camera slowly pulls back",
}
_PIECE = re.compile(r"\w+|[^\w\s]")


def weather_phrase(weather: str) -> str:
    return _WEATHER[weather]


def camera_phrase(camera: str) -> str:
    return _CAMERA[camera]


def count_tokens(text: str) -> int:
    """Estimate T5 sentencepiece tokens without loading a tokenizer.

    One token per word or punctuation mark, plus one per further 6 characters of
    long words (sentencepiece splits rare long words). It over-counts slightly,
    which keeps a prompt inside the real budget.

    >>> count_tokens("A red scarf, flapping.")
    7
    """
    return sum(1 + (len(p) - 1) // 6 for p in _PIECE.findall(text))


@dataclass(frozen=True)
class PromptPart:
    kind: str  # motion | character | environment | style | memory | sound |
    # dialogue | override
    text: str
    priority: float  # dropped lowest first; motion is never dropped


@dataclass(frozen=True)
class ScenePrompt:
    text: str
    negative: str
    parts: tuple[PromptPart, ...]
    dropped: tuple[PromptPart, ...]
    tokens: int
    budget: int
    memory: tuple[EntityMemory, ...] = field(default=())


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "." if text else ""


# Above every salience (importance <= 10): what the user wrote for the sound
# track goes after the visual parts when the prompt must shrink.
_SOUND_PRIORITY = 20.0
_DIALOGUE_PRIORITY = 1e9


def sound_parts(graph: DynamicSceneGraph, scene_id: str) -> list[PromptPart]:
    """The scene's soundscape, then its dialogue lines in order."""
    story = graph.story
    scene = graph.scene(scene_id)
    parts: list[PromptPart] = []
    heard = [unquoted(h) for h in (scene.sound.ambience, *scene.sound.effects)]
    heard = [h for h in heard if h]
    if heard:
        parts.append(
            PromptPart(
                "sound", _sentence("Sound: " + ", ".join(heard)), _SOUND_PRIORITY
            )
        )
    for line in scene.dialogue:
        name = story.character(line.character_id).name
        text = say(name, line.text, line.delivery)
        parts.append(PromptPart("dialogue", text, _DIALOGUE_PRIORITY))
    return parts


def _parts(
    graph: DynamicSceneGraph,
    scene_id: str,
    memory: list[EntityMemory],
    motion: str | None = None,
    audio: bool = False,
) -> tuple[list[PromptPart], list[EntityMemory]]:
    story = graph.story
    scene = graph.scene(scene_id)
    salience = {m.key: m.salience for m in memory}
    env = story.environment(scene.environment_id) if scene.environment_id else None
    parts: list[PromptPart] = []

    motion = scene.motion if motion is None else motion
    action = ", ".join(x for x in (motion.strip(), scene.pose.strip()) if x)
    names = [story.character(c).name for c in scene.character_ids]
    if names and action and not any(n in action for n in names):
        action = f"{' and '.join(names)}: {action}"
    parts.append(PromptPart("motion", _sentence(action or scene.title), math.inf))

    for cid in scene.character_ids:
        c = story.character(cid)
        looks = ", ".join(x for x in (c.description, *c.visual_attributes) if x)
        text = f"{c.name}, {looks}" if looks else c.name
        parts.append(
            PromptPart(
                "character", _sentence(text), salience[entity_key("character", cid)]
            )
        )
    if env is not None:
        text = f"{env.name}, {env.description}" if env.description else env.name
        parts.append(
            PromptPart(
                "environment",
                _sentence(text),
                salience[entity_key("environment", env.id)],
            )
        )
    weather = scene.weather or (env.default_weather if env else "clear")
    lighting = scene.lighting or (env.lighting if env else "")
    style = ", ".join(
        x for x in (lighting, weather_phrase(weather), camera_phrase(scene.camera)) if x
    )
    parts.append(PromptPart("style", _sentence(style), 1.0))

    memory = remembered(graph, scene_id, memory=memory)
    for m in memory:
        if m.kind == "character":
            c = story.character(m.entity_id)
            extra = (
                f" ({', '.join(c.visual_attributes)})" if c.visual_attributes else ""
            )
            text = f"{c.name}{extra} is still nearby"
        else:
            text = f"{story.environment(m.entity_id).name} is still close"
        parts.append(PromptPart("memory", _sentence(text), m.salience))
    if audio:
        parts.extend(sound_parts(graph, scene_id))
    return parts, memory


def _truncate(text: str, budget: int, counter: Callable[[str], int]) -> str:
    """The longest word prefix of ``text`` within ``budget`` tokens.

    Linear in the text: no word is shorter than one token, so at most
    ``budget`` words can fit; among those, a binary search on the prefix
    length (token counts grow with the prefix) calls ``counter`` O(log budget)
    times on at most ``budget`` words.
    """
    words = text.split(maxsplit=budget)[:budget]
    lo, hi = 0, len(words)  # words[:lo] fits; words[:hi + 1] does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter(" ".join(words[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def build_prompt(
    graph: DynamicSceneGraph,
    scene_id: str,
    *,
    budget: int | None = None,
    counter: Callable[[str], int] = count_tokens,
    memory: list[EntityMemory] | None = None,
    motion: str | None = None,
    audio: bool = False,
) -> ScenePrompt:
    """The prompt of a scene, fitted to ``budget`` tokens.

    Parameters
    ----------
    budget : token budget; the story's ``settings.prompt_token_budget`` if None.
    counter : token counter; a real tokenizer's can be passed.
    memory : the scene's `story_memory`, when the caller computed it already
        (`kg.memory.memory_by_scene` for every scene at once).
    motion : replaces the scene's motion (one window of a long take); with a
        prompt override it replaces the override.
    audio : the backend makes sound: the scene's sound and dialogue follow
        (after a prompt override too).

    Linear in the length of the scene's text and of its ancestor path (or
    constant in the story with ``memory``).
    """
    story = graph.story
    scene = graph.scene(scene_id)
    budget = budget or story.settings.prompt_token_budget or DEFAULT_TOKEN_BUDGET
    negative = scene.negative_prompt or DEFAULT_NEGATIVE_PROMPT
    if scene.prompt_override and scene.prompt_override.strip():
        override = motion if motion and motion.strip() else scene.prompt_override
        extra = " ".join(p.text for p in sound_parts(graph, scene_id)) if audio else ""
        text = _truncate(f"{override.strip()} {extra}".strip(), budget, counter)
        part = PromptPart("override", text, math.inf)
        return ScenePrompt(text, negative, (part,), (), counter(text), budget)

    if memory is None:
        memory = story_memory(graph, scene_id)
    parts, kept = _parts(graph, scene_id, memory, motion, audio)
    dropped: list[PromptPart] = []
    # Parts are counted once each (a long part is not recounted per drop);
    # the joined text is counted again below, so a counter whose counts do not
    # add up exactly still ends within the budget.
    counts = [counter(p.text) for p in parts]
    while sum(counts) > budget and len(parts) > 1:
        # lowest priority first; among equals, the one furthest back
        victim = min(reversed(range(len(parts))), key=lambda i: parts[i].priority)
        dropped.append(parts.pop(victim))
        counts.pop(victim)
    text = " ".join(p.text for p in parts)
    if counter(text) > budget:
        text = _truncate(text, budget, counter)
        parts = [PromptPart(parts[0].kind, text, parts[0].priority)]
    shown = " ".join(p.text for p in parts if p.kind == "memory")
    kept_memory = tuple(m for m in kept if m.name in shown)
    return ScenePrompt(
        text, negative, tuple(parts), tuple(dropped), counter(text), budget, kept_memory
    )


def window_prompts(
    graph: DynamicSceneGraph,
    scene_id: str,
    *,
    budget: int | None = None,
    counter: Callable[[str], int] = count_tokens,
    audio: bool = False,
) -> tuple[str, ...]:
    """One prompt per entry of the scene's ``window_prompts`` (empty: none).

    Each entry stands for the scene's motion in its window; an empty entry
    keeps the one before (the scene's own motion for the first).
    """
    scene = graph.scene(scene_id)
    if not scene.window_prompts:
        return ()
    memory = None if scene.prompt_override else story_memory(graph, scene_id)
    texts: list[str] = []
    current: str | None = None
    built: dict[str | None, str] = {}
    for entry in scene.window_prompts:
        if entry.strip():
            current = entry.strip()
        if current not in built:
            built[current] = build_prompt(
                graph,
                scene_id,
                budget=budget,
                counter=counter,
                memory=memory,
                motion=current,
                audio=audio,
            ).text
        texts.append(built[current])
    return tuple(texts)
