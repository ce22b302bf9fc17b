"""Best of N: make N takes of a scene with different seeds, keep the best.

The candidates are ordinary takes, each scored by the observer as it
finishes. Their seeds continue after the seeds the scene's takes already used
(``seed, seed + 1, ...`` for a scene without takes; fresh random ones with
``settings.new_take_seed`` ``random``: `engine.takes.candidate_seeds`), so no
candidate repeats a take the scene has. `choose` ranks them by the story's objective
(``settings.best_of.objective``), an ordered list of metrics: the first
metric keeps the candidates within its tolerance of the best value, the next
metric decides among those, and so on (which way each metric is better and
its tolerance are its row of the metric table, `kg.metrics`); what is still
tied goes to the lowest take index, so the choice is deterministic. A metric
no candidate has (no seam on a first scene, no CLIP weights) is passed over;
a candidate without a value where others have one falls behind on that
metric.

The chosen take is selected (continuous successors go stale, as with any
selection) and records a `kg.schema.BestOfChoice`: the candidates, the
objective, the metric on which the runner-up fell behind and by how much.
A candidate that finishes is not selected by itself; only the choice
selects, so the user's changes meanwhile are kept as for a single take: a
scene edited while its candidates generated ends ``stale``, and a take the
user selected meanwhile stays selected (`Candidates`, `select_best`). The
user can still select another take afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.backend import CancelToken, ProgressFn, VideoBackend, get_backend
from engine.generate import PreparedTake, make_take, prepare_take
from engine.observe import TakeObserver
from engine.runlock import hold_run
from engine.takes import apply_selection, candidate_seeds
from engine.video import ClipWriter
from kg.metrics import Better, metric, metric_names
from kg.schema import MAX_CANDIDATES, BestOfChoice, Scores, Story, Take
from kg.store import load_story, update_story

__all__ = [
    "Goal",
    "goal",
    "Choice",
    "choose",
    "generate_best_of",
    "Candidates",
    "select_best",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Goal:
    """How one metric ranks takes: ``goodness`` (higher is better) of a
    value, the difference under which two takes count as tied, and which way
    the metric itself is better (its row of the metric table)."""

    goodness: Callable[[float], float]
    tolerance: float
    better: Better


def _higher(x: float) -> float:
    return x


def _lower(x: float) -> float:
    return -x


def _near_one(x: float) -> float:
    # a seam that flows has the flow of its neighbours: ratio 1
    return -abs(math.log(max(x, 1e-6)))


_GOODNESS: dict[str, Callable[[float], float]] = {
    "higher": _higher,
    "lower": _lower,
    "near 1": _near_one,
}


def goal(name: str) -> Goal:
    """How metric ``name`` ranks takes: direction and tolerance from its row of
    the metric table (`kg.metrics`).

    >>> g = goal("seam_pixel_mae")
    >>> g.goodness(3.5) > g.goodness(12.0), g.tolerance
    (True, 1.0)
    """
    row = metric(name)
    return Goal(_GOODNESS[row.better], row.tolerance, row.better)


def _margin(g: Goal, a: float, b: float) -> float:
    """How far ``a`` is ahead of ``b`` in the metric's units (log units of
    the ratio for a metric best near 1)."""
    if g.better == "higher":
        return a - b
    if g.better == "lower":
        return b - a
    return g.goodness(a) - g.goodness(b)  # how much closer to 1


@dataclass(frozen=True)
class Choice:
    best: int
    runner_up: int | None
    deciding_metric: str | None
    margin: float | None


def _value(scores: Scores | None, name: str) -> float | None:
    if scores is None:
        return None
    value = getattr(scores, name)
    return None if value is None else float(value)


def _winner(pool: list[tuple[int, Scores | None]], objective: Sequence[str]) -> int:
    for name in objective:
        g = goal(name)
        values = {i: _value(s, name) for i, s in pool}
        scored = {i: g.goodness(v) for i, v in values.items() if v is not None}
        if not scored:
            continue  # no candidate has it
        top = max(scored.values())
        pool = [
            (i, s) for i, s in pool if i in scored and scored[i] >= top - g.tolerance
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
    for name in objective:
        g = goal(name)
        a, b = _value(best, name), _value(other, name)
        if a is None:
            continue
        if b is None:
            return name, None
        if g.goodness(a) - g.goodness(b) > g.tolerance:
            return name, _margin(g, a, b)
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
    known = metric_names()
    unknown = [m for m in objective if m not in known]
    if unknown:
        raise ValueError(f"unknown objective metrics {unknown}; use {list(known)}")
    pool = sorted(candidates, key=lambda c: c[0])
    best = _winner(pool, objective)
    rest = [c for c in pool if c[0] != best]
    if not rest:
        return Choice(best, None, None, None)
    runner_up = _winner(rest, objective)
    scores = dict(pool)
    metric, margin = _decider(scores[best], scores[runner_up], objective)
    return Choice(best, runner_up, metric, margin)


UNKNOWN_SELECTION = -1  # `select_best` without what was selected before


def _record(
    story_dir: Path,
    scene_id: str,
    done: list[Take],
    choice: Choice,
    edited_since: Callable[[Story, int], bool] | None,
    selected_before: int | None,
) -> None:
    def mutate(s: Story) -> None:
        scene = s.scene(scene_id)
        scene.take(choice.best).best_of = BestOfChoice(
            candidates=[t.index for t in done],
            objective=list(s.settings.best_of.objective),
            deciding_metric=choice.deciding_metric,
            margin=choice.margin,
            runner_up=choice.runner_up,
        )
        picked = scene.selected_take
        chose = (  # the user selected a take while the candidates were made
            selected_before != UNKNOWN_SELECTION
            and picked is not None
            and picked != selected_before
            and any(t.index == picked and t.status == "done" for t in scene.takes)
        )
        if chose:
            scene.status = "done"
            log.info("scene %r: kept take %s, selected meanwhile", scene_id, picked)
        else:
            apply_selection(s, scene_id, choice.best, story_dir)
        if edited_since is not None and edited_since(s, choice.best):
            scene.status = "stale"  # the candidates show the text before the edit
            log.info("scene %r: edited while its candidates generated", scene_id)

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
    """Make ``candidates`` takes of the scene (seeds after those its takes
    used: `engine.takes.candidate_seeds`), score them with ``observer``,
    select the best
    and record why; returns the chosen take (the last failed one when none
    finished). ``on_candidate(i, n)`` is called as candidate ``i`` (1-based)
    starts. Cancelling keeps the candidates made so far, the best selected.
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
    run = Candidates(root, scene_id)
    with hold_run(root):
        story = load_story(root)
        seeds = candidate_seeds(
            story.scene(scene_id), candidates, story.settings.new_take_seed
        )
        try:
            for i, seed in enumerate(seeds):
                if on_candidate is not None:
                    on_candidate(i + 1, candidates)
                prepared = prepare_take(
                    root, scene_id, backend=backend, model=model, force=True,
                    backends=backends, seed=seed,
                )  # fmt: skip
                if isinstance(prepared, Take):  # not with force; for the types
                    run.takes.append(prepared)
                    continue
                run.begin(prepared)
                made = make_take(prepared, progress, cancel, observer, writer)
                run.takes.append(made)
        except BaseException:  # cancelled or stopped: those made still choose
            if any(t.status == "done" for t in run.takes):
                run.select(writer)
            raise
        return run.select(writer)


