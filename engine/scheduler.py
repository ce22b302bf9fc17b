"""Scheduling, written once for the local and the Ray runner.

Order and readiness: the scenes a run makes of one story wait in story order
(`kg.graph.generation_order`), each with its continuity source (the
predecessor along a ``continuous`` edge, as the story was when it was
queued). A scene is ready once that source is neither waiting nor running in
this run (done, failed, or never asked for); cuts and independent branches
are ready at once. Stories of a batch take turns. When nothing is ready and
nothing runs (the story was edited into a loop meanwhile), the first waiting
scene goes, and its generation says what is missing.

Outcomes: `ERROR_RULES` is the one table of which error ends a scene how, the
first matching row winning: ``cancelled`` (no take kept, the status
restored), ``budget`` (the hosted budget refused the take; the story's other
scenes are not submitted), ``interrupted`` (another process holds the story;
its run stops), ``failed`` with the error's own message for errors a user can
act on (a bad reference image fails only its scene; a full disk says which
file and what to free, `engine.disk`), and ``failed`` naming the scene, its
traceback logged, for anything else; every message and traceback is redacted
(`engine.redaction`). An error outside the table (Ctrl-C) stops the run.

Budget: a story's takes in flight hold their estimated cost until their real
cost is saved, and `begin_take` checks each new take against what is spent
plus what is held, so a story's budget holds whether one take runs at a time
(local) or many (Ray).

Candidates: `SceneRun` is one scene being made as one take or as N candidate
takes (best of N) in flight together; once all have ended the best is
selected (`engine.best_of.select_best`: an edit or a selection made meanwhile
kept), and only then does the scene end, so its successors start from it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.backend import BackendError, GenerationCancelled
from engine.best_of import Candidates
from engine.budget import BudgetExceededError
from engine.continuity import ContinuityError
from engine.disk import disk_full, disk_full_message
from engine.generate import PreparedTake, prepare_take
from engine.redaction import redact, redacted_traceback
from engine.references import ReferenceFileError
from engine.runlock import RunLockedError
from engine.takes import candidate_seeds
from engine.video import ClipWriter
from kg.errors import StoryError
from kg.graph import DynamicSceneGraph, continuity_predecessor, generation_order
from kg.schema import MAX_CANDIDATES, PENDING_STATUSES, Take
from kg.store import load_story

__all__ = [
    "Kind",
    "Outcome",
    "ErrorRule",
    "ERROR_RULES",
    "outcome_of_error",
    "outcome_of_take",
    "stopped",
    "StoryProgress",
    "story_order",
    "plan_story",
    "next_scene",
    "begin_take",
    "SceneRun",
    "check_candidates",
]

log = logging.getLogger(__name__)

Kind = Literal["done", "failed", "interrupted", "cancelled", "budget"]


@dataclass(frozen=True)
class Outcome:
    """How one scene of a run ended, and the message a user reads."""

    kind: Kind
    message: str | None = None

    @property
    def failed(self) -> bool:
        """Listed with the failures (it did not finish and was not cancelled)."""
        return self.kind in ("failed", "interrupted", "budget")

    @property
    def stops_story(self) -> bool:
        """The story's scenes still waiting are not submitted after this one."""
        return self.kind in ("interrupted", "budget")


def _plain(scene_id: str | None, exc: BaseException) -> str:
    return redact(str(exc).strip("\"'"))  # a KeyError quotes its message


def _unexpected(scene_id: str | None, exc: BaseException) -> str:
    if scene_id is None:
        return f"the run stopped: {redact(exc)}"
    return f"scene {scene_id!r} could not be generated: {redact(exc)}"


@dataclass(frozen=True)
class ErrorRule:
    """Errors of these types (for which ``when(exc)`` holds, when given) end a
    scene as ``kind``, with ``message(scene, exc)`` (redacted); ``logged``:
    the traceback goes to the log, redacted (an error nobody foresaw)."""

    errors: tuple[type[BaseException], ...]
    kind: Kind
    message: Callable[[str | None, BaseException], str | None] = _plain
    logged: bool = False
    when: Callable[[BaseException], object] | None = None


ERROR_RULES: tuple[ErrorRule, ...] = (
    ErrorRule((GenerationCancelled,), "cancelled", lambda scene, exc: None),
    ErrorRule((BudgetExceededError,), "budget"),
    ErrorRule((RunLockedError,), "interrupted"),
    ErrorRule(
        (BackendError, ContinuityError, ReferenceFileError, StoryError, KeyError),
        "failed",
    ),
    ErrorRule(
        (Exception,), "failed", lambda _, exc: disk_full_message(exc), when=disk_full
    ),
    ErrorRule((Exception,), "failed", _unexpected, logged=True),
)


