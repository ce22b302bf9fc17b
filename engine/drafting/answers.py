"""What the drafting model must answer, and the checks every answer passes.

An answer is JSON held to one of the models below (their JSON schema goes
into the request as ``response_format`` where the server supports it; the
answer is validated with pydantic either way, as OpenAI's structured output
guide advises). Before validation every string of the answer is checked:
no control characters (line breaks aside), no invisible or direction-changing
characters, and no markup (HTML tags, Markdown links and images, code
fences, template tags, Fountain notes), because the text goes into prompts,
pages and files. A refused answer raises `AnswerRefused` naming the JSON
path and what is wrong.

Examples
--------
>>> parse_answer('{"motion": "<b>x</b>", "camera": "static", "lighting": ""}',
...              RewriteAnswer)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
engine.drafting.answers.AnswerRefused: the answer's motion holds markup ('<b>')...
"""

from __future__ import annotations

import copy
import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kg.fields import MAX_NAME, MAX_SHORT_TEXT, MAX_TEXT, MAX_TITLE, bounded_text
from kg.parse import validation_problems
from kg.schema import MAX_DIALOGUE_LINES, MAX_LINE_CHARS
from kg.strict_json import StrictJSONError, loads_strict
from kg.vocabulary import CameraMove, Transition, Weather

__all__ = [
    "AnswerRefused",
    "DialogueAnswer",
    "SceneAnswer",
    "RewriteAnswer",
    "CharacterAnswer",
    "EnvironmentAnswer",
    "StorySceneAnswer",
    "StoryAnswer",
    "parse_answer",
    "request_schema",
    "unsafe_text",
]

T = TypeVar("T", bound=BaseModel)

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
# zero-width, direction marks and overrides, line/paragraph separators, BOM
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2069\ufeff]")
_MARKUP = re.compile(
    r"<\s*/?\s*[A-Za-z!?][^>]*>"  # HTML / XML tags and comments
    r"|!?\[[^\]\n]*\]\([^)\n]*\)"  # Markdown links and images
    r"|```|\{\{|\{%|\[\[|\]\]"  # code fences, templates, Fountain notes
    r"|javascript:|data:text/html",
    re.IGNORECASE,
)

Name = Annotated[str, bounded_text(MAX_NAME, 1)]
Title = Annotated[str, bounded_text(MAX_TITLE, 1)]
Short = Annotated[str, bounded_text(MAX_SHORT_TEXT)]
Long = Annotated[str, bounded_text(MAX_TEXT)]


class AnswerRefused(Exception):
    """The model's answer breaks the schema or is unsafe; nothing was changed."""


class _Answer(BaseModel):
    # every field required, nothing else allowed: the strict structured-output
    # form servers accept
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DialogueAnswer(_Answer):
    speaker: Name
    text: Annotated[str, bounded_text(MAX_LINE_CHARS, 1)]
    delivery: Annotated[str, bounded_text(80)]


class SceneAnswer(_Answer):
    """A scene: characters and the environment by name."""

    title: Title
    characters: list[Name] = Field(max_length=8)
    environment: Name | None
    motion: Annotated[str, bounded_text(MAX_TEXT, 1)]
    camera: CameraMove
    lighting: Short
    weather: Weather | None
    pose: Short
    dialogue: list[DialogueAnswer] = Field(max_length=MAX_DIALOGUE_LINES)


class RewriteAnswer(_Answer):
    """A scene's motion, camera and lighting rewritten for the video model."""

    motion: Annotated[str, bounded_text(MAX_TEXT, 1)]
    camera: CameraMove
    lighting: Short


class CharacterAnswer(_Answer):
    name: Name
    description: Long
    visual_attributes: list[Short] = Field(max_length=8)


class EnvironmentAnswer(_Answer):
    name: Name
    description: Long
    lighting: Short
    default_weather: Weather


class StorySceneAnswer(SceneAnswer):
    # how it joins the scene before (ignored on the first scene)
    transition: Transition


class StoryAnswer(_Answer):
    """A whole story drafted from a logline."""

    title: Annotated[str, bounded_text(200, 1)]
    description: Long
    characters: list[CharacterAnswer] = Field(min_length=1, max_length=12)
    environments: list[EnvironmentAnswer] = Field(min_length=1, max_length=12)
    scenes: list[StorySceneAnswer] = Field(min_length=1, max_length=24)


def request_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent with the request: the model's, without the regex
    patterns (grammar-based servers such as llama.cpp choke on them; the
    answer is checked here anyway) and titles."""
    schema = copy.deepcopy(model.model_json_schema())

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("pattern", None)
            node.pop("title", None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(schema)
    return schema


def unsafe_text(text: str) -> str | None:
    """Why ``text`` may not enter the story, or None."""
    if (bad := _CONTROL.search(text)) is not None:
        return f"a control character (U+{ord(bad.group()):04X})"
    if (bad := _INVISIBLE.search(text)) is not None:
        return (
            f"an invisible or direction-changing character (U+{ord(bad.group()):04X})"
        )
    if (bad := _MARKUP.search(text)) is not None:
        return f"markup ({bad.group()[:20]!r})"
    return None


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, str):
        return [(path or "$", node)]
    if isinstance(node, dict):
        return [
            pair
            for key, value in node.items()
            for pair in _strings(value, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _strings(v, f"{path}[{i}]")]
    return []


def _unfenced(content: str) -> str:
    """The JSON inside a lone fenced block (servers without structured output
    often wrap it so); anything else as it is."""
    match = re.fullmatch(r"\s*```(?:json)?\s*\n(.*)\n\s*```\s*", content, re.DOTALL)
    return match.group(1) if match else content


def parse_answer(content: str, model: type[T]) -> T:
    """The answer as ``model``, or `AnswerRefused` saying what is wrong."""
    try:
        data = loads_strict(_unfenced(content))
    except (StrictJSONError, json.JSONDecodeError, ValueError) as exc:
        raise AnswerRefused(
            f"the answer is not valid JSON ({str(exc)[:200]}); nothing was changed"
        ) from None
    if not isinstance(data, dict):
        raise AnswerRefused("the answer is not a JSON object; nothing was changed")
    for path, text in _strings(data) + [(f"{k} (a key)", k) for k in data]:
        why = unsafe_text(text)
        if why is not None:
            raise AnswerRefused(f"the answer's {path} holds {why}; nothing was changed")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{p}: {m}" for p, m in validation_problems(exc)[:5])
        raise AnswerRefused(
            f"the answer does not fit the story schema ({problems}); "
            "nothing was changed"
        ) from None
