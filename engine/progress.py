"""Where a take's time goes: its phases, their progress, and an ETA from history.

A take passes through five phases in order: ``load`` (the model), ``denoise``
(window i of N, step s of S), ``decode`` (chunk c of C), ``encode`` (the
clip) and ``score`` (the observer). Backends keep the contract of
`engine.backend`, diffusers' ``callback_on_step_end`` shape: they call
``progress(step, total[, window, windows])`` after each denoising step. The
engine hands them a `PhaseProgress`, which is such a callable and also takes
phase reports; a backend reports a phase with `report_phase` (a no-op for a
plain step callback, so a backend still runs under any caller). A backend
that reports nothing but steps still gets honest phases: the engine starts a
take in ``load``, the first step moves it to ``denoise``, and the last step of
the last window to ``decode``.

`PhaseProgress` times every phase; the take records those seconds
(``phase.<name>`` in its timings), and `stage_estimates` turns a story's
recorded timings into per-phase expectations for the ETA (`eta_s`).

A backend that can show what it is making reports a `Preview` with
`report_preview` (a no-op for a plain step callback): the last frame of each
decoded chunk, a cheap latent preview every second or so of denoising
(`engine.preview`, when `preview_due`), or the frame it rendered last. The
clock keeps the latest, shrunk to at most `PREVIEW_MAX_SIDE` pixels, for a
UI to show (`PhaseProgress.latest_preview`); a take's clock that relays to
another clock hands its previews on too.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from kg.schema import Take

__all__ = [
    "PHASES",
    "Phase",
    "PhaseReport",
    "PhaseProgress",
    "report_phase",
    "PREVIEW_MAX_SIDE",
    "PREVIEW_EVERY_S",
    "Preview",
    "shrink_frame",
    "report_preview",
    "preview_due",
    "stage_estimates",
    "eta_s",
]

Phase = Literal["load", "denoise", "decode", "encode", "score"]
PHASES: tuple[Phase, ...] = ("load", "denoise", "decode", "encode", "score")
PREVIEW_MAX_SIDE = 320  # px: the progress panel shows a preview at most this wide
PREVIEW_EVERY_S = 1.0  # latent previews at most once a second (each costs a sync)

# Where takes recorded before phase timings keep the same stage.
_LEGACY_KEYS: dict[str, tuple[str, ...]] = {
    "load": ("backend.load",),
    "denoise": ("backend.denoise", "backend.render", "backend.submit"),
    "decode": ("backend.decode", "backend.download"),
    "encode": ("encode",),
    "score": ("observe",),
}


@dataclass(frozen=True)
class PhaseReport:
    """Where a take is: its phase, ``done`` of ``total`` units in it (steps of
    the current window, chunks, frames; 0 of 0 when it has no count), the
    window of a long take, and the seconds spent in the phase so far."""

    phase: Phase
    done: int = 0
    total: int = 0
    window: int = 1
    windows: int = 1
    elapsed_s: float = 0.0


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare as values
class Preview:
    """The latest picture of a take being made.

    ``frame``: uint8 ``[H, W, 3]``, its long side at most `PREVIEW_MAX_SIDE`
    (read-only); ``source``: what it is ("decoded chunk 2/5", "latent
    preview, step 12/30", "rendered frame 40/48"); ``phase``: the phase it
    came in; ``when``: the clock's time it came (seconds).
    """

    frame: np.ndarray = field(repr=False)
    source: str
    phase: Phase | None = None
    when: float = 0.0


def shrink_frame(frame: np.ndarray, max_side: int = PREVIEW_MAX_SIDE) -> np.ndarray:
    """A small copy of ``frame`` (uint8 ``[H, W, 3]``): long side at most
    ``max_side`` (OpenCV's area average), read-only. One copy however large
    the frame.

    >>> shrink_frame(np.zeros((720, 1280, 3), np.uint8)).shape
    (180, 320, 3)
    >>> shrink_frame(np.zeros((2, 3), np.uint8))
    Traceback (most recent call last):
    ...
    ValueError: a preview frame must be uint8 [H, W, 3]; got uint8 (2, 3)
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            "a preview frame must be uint8 [H, W, 3]; got "
            f"{frame.dtype} {tuple(frame.shape)}"
        )
    height, width = frame.shape[:2]
    if min(height, width) < 1:
        raise ValueError(f"a preview frame must not be empty; got {frame.shape}")
    scale = max_side / max(height, width)
    if scale >= 1.0:
        small = frame.copy()
    else:
        import cv2  # only when a preview is made

        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    small.flags.writeable = False
    return small


class PhaseProgress:
    """The progress callable the engine hands a backend, and its phase clock.

    Called as ``progress(step, total, window=1, windows=1)`` it reports a
    denoising step (and forwards it to ``steps``, a plain step callback, the
    way backends always called one); `phase` reports any phase. Every
    report goes to ``listener``. ``timings`` holds the seconds spent in each
    phase so far. Thread-safe: encoding and scoring report from other threads.
    """

    def __init__(
        self,
        listener: Callable[[PhaseReport], None] | None = None,
        steps: Callable[..., None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._listener = listener
        self._steps = steps
        self._clock = clock
        self._lock = threading.Lock()
        self._current: PhaseReport | None = None
        self._since = 0.0
        self._spent: dict[str, float] = {}
        self.order: list[Phase] = []  # phases in the order they began
        self._preview: Preview | None = None

    def __call__(
        self, step: int, total: int, window: int = 1, windows: int = 1
    ) -> None:
        if self._steps is not None:
            if windows > 1:
                self._steps(step, total, window, windows)
            else:
                self._steps(step, total)
        last = step >= total > 0 and window >= windows
        self.phase("denoise", step, total, window, windows)
        if last:  # a backend that reports no decode: it decodes now
            self.phase("decode")

    def phase(
        self,
        name: Phase,
        done: int = 0,
        total: int = 0,
        window: int = 1,
        windows: int = 1,
    ) -> None:
        """Report ``done`` of ``total`` in phase ``name`` (a new phase starts its
        clock; the previous one's time is kept)."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}; use one of {PHASES}")
        with self._lock:
            now = self._clock()
            current = self._current
            if current is None or current.phase != name:
                if current is not None:
                    self._spent[current.phase] = (
                        self._spent.get(current.phase, 0.0) + now - self._since
                    )
                self._since = now
                if name not in self.order:
                    self.order.append(name)
            report = PhaseReport(name, done, total, window, windows, now - self._since)
            self._current = report
        if self._listener is not None:
            self._listener(report)

    def reset(self) -> None:
        """Start over: a new take (no phase yet, no time spent)."""
        with self._lock:
            self._current = None
            self._spent = {}
            self.order = []
            self._preview = None

    def detach(self) -> None:
        """Report to no one from now on (the clock keeps its timings): a take
        that finishes behind the next scene's denoising."""
        self._listener = None
        self._steps = None

    def relay(self, report: PhaseReport) -> None:
        """Take another clock's report as this one's (the run's clock hears
        each take's, e.g. the candidates of best of N)."""
        r = report
        self.phase(r.phase, r.done, r.total, r.window, r.windows)

    def preview(self, frame: np.ndarray, source: str) -> None:
        """Keep a shrunk copy of ``frame`` (uint8 ``[H, W, 3]``) as the latest
        preview, ``source`` saying what it is (see `Preview`)."""
        with self._lock:
            phase = self._current.phase if self._current is not None else None
        self._keep(Preview(shrink_frame(frame), source, phase, self._clock()))

    def _keep(self, preview: Preview) -> None:
        with self._lock:
            self._preview = preview
        owner = getattr(self._listener, "__self__", None)  # relaying to a clock
        if isinstance(owner, PhaseProgress) and owner is not self:
            owner._keep(preview)

    @property
    def latest_preview(self) -> Preview | None:
        """The take's latest preview (None before the first, and after `reset`)."""
        with self._lock:
            return self._preview

    def wants_preview(self, every_s: float = PREVIEW_EVERY_S) -> bool:
        """Whether a costly preview is due: none yet this take, or the last
        one is ``every_s`` seconds old."""
        with self._lock:
            last = self._preview
        return last is None or self._clock() - last.when >= every_s

    @property
    def current(self) -> PhaseReport | None:
        """The latest report, its elapsed time brought up to now."""
        with self._lock:
            if self._current is None:
                return None
            elapsed = self._clock() - self._since
            c = self._current
            return PhaseReport(c.phase, c.done, c.total, c.window, c.windows, elapsed)

    @property
    def timings(self) -> dict[str, float]:
        """Seconds per phase so far (the current one up to now)."""
        with self._lock:
            spent = dict(self._spent)
            if self._current is not None:
                name = self._current.phase
                spent[name] = spent.get(name, 0.0) + self._clock() - self._since
            return spent


def report_phase(
    progress: Any,
    name: Phase,
    done: int = 0,
    total: int = 0,
    window: int = 1,
    windows: int = 1,
) -> None:
    """Tell ``progress`` (the callable a backend was given) which phase it is
    in: ``done`` of ``total`` units. A plain step callback knows no phases and
    is left alone, so backends report phases under any caller."""
    if isinstance(progress, PhaseProgress):
        progress.phase(name, done, total, window, windows)


def report_preview(progress: Any, frame: np.ndarray, source: str) -> None:
    """Give ``progress`` (the callable a backend was given) a preview frame
    (uint8 ``[H, W, 3]``, any size: it keeps a shrunk copy). A plain step
    callback shows no pictures and is left alone."""
    if isinstance(progress, PhaseProgress):
        progress.preview(frame, source)


def preview_due(progress: Any, every_s: float = PREVIEW_EVERY_S) -> bool:
    """Whether a backend should make a costly preview now (a latent preview
    between denoising steps): ``progress`` keeps previews and has had none
    for ``every_s`` seconds. Always False for a plain step callback."""
    return isinstance(progress, PhaseProgress) and progress.wants_preview(every_s)


def _phase_seconds(take: Take, name: str) -> float | None:
    timings = take.timings or {}
    if f"phase.{name}" in timings:
        return float(timings[f"phase.{name}"])
    for key in _LEGACY_KEYS[name]:
        if key in timings:
            return float(timings[key])
    return None


def stage_estimates(takes: Iterable[Take], backend: str) -> dict[str, float]:
    """The median seconds of each phase over the done ``takes`` made with
    ``backend`` (a phase no take recorded is absent).

    >>> from kg.schema import GenerationParams, Take
    >>> def take(i, decode):
    ...     p = GenerationParams(backend="ltx", model="", prompt="", seed=1,
    ...         steps=1, guidance=1.0, width=64, height=64, num_frames=9, fps=8)
    ...     return Take(index=i, status="done", params=p,
    ...                 timings={"phase.decode": decode, "encode": 2.0})
    >>> stage_estimates([take(1, 10.0), take(2, 30.0)], "ltx")
    {'decode': 20.0, 'encode': 2.0}
    """
    seen: dict[str, list[float]] = {}
    for take in takes:
        if take.status != "done" or take.params.backend != backend:
            continue
        for name in PHASES:
            seconds = _phase_seconds(take, name)
            if seconds is not None:
                seen.setdefault(name, []).append(seconds)
    return {name: statistics.median(v) for name, v in seen.items()}


def eta_s(
    report: PhaseReport | None, estimates: dict[str, float], queued: int = 0
) -> float | None:
    """Seconds left: the rest of the current phase (its own rate when it
    counts units, else its estimate less the time spent), the later phases'
    estimates, and ``queued`` more takes of the estimated length. None when
    nothing is known yet.

    >>> r = PhaseReport("denoise", done=5, total=20, elapsed_s=10.0)
    >>> eta_s(r, {"decode": 8.0, "encode": 2.0})
    40.0
    >>> eta_s(r, {"load": 3.0, "denoise": 40.0, "decode": 8.0}, queued=1)
    89.0

    In window 2 of 3 the denoise clock has run through window 1 too:

    >>> w = PhaseReport("denoise", done=5, total=20, window=2, windows=3,
    ...                 elapsed_s=25.0)
    >>> eta_s(w, {})
    35.0
    """
    if report is None:
        if not estimates:
            return None
        return sum(estimates.values()) * max(queued, 0) if queued else None
    left: float | None = None
    if report.total > 0 and report.done > 0:
        done = report.done
        units = report.total - report.done
        if report.phase == "denoise":  # the clock runs on across windows
            done += (report.window - 1) * report.total
            units += (report.windows - report.window) * report.total
        rate = report.elapsed_s / done
        left = rate * units
    elif report.phase in estimates:
        left = max(estimates[report.phase] - report.elapsed_s, 0.0)
    later = PHASES[PHASES.index(report.phase) + 1 :]
    rest = sum(estimates.get(name, 0.0) for name in later)
    if left is None and not rest:
        return None
    per_take = sum(estimates.values())
    return (left or 0.0) + rest + per_take * max(queued, 0)