def outcome_of_error(scene_id: str | None, exc: BaseException) -> Outcome:
    """The outcome of ``exc`` ending scene ``scene_id`` (None: the run itself),
    by the first matching row of `ERROR_RULES`; an error no row matches is
    raised again."""
    for rule in ERROR_RULES:
        if isinstance(exc, rule.errors) and (rule.when is None or rule.when(exc)):
            message = rule.message(scene_id, exc)
            if rule.logged:
                log.error("%s\n%s", message, redacted_traceback(exc))
            return Outcome(rule.kind, message)
    raise exc


def outcome_of_take(take: Take) -> Outcome:
    """A finished take is ``done``; a failed one carries its error."""
    if take.status == "done":
        return Outcome("done")
    return Outcome("failed", take.error or "failed")


def stopped(exc: BaseException) -> Outcome:
    """The outcome of the scenes a run leaves when ``exc`` stops it."""
    outcome = outcome_of_error(None, exc)
    if outcome.kind == "failed":
        return Outcome("interrupted", outcome.message)
    return outcome


@dataclass
class StoryProgress:
    """Where one story of a run stands, and what of it may start next."""

    story_dir: Path
    pending: list[str]  # waiting, in story order
    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # each waiting scene's continuity source as it was queued (orders only;
    # generation checks continuity on the newest state)
    after: dict[str, str | None] = field(default_factory=dict, repr=False)
    running: set[str] = field(default_factory=set, repr=False)
    # done with the backend, their clip and scores still being made: a
    # continuous successor may start from their take meanwhile
    finishing: set[str] = field(default_factory=set, repr=False)
    stop: Outcome | None = field(default=None, repr=False)
    held: dict[tuple[str, int], float] = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        return not self.pending and not self.running and not self.finishing

    def add(self, scene_id: str, after: str | None) -> None:
        """Queue a scene behind those already waiting."""
        self.pending.append(scene_id)
        self.after[scene_id] = after

    def next_ready(self) -> str | None:
        """The first waiting scene whose continuity source is not waiting or
        running (one still finishing may be continued from); None when none
        is or the story was stopped."""
        if self.stop is not None or not self.pending:
            return None
        busy = set(self.pending) | self.running
        for sid in self.pending:
            if self.after.get(sid) not in busy:
                return sid
        return None if self.running else self.pending[0]

    def start(self, scene_id: str) -> None:
        """The scene leaves the queue and runs."""
        self.pending.remove(scene_id)
        self.running.add(scene_id)

    def finish_later(self, scene_id: str) -> None:
        """The scene's backend is done; its clip and scores are still to come
        (`end` records how it ends). Its successors may start."""
        self.running.discard(scene_id)
        self.finishing.add(scene_id)

    def end(self, scene_id: str, outcome: Outcome) -> None:
        """Record how the scene ended (a budget or lock stop stops the story)."""
        self.running.discard(scene_id)
        self.finishing.discard(scene_id)
        if scene_id in self.pending:
            self.pending.remove(scene_id)
        if outcome.kind == "done":
            self.finished.append(scene_id)
        elif outcome.kind == "cancelled":
            self.cancelled.append(scene_id)
        else:
            self.failed.append(scene_id)
            self.errors[scene_id] = outcome.message or outcome.kind
        if outcome.stops_story and self.stop is None:
            self.stop = outcome

    def drain(self, outcome: Outcome | None = None) -> list[str]:
        """End every waiting scene: with ``outcome``, else the story's stop,
        else cancelled; returns their ids. The story may run again after."""
        outcome = outcome or self.stop or Outcome("cancelled")
        left = list(self.pending)
        for sid in left:
            self.end(sid, outcome)
        self.stop = None
        return left

    # budget ---------------------------------------------------------------------
    def in_flight_usd(self) -> float:
        """USD the story's takes in flight are estimated to cost."""
        return sum(self.held.values())

    def hold(self, prepared: PreparedTake) -> None:
        """Hold a charging take's estimate until `release`."""
        if not prepared.impl.charges:
            return
        hosted = prepared.tip.story.settings.hosted
        estimate = prepared.impl.estimate_cost(prepared.request, hosted)
        if estimate is not None:
            self.held[(prepared.tip.scene_id, prepared.tip.index)] = estimate[0]

    def release(self, prepared: PreparedTake) -> None:
        """The take's cost is saved (or it made none): stop holding it."""
        self.held.pop((prepared.tip.scene_id, prepared.tip.index), None)


def story_order(
    graph: DynamicSceneGraph, wanted: Callable[[str], bool]
) -> list[tuple[str, str | None]]:
    """The wanted scenes in story order, each with its continuity source."""
    return [
        (sid, continuity_predecessor(graph, sid))
        for sid in generation_order(graph)
        if wanted(sid)
    ]


