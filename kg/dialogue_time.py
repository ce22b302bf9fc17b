"""How long a scene's dialogue takes to say, against how long the scene lasts.

Squeezing two lines into two seconds makes a speaking model rush or drop
words, so the scene editor warns before generating. The estimate counts
words at `WORDS_PER_SECOND` (150 words a minute, the pace of conversational
English and of broadcast reading, 150-160 a minute, measured over whole
sentences) plus a breath between lines (`PAUSE_BETWEEN_LINES`). A supplied
dialogue track is measured as it is: its own length against the scene's.

Examples
--------
>>> from kg.schema import DialogueLine
>>> lines = [DialogueLine(character_id="mara", text="Is anyone here? Hello?")]
>>> round(dialogue_seconds(lines), 2)
1.6
>>> print(dialogue_overrun(lines, 1.0))  # doctest: +NORMALIZE_WHITESPACE
The dialogue has 4 words: about 1.6 s at 2.5 words a second (150 a minute,
conversational speech), but the scene lasts 1.0 s; lengthen it to 2.0 s or
shorten the lines.
>>> dialogue_overrun(lines, 2.0) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kg.schema import DialogueLine

__all__ = [
    "WORDS_PER_SECOND",
    "PAUSE_BETWEEN_LINES",
    "dialogue_seconds",
    "dialogue_overrun",
    "track_overrun",
]

# 150 words a minute: conversational English (and broadcast reading, 150-160
# a minute); faster delivery exists but sounds rushed in a short clip.
WORDS_PER_SECOND = 2.5
# A breath between two speakers' lines (turn-taking gaps run 0.2-0.3 s).
PAUSE_BETWEEN_LINES = 0.25


def _words(lines: Sequence[DialogueLine]) -> int:
    return sum(len(line.text.split()) for line in lines)


def dialogue_seconds(lines: Sequence[DialogueLine]) -> float:
    """Seconds the ``lines`` take at `WORDS_PER_SECOND`, a pause between lines."""
    if not lines:
        return 0.0
    return _words(lines) / WORDS_PER_SECOND + PAUSE_BETWEEN_LINES * (len(lines) - 1)


def _half_up(seconds: float) -> float:
    """``seconds`` rounded up to the next half second (what the editor steps)."""
    return math.ceil(seconds * 2 - 1e-9) / 2


def dialogue_overrun(lines: Sequence[DialogueLine], scene_seconds: float) -> str | None:
    """A warning when ``lines`` need more time than the scene has, else None."""
    needed = dialogue_seconds(lines)
    if needed <= scene_seconds:
        return None
    words = _words(lines)
    return (
        f"The dialogue has {words} word{'s' if words != 1 else ''}: about "
        f"{needed:.1f} s at {WORDS_PER_SECOND:g} words a second "
        f"({WORDS_PER_SECOND * 60:.0f} a minute, conversational speech), but "
        f"the scene lasts {scene_seconds:.1f} s; lengthen it to "
        f"{_half_up(needed):.1f} s or shorten the lines."
    )


def track_overrun(track_seconds: float, scene_seconds: float) -> str | None:
    """A warning when a supplied dialogue track outlasts the scene, else None.

    >>> print(track_overrun(3.2, 2.0))  # doctest: +NORMALIZE_WHITESPACE
    The dialogue track lasts 3.2 s but the scene 2.0 s: a take keeps its first
    2.0 s; lengthen the scene to 3.5 s or trim the track.
    """
    if track_seconds <= scene_seconds + 0.05:  # a frame's slack
        return None
    return (
        f"The dialogue track lasts {track_seconds:.1f} s but the scene "
        f"{scene_seconds:.1f} s: a take keeps its first {scene_seconds:.1f} s; "
        f"lengthen the scene to {_half_up(track_seconds):.1f} s or trim the track."
    )
