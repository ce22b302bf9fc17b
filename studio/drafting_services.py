"""The studio's door to screenplays and the drafting model (no drawing here).

New stories from a Fountain screenplay (`kg.fountain`) or from a logline
(`engine.drafting.draft_story`), a story written as Fountain
(`kg.fountain_export`), and proposals for a scene (`engine.drafting`) with
their per-field acceptance. The components in ``studio/components``
(``script_import``, ``drafting``) call only these.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.drafting import (
    AnswerRefused,
    DraftingError,
    Proposal,
    StoryDraft,
    accept_fields,
    draft_story,
    propose_next_scene,
    propose_rewrite,
)
from engine.errors import BudgetExceededError
from kg.fountain import ScriptImport, Unplaced, read_script_bytes
from kg.fountain_export import write_script
from kg.schema import Story
from kg.settings import DraftingSettings
from kg.store import load_story, save_story
from studio.library import check_slug, outputs_root

__all__ = [
    "DRAFTING_ERRORS",
    "Proposal",
    "StoryDraft",
    "Unplaced",
    "accept",
    "create_drafted_story",
    "import_script",
    "logline_draft",
    "next_scene",
    "rewrite",
    "script_text",
]

# What a drafting call may end with, each message saying what to do.
DRAFTING_ERRORS = (AnswerRefused, DraftingError, BudgetExceededError, ValueError)


def _new_folder(slug: str) -> Path:
    problem = check_slug(slug)
    if problem:
        raise ValueError(problem)
    return outputs_root() / slug


def import_script(slug: str, data: bytes, name: str) -> tuple[Path, ScriptImport]:
    """A new story folder from a screenplay's bytes; `kg.fountain.ScriptError`
    names the line it could not read."""
    folder = _new_folder(slug)
    result = read_script_bytes(data, name, Path(name).stem)
    save_story(result.story, folder)
    return folder, result


def script_text(folder: Path, leaf: str | None = None) -> str:
    """The story (or the line ending at ``leaf``) as Fountain text."""
    return write_script(load_story(folder), leaf)


def logline_draft(logline: str, settings: DraftingSettings) -> StoryDraft:
    return draft_story(logline, settings)


def create_drafted_story(slug: str, story: Story) -> Path:
    folder = _new_folder(slug)
    save_story(story, folder)
    return folder


def next_scene(folder: Path, after: str) -> Proposal:
    return propose_next_scene(folder, after)


def rewrite(folder: Path, scene_id: str) -> Proposal:
    return propose_rewrite(folder, scene_id)


def accept(folder: Path, proposal: Proposal, fields: Iterable[str]) -> Proposal:
    return accept_fields(folder, proposal, fields)