@dataclass
class Candidates:
    """The candidates of one scene being made (here or on Ray workers): what
    was selected before them, each one's prepared take (to tell whether the
    scene was edited meanwhile), and the takes that ended."""

    story_dir: Path
    scene_id: str
    takes: list[Take] = field(default_factory=list)
    prepared: dict[int, PreparedTake] = field(default_factory=dict)
    selected_before: int | None = UNKNOWN_SELECTION
    prior_status: str | None = None

    def begin(self, prepared: PreparedTake) -> None:
        """A candidate begun: done, it is not selected by itself; cancelled, it
        gives the scene back the status it had before the first candidate."""
        if not self.prepared:
            self.prior_status = prepared.tip.prior_status
            saved = prepared.tip.story.scene(self.scene_id)
            self.selected_before = saved.selected_take
        prepared.tip = dataclasses.replace(
            prepared.tip, prior_status=self.prior_status, select=False
        )
        self.prepared[prepared.tip.index] = prepared

    def edited_since(self, story: Story, index: int) -> bool:
        made = self.prepared.get(index)
        return made is not None and made.edited_since(story)

    def select(self, writer: ClipWriter | None = None) -> Take:
        return select_best(
            self.story_dir,
            self.scene_id,
            self.takes,
            writer,
            edited_since=self.edited_since,
            selected_before=self.selected_before,
        )


def select_best(
    story_dir: str | os.PathLike[str],
    scene_id: str,
    takes: Sequence[Take],
    writer: ClipWriter | None = None,
    *,
    edited_since: Callable[[Story, int], bool] | None = None,
    selected_before: int | None = UNKNOWN_SELECTION,
) -> Take:
    """Choose among the candidate ``takes`` of a scene that finished, select
    the best and record why; returns it (the last take by index when none
    finished). Whoever made the candidates (here, or Ray workers) calls it
    once every candidate has ended.

    As with one take, the user's changes meanwhile win: a scene edited while
    its candidates generated (``edited_since(story, best)``) ends ``stale``,
    and a take the user selected meanwhile (the selection is no longer
    ``selected_before``) stays selected; the choice is recorded either way.
    """
    root = Path(story_dir)
    takes = sorted(takes, key=lambda t: t.index)  # in the order they began
    done = [t for t in takes if t.status == "done"]
    if not done:
        return takes[-1]
    if writer is not None:
        writer.flush()  # every candidate's clip exists before one is chosen
    story = load_story(root)
    saved = story.scene(scene_id)
    scored = [(t.index, saved.take(t.index).scores) for t in done]
    choice = choose(scored, story.settings.best_of.objective)
    _record(root, scene_id, done, choice, edited_since, selected_before)
    return load_story(root).scene(scene_id).take(choice.best)
