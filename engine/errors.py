"""The engine's errors: what a user can act on, each message saying how.

`BackendError` and its kinds come from generation (a backend, its model, its
checkpoint); story-level refusals (budget, references, films) are
`kg.errors.StoryError` kinds defined beside the code that raises them.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "GenerationCancelled",
    "OutOfMemoryError",
    "CheckpointMismatchError",
]


class BackendError(Exception):
    """A generation failed for a reason the user can act on (the message says how)."""


class GenerationCancelled(BackendError):
    """The user cancelled the generation between two steps."""


class OutOfMemoryError(BackendError):
    """The device ran out of memory; the message suggests what to lower."""


class CheckpointMismatchError(BackendError):
    """A checkpoint's weights do not match its configs (the message names both)."""
