"""The observer contract: what the engine calls after writing a take.

The engine never imports ``scoring``; composition code (the CLI, the studio)
hands it any object implementing `TakeObserver`, such as
``scoring.observer.Observer``. The observer scores the frames, may write an
``.embeddings.safetensors`` file beside the take, and returns an `Observation`
that the engine stores in the take atomically with the rest of the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from kg.schema import Scores, Story, Take

__all__ = ["Observation", "TakeObserver"]


@dataclass(frozen=True)
class Observation:
    """Scores of one take and the relative path of its embeddings file."""

    scores: Scores
    embeddings: str | None = None  # relative to the story folder


@runtime_checkable
class TakeObserver(Protocol):
    """Scores a freshly generated take."""

    def observe(
        self,
        story_dir: Path,
        story: Story,
        scene_id: str,
        take: Take,
        frames: np.ndarray,  # [F, H, W, 3] uint8
        previous_last_frame: np.ndarray | None,  # [H, W, 3] uint8
    ) -> Observation: ...

    def release(self) -> None:
        """Free the encoders (called between scenes when settings ask)."""
