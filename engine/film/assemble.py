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

The film is H.264 with a keyframe at every scene start and at least every
second, tagged BT.709 (`engine.video.open_writer`). A line of cuts only, its
clips played whole at the film's size and rate, is joined without
re-encoding where the clips allow it (`engine.film.stream_copy`: the same
encoder settings, keyframes at their starts and every second); the film's
notes say which was done, and why a line of cuts was re-encoded.

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
from engine.film.stream_copy import (
    VideoTrack,
    concat_copy,
    copy_refusal,
    decode_joined,
    read_video_track,
)
from engine.sound import audio_streams, has_audio, mux_aac
from engine.video import decode_clips, open_writer, remove_partial_files
from kg.layout import FILMS_DIR
from kg.paths import atomic_path, make_folder, resolve_asset

__all__ = [
    "AUDIO_RATE",
    "COPIED",
    "RE_ENCODED",
    "Film",
    "FilmCancelledError",
    "assemble_film",
]

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
    tracks: list[VideoTrack | None],
) -> int:
    # BT.709 clips pass to the encoder as their planes (no colour conversion);
    # clips of one encoding at the film's size through one decoder
    planar = all(t is not None and t.bt709_tv for t in tracks)
    pix_fmt = "yuv420p" if planar else "rgb24"
    writer = open_writer(
        tmp,
        plan.width,
        plan.height,
        plan.fps,
        key_frames=plan.starts(),
        pix_fmt_in=pix_fmt,
    )
    paths = [resolve_asset(root, s.video) for s in plan.shots]
    counts = [s.frames for s in plan.shots]
    size = (plan.width, plan.height)
    joined = (
        planar
        and len({t.avcc for t in tracks if t is not None}) == 1
        and all((s.width, s.height) == size for s in plan.shots)
    )
    source = (
        decode_joined(paths, counts, size)
        if joined
        else decode_clips(list(zip(paths, counts, strict=True)), size, pix_fmt)
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


COPIED = "joined without re-encoding: the clips' video streams were copied"
RE_ENCODED = "re-encoded"


def _copy_plan(
    root: Path, plan: FilmPlan, tracks: list[VideoTrack | None]
) -> tuple[bool, str | None]:
    """Whether the film can copy its clips' streams, and why not for a line
    of cuts (None for a line that trims or dissolves: re-encoding is plain)."""
    whole = all(
        s.head == 0
        and s.crossfade == 0
        and (s.width, s.height, s.fps) == (plan.width, plan.height, plan.fps)
        and s.film_frames == s.frames
        for s in plan.shots
    )
    if not whole:
        return False, None
    paths = [resolve_asset(root, s.video) for s in plan.shots]
    why = copy_refusal(paths, tracks, [s.frames for s in plan.shots], plan.fps)
    return why is None, why


def _copy_video(
    root: Path, plan: FilmPlan, tmp: Path, progress: FilmProgress | None
) -> int:
    concat_copy([resolve_asset(root, s.video) for s in plan.shots], tmp)
    track = read_video_track(tmp)
    written = 0 if track is None else track.samples
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
    copy_streams: bool = True,
) -> Film:
    """Write the film of ``plan`` (see the module docstring) and return it.

    ``out`` writes it elsewhere instead (any path; the cache is not used).
    ``progress(frames_written, frames_total)`` is called as frames are
    encoded; ``cancelled()`` is checked between shots and raises
    `FilmCancelledError` (nothing is left behind). ``copy_streams`` False
    re-encodes a line of whole clips too (see the module docstring).
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
    paths = [resolve_asset(root, s.video) for s in plan.shots]
    tracks = [read_video_track(p) for p in paths]
    if all(t is not None for t in tracks):  # MP4s say so in their boxes
        sounding = [t.sound for t in tracks if t is not None]
    else:
        sounding = audio_streams(paths)
    audio = any(sounding)
    copy, why = _copy_plan(root, plan, tracks) if copy_streams else (False, None)
    if cancelled is not None and cancelled():
        raise FilmCancelledError("film assembly cancelled")

    def video(path: Path) -> int:
        if copy:
            return _copy_video(root, plan, path, progress)
        return _write_video(root, plan, path, progress, cancelled, tracks)

    with atomic_path(target) as tmp:
        if audio:
            # a hidden partial name: `remove_partial_files` finds it after a crash
            silent = tmp.with_name(f"{tmp.stem}-video{tmp.suffix}")
            try:
                written = video(silent)
                _add_sound(root, plan, silent, tmp, sounding)
            finally:
                silent.unlink(missing_ok=True)
        else:
            written = video(tmp)
        if written != plan.frames:
            raise OSError(f"the film holds {written} frames, planned {plan.frames}")
    if cached:
        _remove_older(root, plan, target)
    how = COPIED if copy else RE_ENCODED
    if why is not None:
        how = f"{RE_ENCODED} although only cut: {why}"
    return Film(target, written, plan.fps, audio, False, (*plan.notes, how))