def plan_story(
    story_dir: str | os.PathLike[str],
    scene_ids: Sequence[str] | None = None,
    force: bool = False,
) -> StoryProgress:
    """A story's run: ``scene_ids``, else every pending scene (every scene
    with ``force``), in story order."""
    story_dir = Path(story_dir)
    story = load_story(story_dir)
    if scene_ids is not None:
        picked = set(scene_ids)

        def wanted(sid: str) -> bool:
            return sid in picked
    else:

        def wanted(sid: str) -> bool:
            return force or story.scene(sid).status in PENDING_STATUSES

    progress = StoryProgress(story_dir, [])
    for sid, after in story_order(DynamicSceneGraph(story), wanted):
        progress.add(sid, after)
    return progress


def next_scene(stories: Sequence[StoryProgress], turn: int) -> tuple[int, str] | None:
    """The next ready scene, stories taking turns from story ``turn``."""
    n = len(stories)
    for k in range(n):
        i = (turn + k) % n
        sid = stories[i].next_ready()
        if sid is not None:
            return i, sid
    return None


def begin_take(
    story: StoryProgress, scene_id: str, **options: Any
) -> PreparedTake | Take:
    """`engine.generate.prepare_take` with the story's budget counting its
    takes in flight; a charging take begun holds its estimate (`release` it
    once it ends)."""
    prepared = prepare_take(
        story.story_dir, scene_id, in_flight_usd=story.in_flight_usd(), **options
    )
    if isinstance(prepared, PreparedTake):
        story.hold(prepared)
    return prepared


@dataclass(eq=False)
class SceneRun:
    """A scene being made: one take, or ``wanted`` candidates (the seeds
    after those the scene used) that may be in flight together (`Candidates`: none
    selects itself; the choice does, keeping the user's edit or selection
    made meanwhile)."""

    story: StoryProgress
    scene_id: str
    wanted: int = 1
    started: int = 0
    flying: int = 0
    error: Outcome | None = None
    made: Candidates = field(init=False)
    # the candidates' seeds (`engine.takes.candidate_seeds`), chosen at the
    # first begin: after the seeds the scene already used, as locally
    seeds: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.made = Candidates(self.story.story_dir, self.scene_id)

    @property
    def takes(self) -> list[Take]:
        return self.made.takes

    @property
    def more(self) -> bool:
        """Another take is still to begin."""
        return self.error is None and self.started < self.wanted

    @property
    def over(self) -> bool:
        """Every take has ended (and none is to begin)."""
        return not self.flying and not self.more

    def begin(self, **options: Any) -> PreparedTake | None:
        """Begin the next take (`begin_take`); None when none is in flight
        after all (it could not begin: `error`; an identical take: reused)."""
        offset, self.started = self.started, self.started + 1
        if self.wanted > 1:
            options["force"] = True  # candidates are new takes
        try:
            if self.wanted > 1:  # after the seeds the scene used (best_of's)
                if not self.seeds:
                    story = load_story(self.story.story_dir)
                    self.seeds = candidate_seeds(
                        story.scene(self.scene_id),
                        self.wanted,
                        story.settings.new_take_seed,
                    )
                options["seed"] = self.seeds[offset]
            else:
                options["seed_offset"] = offset
            prepared = begin_take(self.story, self.scene_id, **options)
        except Exception as exc:  # how it ends: ERROR_RULES
            self.error = self.error or outcome_of_error(self.scene_id, exc)
            return None
        if isinstance(prepared, Take):
            self.takes.append(prepared)
            return None
        self.flying += 1
        if self.wanted > 1:
            self.made.begin(prepared)
        return prepared

    def settle(
        self, prepared: PreparedTake, end: Callable[[PreparedTake], Take]
    ) -> None:
        """End a take in flight with ``end(prepared)`` (its files and scores,
        or its failure; a cancelled take is abandoned and raises)."""
        try:
            self.takes.append(end(prepared))
        except Exception as exc:  # how it ends: ERROR_RULES
            self.error = self.error or outcome_of_error(self.scene_id, exc)
        finally:
            self.flying -= 1
            self.story.release(prepared)

    def outcome(self, writer: ClipWriter | None = None) -> Outcome:
        """How the scene ended, once `over`: candidates that finished choose
        their best (also when the others were cancelled or failed)."""
        try:
            chosen = None
            if self.wanted > 1 and any(t.status == "done" for t in self.takes):
                chosen = self.made.select(writer)
            if self.error is not None:
                return self.error
            return outcome_of_take(chosen or self.takes[-1])
        except Exception as exc:  # how it ends: ERROR_RULES
            return outcome_of_error(self.scene_id, exc)


def check_candidates(candidates: int, observer: object | None) -> None:
    """Refuse a candidate count a runner cannot make (best of N needs scores)."""
    if not 1 <= candidates <= MAX_CANDIDATES:
        raise ValueError(f"candidates must be 1 to {MAX_CANDIDATES}, got {candidates}")
    if candidates > 1 and observer is None:
        raise ValueError(
            "best of N ranks takes by their scores; this runner has no "
            "observer (turn scoring on)"
        )
