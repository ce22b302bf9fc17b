"""Drafting with a language model, on the user's terms.

An OpenAI-compatible chat endpoint (llama.cpp, Ollama, vLLM, LM Studio or a
hosted provider; ``settings.drafting``) drafts a story from a logline,
proposes the scene after a chosen one, or rewrites a scene's motion, camera
and lighting the way the video model's prompt guide asks. Its answer is held
to the story schema (a JSON schema in the request where the server takes
one, pydantic either way); an unsafe or invalid answer is refused with a
message and changes nothing. Every answer is a `Proposal`: per-field
changes the user accepts one by one (`accept_fields`); nothing is written
before that. Each call's tokens and cost are recorded on the story and
counted against its budget (`engine.budget`).

- `answers`: what the model must answer, and the safety checks;
- `client`: the chat call (the official ``openai`` client), cost, budget;
- `prompts`: the messages for each purpose;
- `proposals`: proposals, per-field diffs, acceptance.
"""

from engine.drafting.answers import AnswerRefused
from engine.drafting.client import DraftingError
from engine.drafting.proposals import (
    FieldChange,
    Proposal,
    StoryDraft,
    accept_fields,
    draft_story,
    propose_next_scene,
    propose_rewrite,
)

__all__ = [
    "AnswerRefused",
    "DraftingError",
    "FieldChange",
    "Proposal",
    "StoryDraft",
    "accept_fields",
    "draft_story",
    "propose_next_scene",
    "propose_rewrite",
]
