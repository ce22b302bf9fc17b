"""What the engine hands the observer for one take, and what comes back.

The contract between generation (``engine``) and scoring (``scoring``),
which never import each other: an `ObservationRequest` carries everything
scoring needs (prompt, frames, the previous take's last frames, the scene's
characters and every reference image, where to write the features) so the
observer needs neither the `Story` nor the `Take`; an `Observation` carries
the scores and the path of the features file back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kg.layout import take_files

if TYPE_CHECKING:
    import numpy as np

    from kg.schema import Scores, Story, Take

__all__ = ["ObservationRequest", "Observation"]


@dataclass(frozen=True)
class ObservationRequest:
    """One take to score."""

    story_dir: Path
    scene_id: str
    take_index: int
    prompt: str
    frames: np.ndarray  # [F, H, W, 3] uint8
    previous_last_frame: np.ndarray | None  # [H, W, 3] uint8, continuous joins
    character_ids: tuple[str, ...]  # who the scene shows
    # every character's reference images (relative paths): the reference
    # cache keeps the features of all of them and drops the others
    references: Mapping[str, tuple[str, ...]]
    embeddings_path: str  # relative to the story folder
    fps: int = 24
    # leading frames that repeat the previous take (skipped at the join)
    overlap_frames: int = 0
    # the previous take's last two frames, for the flow across the join
    previous_tail: np.ndarray | None = None  # [2, H, W, 3] uint8
    # the line's colour anchor (its environment's reference image, else the
    # line's first scene's first frames), for the line's colour drift
    anchor_frames: np.ndarray | None = None  # [N, H, W, 3] uint8

    @classmethod
    def of_take(
        cls,
        story_dir: Path,
        story: Story,
        scene_id: str,
        take: Take,
        frames: np.ndarray,
        previous_last_frame: np.ndarray | None,
        previous_tail: np.ndarray | None = None,
        anchor_frames: np.ndarray | None = None,
    ) -> ObservationRequest:
        """The request for ``take`` of ``scene_id`` in ``story``."""
        embeddings = take_files(scene_id, take.index).embeddings
        assert embeddings is not None, "every take has an embeddings path"
        return cls(
            story_dir=Path(story_dir),
            scene_id=scene_id,
            take_index=take.index,
            prompt=take.params.prompt,
            frames=frames,
            previous_last_frame=previous_last_frame,
            character_ids=tuple(story.scene(scene_id).character_ids),
            references={c.id: tuple(c.reference_images) for c in story.characters},
            embeddings_path=embeddings,
            fps=take.params.fps,
            overlap_frames=take.overlap_frames,
            previous_tail=previous_tail,
            anchor_frames=anchor_frames,
        )


@dataclass(frozen=True)
class Observation:
    """Scores of one take and the relative path of its features file."""

    scores: Scores
    embeddings: str | None = None  # relative to the story folder
