"""Best of N: make N takes of a scene with different seeds, keep the best.

The candidates are ordinary takes (seeds ``seed, seed + 1, ...``), each scored
by the observer as it finishes. `choose` ranks them by the story's objective
(``settings.best_of.objective``), an ordered list of metrics: the first
metric keeps the candidates within its tolerance of the best value, the next
metric decides among those, and so on; what is still tied goes to the lowest
take index, so the choice is deterministic. A metric no candidate has (no
seam on a first scene, no CLIP weights) is passed over; a candidate without
a value where others have one falls behind on that metric.

The chosen take is selected (continuous successors go stale, as with any
selection) and records a `kg.schema.BestOfChoice`: the candidates, the
objective, the metric on which the runner-up fell behind and by how much.
The user can still select another take afterwards.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.backend import CancelToken, ProgressFn, VideoBackend, get_backend
from engine.generate import generate_scene
from engine.observe import TakeObserver
from engine.takes import apply_selection
from engine.video import ClipWriter
from kg.schema import MAX_CANDIDATES, BestOfChoice, Scores, Story, Take
from kg.store import load_story, update_story

__all__ = ["Goal", "GOALS", "Choice", "choose", "generate_best_of"]


@dataclass(frozen=True)
class Goal:
    """How one metric ranks takes: ``goodness`` (higher is better) of a
    value, and the difference under which two takes count as tied."""

    goodness: Callable[[float], float]
    tolerance: float


def _higher(x: float) -> float:
    return x


def _lower(x: float) -> float:
    return -x


def _near_one(x: float) -> float:
    # a seam that flows has the flow of its neighbours: ratio 1
    return -abs(math.log(max(x, 1e-6)))


GOALS: dict[str, Goal] = {
    "seam_dino_cosine": Goal(_higher, 0.01),
    "seam_pixel_mae": Goal(_lower, 1.0),  # 0-255 pixel values
    "seam_flow": Goal(_near_one, 0.05),
    "subject_consistency": Goal(_higher, 0.005),
    "background_consistency": Goal(_higher, 0.005),
    "clip_score": Goal(_higher, 0.01),
    "temporal_flicker": Goal(_higher, 0.002),
    "dynamic_degree": Goal(_higher, 0.5),
    "motion": Goal(_higher, 0.25),  # pixels at a 256-pixel short side
}


@dataclass(frozen=True)
class Choice:
    best: int
    runner_up: int | None
    deciding_metric: str | None
    margin: float | None


def _value(scores: Scores | None, metric: str) -> float | None:
    if scores is None:
        return None
    value = getattr(scores, metric)
    return None if value is None else float(value)


def _winner(pool: list[tuple[int, Scores | None]], objective: Sequence[str]) -> int:
    for metric in objective:
        goal = GOALS[metric]
        values = {i: _value(s, metric) for i, s in pool}
        scored = {i: goal.goodness(v) for i, v in values.items() if v is not None}
        if not scored:
            continue  # no candidate has it
        top = max(scored.values())
        pool = [
            (i, s) for i, s in pool if i in scored and scored[i] >= top - goal.tolerance
        ]
        if len(pool) == 1:
            break
    return pool[0][0]


def _decider(
    best: Scores | None, other: Scores | None, objective: Sequence[str]
) -> tuple[str | None, float | None]:
    """The first metric on which ``other`` is behind ``best`` beyond its
    tolerance, and by how much in the metric's units (None: behind because it
    has no value)."""
    for metric in objective:
        goal = GOALS[metric]
        a, b = _value(best, metric), _value(other, metric)
        if a is None:
            continue
        if b is None:
            return metric, None
        gap = goal.goodness(a) - goal.goodness(b)
        if gap > goal.tolerance:
            margin = a - b if goal.goodness is _higher else b - a
            if goal.goodness is _near_one:
                margin = gap  # how much closer to 1, in log units
            return metric, margin
    return None, 0.0


def choose(
    candidates: Sequence[tuple[int, Scores | None]], objective: Sequence[str]
) -> Choice:
    """The best take of ``candidates`` (``(take index, scores)``) by
    ``objective`` (see the module docstring), and the runner-up's gap.

    >>> from kg.schema import Scores
    >>> c = choose([(1, Scores(clip_score=0.30)), (2, Scores(clip_score=0.34))],
    ...            ["subject_consistency", "clip_score"])
    >>> c.best, c.runner_up, c.deciding_metric, round(c.margin, 2)
    (2, 1, 'clip_score', 0.04)
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    unknown = [m for m in objective if m not in GOALS]
    if unknown:
        raise ValueError(f"unknown objective metrics {unknown}; use {list(GOALS)}")
    pool = sorted(candidates, key=lambda c: c[0])
    best = _winner(pool, objective)
    rest = [c for c in pool if c[0] != best]
    if not rest:
        return Choice(best, None, None, None)
    runner_up = _winner(rest, objective)
    scores = dict(pool)
    metric, margin = _decider(scores[best], scores[runner_up], objective)
    return Choice(best, runner_up, metric, margin)


def _record(story_dir: Path, scene_id: str, done: list[Take], choice: Choice) -> None:
    def mutate(s: Story) -> None:
        apply_selection(s, scene_id, choice.best)
        s.scene(scene_id).take(choice.best).best_of = BestOfChoice(
            candidates=[t.index for t in done],
            objective=list(s.settings.best_of.objective),
            deciding_metric=choice.deciding_metric,
            margin=choice.margin,
            runner_up=choice.runner_up,
        )

    update_story(story_dir, mutate)


def generate_best_of(
    story_dir: str | os.PathLike[str],
    scene_id: str,
    candidates: int,
    *,
    backend: str | VideoBackend | None = None,
    model: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    observer: TakeObserver | None = None,
    writer: ClipWriter | None = None,
    backends: Callable[[str], VideoBackend] = get_backend,
    on_candidate: Callable[[int, int], None] | None = None,
) -> Take:
    """Make ``candidates`` takes of the scene (seeds ``seed`` to
    ``seed + candidates - 1``), score them with ``observer``, select the best
    and record why; returns the chosen take (the last failed one when none
    finished). ``on_candidate(i, n)`` is called as candidate ``i`` (1-based)
    starts. Cancelling keeps the candidates made so far, the last selected.
    """
    if not 2 <= candidates <= MAX_CANDIDATES:
        raise ValueError(
            f"candidates must be 2 to {MAX_CANDIDATES}, got {candidates}; "
            "use a plain generation for one take"
        )
    if observer is None:
        raise ValueError(
            "best of N ranks takes by their scores; it needs an observer "
            "(turn scoring on)"
        )
    root = Path(story_dir)
    takes: list[Take] = []
    for i in range(candidates):
        if on_candidate is not None:
            on_candidate(i + 1, candidates)
        takes.append(
            generate_scene(
                root,
                scene_id,
                backend=backend,
                model=model,
                force=True,
                progress=progress,
                cancel=cancel,
                observer=observer,
                writer=writer,
                backends=backends,
                seed_offset=i,
            )
        )
    done = [t for t in takes if t.status == "done"]
    if not done:
        return takes[-1]
    if writer is not None:
        writer.flush()  # every candidate's clip exists before one is chosen
    story = load_story(root)
    saved = story.scene(scene_id)
    scored = [(t.index, saved.take(t.index).scores) for t in done]
    choice = choose(scored, story.settings.best_of.objective)
    _record(root, scene_id, done, choice)
    return load_story(root).scene(scene_id).take(choice.best)
