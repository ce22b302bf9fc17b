"""The observer contract: what the engine calls after writing a take.

The engine never imports ``scoring``; composition code (the CLI, the studio)
hands it any object implementing `TakeObserver`, such as
``scoring.observer.Observer``. The observer scores the frames, may write an
``.embeddings.safetensors`` file beside the take, and returns an `Observation`
that the engine stores in the take atomically with the rest of the state. The
request and the observation are `kg.observation`'s, the layer both share.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from kg.observation import Observation, ObservationRequest

__all__ = ["Observation", "ObservationRequest", "TakeObserver"]


@runtime_checkable
class TakeObserver(Protocol):
    """Scores a freshly generated take."""

    def observe(self, request: ObservationRequest) -> Observation:
        """Score the take, write its features; never raise for a bad take."""

    def release(self) -> None:
        """Free the encoders (called between scenes when settings ask)."""
