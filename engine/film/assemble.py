"""Assemble a story line's film: its shots as one H.264 mp4 that a browser plays.

Frames stream from the takes' clips through the film encoder one at a time
(a 200-scene line never sits in memory; one decoder process serves 64
clips, `engine.video.decode_clips`): the repeated head of a continuous join
is skipped, takes of another size are scaled by ffmpeg on decode,
another frame rate is conformed by picking the nearest source frame, and a
dissolve at a cut blends the last N frames of one shot into the first N of
the next (linear, as ffmpeg's ``xfade=fade``). When any take has sound, the
audio of every shot is cut the same way (silence for shots without any),
joined with ``acrossfade`` at dissolves and muxed as AAC
(`engine.sound.mux_aac`).

The film lands atomically at ``films/<leaf>-<key>.mp4`` (`FilmPlan.path`):
``key`` hashes the takes and options, so assembling an unchanged line again
returns the existing file untouched, and older films of the line are removed
once the new one is in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import FilmCancelledError
from engine.film.plan import FilmPlan, Shot
from engine.sound import audio_streams, has_audio, mux_aac
from engine.video import decode_clips, open_writer, remove_partial_files
from kg.layout import FILMS_DIR
from kg.paths import atomic_path, make_folder, resolve_asset

__all__ = ["Film", "FilmCancelledError", "assemble_film", "AUDIO_RATE"]

AUDIO_RATE = 48_000
# A partial film untouched this long belongs to no live assembly (one writes
# frames, or muxes sound, continuously).
STALE_PARTIAL_S = 600.0
FilmProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Film:
    """An assembled film: where it is, how long, and what was done to make it."""

    path: Path
    frames: int
    fps: int
    audio: bool
    reused: bool
    notes: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def _shot_frames(
    shot: Shot, plan: FilmPlan, source: Iterator[np.ndarray]
) -> Iterator[np.ndarray]:
    """The frames ``shot`` contributes, at the film's fps, taken from the
    shot's ``shot.frames`` frames in ``source`` (all of them are consumed)."""
    # film frame j shows source frame head + floor(j * fps / film_fps)
    picks = [
        min(shot.frames - 1, shot.head + (j * shot.fps) // plan.fps)
        for j in range(shot.film_frames)
    ]
    it = iter(picks)
    want = next(it, None)
    for at in range(shot.frames):
        frame = next(source)
        while want == at:
            yield frame
            want = next(it, None)


def _blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    mixed = a.astype(np.float32) * (1.0 - t) + b.astype(np.float32) * t
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def _write_video(
    root: Path,
    plan: FilmPlan,
    tmp: Path,
    progress: FilmProgress | None,
    cancelled: Callable[[], bool] | None,
) -> int:
    writer = open_writer(tmp, plan.width, plan.height, plan.fps)
    source = decode_clips(
        [(resolve_asset(root, s.video), s.frames) for s in plan.shots],
        (plan.width, plan.height),
    )
    written = 0
    held: list[np.ndarray] = []  # the previous shot's frames a dissolve blends
    try:
        for i, shot in enumerate(plan.shots):
            if cancelled is not None and cancelled():
                raise FilmCancelledError("film assembly cancelled")
            fade_out = plan.shots[i + 1].crossfade if i + 1 < len(plan.shots) else 0
            keep_from = shot.film_frames - fade_out
            tail: list[np.ndarray] = []
            for j, frame in enumerate(_shot_frames(shot, plan, source)):
                if j < shot.crossfade:
                    frame = _blend(held[j], frame, (j + 1) / (shot.crossfade + 1))
                if j >= keep_from:
                    tail.append(frame)  # sent blended with the next shot
                    continue
                writer.send(np.ascontiguousarray(frame))
                written += 1
                if progress is not None and written % 8 == 0:
                    progress(written, plan.frames)
            held = tail
        writer.close()
    except BaseException:
        writer.close()
        raise
    finally:
        source.close()
    if progress is not None:
        progress(written, plan.frames)
    return written


def _audio_graph(
    root: Path, plan: FilmPlan, sounding: list[bool]
) -> tuple[list[Path], str]:
    """The clips that sound and the ``-filter_complex`` graph of the film's sound
    (input 0 is the film's picture, the clips follow; the output is ``[aout]``).
    """
    sounds: list[Path] = []
    chains: list[str] = []
    fmt = f"aformat=sample_rates={AUDIO_RATE}:channel_layouts=stereo"
    for k, (shot, sound) in enumerate(zip(plan.shots, sounding, strict=True)):
        seconds = shot.film_frames / plan.fps
        if sound:
            start = shot.head / shot.fps
            sounds.append(resolve_asset(root, shot.video))
            n = len(sounds)  # input 0 is the film's video
            chains.append(
                f"[{n}:a]atrim=start={start:.6f},asetpts=PTS-STARTPTS,{fmt},"
                f"apad,atrim=end={seconds:.6f}[a{k}]"
            )
        else:
            chains.append(
                f"anullsrc=r={AUDIO_RATE}:cl=stereo,atrim=end={seconds:.6f},{fmt}[a{k}]"
            )
    current = "a0"
    for k, shot in enumerate(plan.shots[1:], start=1):
        out = f"j{k}"
        if shot.crossfade:
            d = shot.crossfade / plan.fps
            chains.append(f"[{current}][a{k}]acrossfade=d={d:.6f}:c1=tri:c2=tri[{out}]")
        else:
            chains.append(f"[{current}][a{k}]concat=n=2:v=0:a=1[{out}]")
        current = out
    chains.append(f"[{current}]anull[aout]")
    return sounds, ";".join(chains)


def _add_sound(
    root: Path, plan: FilmPlan, video: Path, out: Path, sounding: list[bool]
) -> None:
    sounds, graph = _audio_graph(root, plan, sounding)
    mux_aac(video, sounds, out, audio_filter=graph, seconds=plan.frames / plan.fps)


def _remove_older(root: Path, plan: FilmPlan, keep: Path) -> None:
    folder = resolve_asset(root, FILMS_DIR)
    for old in folder.glob(f"{plan.line.leaf}-*.mp4"):
        stem_key = old.stem[len(plan.line.leaf) + 1 :]
        if old != keep and len(stem_key) == 12 and not old.is_symlink():
            old.unlink(missing_ok=True)


def assemble_film(
    story_dir: str | Path,
    plan: FilmPlan,
    *,
    out: str | Path | None = None,
    progress: FilmProgress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Film:
    """Write the film of ``plan`` (see the module docstring) and return it.

    ``out`` writes it elsewhere instead (any path; the cache is not used).
    ``progress(frames_written, frames_total)`` is called as frames are
    encoded; ``cancelled()`` is checked between shots and raises
    `FilmCancelledError` (nothing is left behind).
    """
    root = Path(story_dir)
    cached = out is None
    if cached:
        make_folder(root, FILMS_DIR)
        # films of an assembly killed outright (SIGKILL, a crash): a live one
        # writes its file continuously, so only files left alone are removed
        remove_partial_files(root, FILMS_DIR, older_than=STALE_PARTIAL_S)
        target = resolve_asset(root, plan.path)
    else:
        target = Path(out)
    if cached and target.is_file():
        if progress is not None:
            progress(plan.frames, plan.frames)
        return Film(target, plan.frames, plan.fps, has_audio(target), True, plan.notes)
    sounding = audio_streams([resolve_asset(root, s.video) for s in plan.shots])
    audio = any(sounding)
    with atomic_path(target) as tmp:
        if audio:
            # a hidden partial name: `remove_partial_files` finds it after a crash
            silent = tmp.with_name(f"{tmp.stem}-video{tmp.suffix}")
            try:
                written = _write_video(root, plan, silent, progress, cancelled)
                _add_sound(root, plan, silent, tmp, sounding)
            finally:
                silent.unlink(missing_ok=True)
        else:
            written = _write_video(root, plan, tmp, progress, cancelled)
    assert written == plan.frames, f"wrote {written} frames, planned {plan.frames}"
    if cached:
        _remove_older(root, plan, target)
    return Film(target, written, plan.fps, audio, False, plan.notes)
