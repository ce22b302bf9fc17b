"""Domain exceptions; each message says what to change."""

from __future__ import annotations

__all__ = [
    "StoryError",
    "StoryValidationError",
    "StoryConflictError",
    "StoryLockedError",
    "CycleError",
    "UnsafePathError",
    "StoryFileError",
]


class StoryError(Exception):
    """Base of every error a user can cause with a story."""


class StoryValidationError(StoryError):
    """A story file or edit breaks the schema.

    ``problems`` holds ``(json_path, message)`` pairs, one per problem.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {msg}" for path, msg in problems)
        super().__init__(
            f"{source} is not a valid story ({len(problems)} problems):\n{lines}"
        )


class StoryConflictError(StoryError):
    """The file changed on disk since the story was loaded."""


class StoryLockedError(StoryError):
    """Another process holds the story's lock for too long."""


class CycleError(StoryError):
    """An edge would make the story loop back on itself."""


class UnsafePathError(StoryError):
    """An asset path is absolute or leaves the story folder."""


class StoryFileError(StoryError):
    """A file in a story folder is not what it claims: not a regular file (a
    FIFO, socket or device), too large, or a header that lies (an image bomb,
    an odd sound file, a clip that cannot play)."""
