"""What a story spent on a language model: one record per call.

Each call of the drafting model (`engine.drafting`) is recorded on the story
like the cost of a take (`kg.take.TakeCost`): tokens read and written, and
their price from the table in the settings (``settings.drafting.prices``).
The story's budget (``settings.hosted.budget_usd``) counts them with the
takes (`engine.budget.spent`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kg.fields import Message, ModelId, Word, utc_now
from kg.take import TakeCost
from kg.vocabulary import StrictModel

__all__ = ["DraftingPurpose", "ModelCall"]

DraftingPurpose = Literal["logline", "next_scene", "rewrite"]


class ModelCall(StrictModel):
    """One call of the drafting model and what it cost."""

    at: Word = Field(default_factory=utc_now)
    purpose: DraftingPurpose
    model: ModelId
    prompt_tokens: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    completion_tokens: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    # None: no price for the model (a local server)
    cost: TakeCost | None = None
    # proposed: the answer became a proposal; refused: it broke the schema or
    # was unsafe (the message says why)
    outcome: Literal["proposed", "refused"] = "proposed"
    message: Message = ""
