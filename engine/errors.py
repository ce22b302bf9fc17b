"""The engine's errors: what a user can act on, each message saying how.

`BackendError` and its kinds come from generation (a backend, its model, its
checkpoint); the story-level refusals (budget, references, continuity, run
locks, films) are `kg.errors.StoryError` kinds; the export ones say what to
change in an export. The modules that raise them name them too. A hosted
provider's errors stay in its backend folder (`engine.backends.hosted`):
only that backend raises them, and they are `BackendError` kinds.
"""

from __future__ import annotations

from kg.errors import StoryError, StoryLockedError

__all__ = [
    "BackendError",
    "GenerationCancelled",
    "OutOfMemoryError",
    "CheckpointMismatchError",
    "BudgetExceededError",
    "ContinuityError",
    "BucketError",
    "ExportError",
    "FilmCancelledError",
    "FilmRefusedError",
    "ReferenceFileError",
    "RunLockedError",
]


class BackendError(Exception):
    """A generation failed for a reason the user can act on (the message says how)."""


class GenerationCancelled(BackendError):
    """The user cancelled the generation between two steps."""


class OutOfMemoryError(BackendError):
    """The device ran out of memory; the message suggests what to lower."""


class CheckpointMismatchError(BackendError):
    """A checkpoint's weights do not match its configs (the message names both)."""


class BudgetExceededError(StoryError):
    """A job would take the story past its budget; nothing was submitted."""


class ContinuityError(Exception):
    """A continuous scene's predecessor has nothing to continue from yet."""


class BucketError(ValueError):
    """A bucket that the trainers cannot use; the message says what to change."""


class ExportError(ValueError):
    """An export the user asked for that cannot be done; says what to change."""


class FilmCancelledError(RuntimeError):
    """Assembly was cancelled; no film was written."""


class FilmRefusedError(StoryError):
    """A line cannot become a film yet; the message lists what to do per scene."""


class ReferenceFileError(StoryError):
    """A reference image cannot be read; the message names every such file."""


class RunLockedError(StoryLockedError):
    """Another process is generating scenes of this story."""
