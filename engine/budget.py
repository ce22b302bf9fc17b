"""A story's spending at hosted APIs, and the budget check before a job.

Every take made at a hosted API records its cost (`kg.schema.TakeCost`); the
story may set a budget (``settings.hosted.budget_usd``). Before a job is
submitted its estimate (the backend's `estimate_cost`, from the price table
in the settings) is added to what the story has spent; over the budget, the
job is refused and nothing is begun.
"""

from __future__ import annotations

from engine.errors import BudgetExceededError
from kg.schema import Story

__all__ = ["BudgetExceededError", "spent", "check_budget"]


def spent(story: Story) -> float:
    """USD charged for every take of the story so far, and for every call of
    its drafting model (`engine.drafting`)."""
    takes = sum(
        t.cost.usd for s in story.scenes for t in s.takes if t.cost is not None
    )
    return takes + sum(c.cost.usd for c in story.model_calls if c.cost is not None)


def check_budget(
    story: Story,
    estimate: tuple[float, str] | None,
    what: str,
    *,
    in_flight_usd: float = 0.0,
) -> None:
    """Refuse a job that would take the story past ``settings.hosted.budget_usd``,
    counting what is spent and what the jobs still in flight will cost."""
    budget = story.settings.hosted.budget_usd
    if budget is None:
        return
    if estimate is None:
        raise BudgetExceededError(
            f"{what}: the story has a budget of ${budget:.2f} but no price for "
            "this model; add its USD per second to settings.hosted.prices"
        )
    used = spent(story) + in_flight_usd
    cost, how = estimate
    if used + cost > budget + 1e-9:
        held = (
            f" (${in_flight_usd:.2f} of it held by jobs in flight)"
            if in_flight_usd
            else ""
        )
        raise BudgetExceededError(
            f"{what} would cost about ${cost:.2f} ({how}); ${used:.2f} of the "
            f"story's ${budget:.2f} budget is spent{held}, so it was not "
            "submitted. Raise the budget in Settings or generate fewer scenes"
        )
