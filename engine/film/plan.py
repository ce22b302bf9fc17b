"""What a story line's film is made of: one shot per scene, and how they join.

A shot is the selected take of a scene. At a continuous join the take's first
``overlap_frames`` repeat its predecessor's tail (`kg.schema.Take`), so the
shot starts after them: no stutter, no frozen frame. At a cut the shots may
crossfade over N frames (the last N of one blended into the first N of the
next), which shortens the film by N frames per cut. The film and every
timeline are made from the same `FilmPlan`, so they agree frame for frame.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.clip_probe import ClipInfo, probe_clips
from engine.errors import FilmRefusedError
from kg.graph import DynamicSceneGraph
from kg.layout import film_file
from kg.lines import StoryLine, line
from kg.paths import resolve_asset
from kg.schema import Story

__all__ = [
    "ASSEMBLY_VERSION",
    "MAX_CROSSFADE",
    "FilmRefusedError",
    "Shot",
    "FilmPlan",
    "plan_film",
]

# Bumped when the way films are assembled changes, so old films are not reused.
ASSEMBLY_VERSION = 2
# 10 s at 24 fps: longer dissolves are a different edit, made in an editor.
MAX_CROSSFADE = 240

Join = Literal["start", "continuous", "cut"]


@dataclass(frozen=True)
class Shot:
    """One scene's selected take as it plays in the film.

    ``frames`` is the clip's length, ``head`` the frames skipped at its start
    (repeats of the predecessor), ``crossfade`` the frames it shares with the
    previous shot (a dissolve at a cut). Frame counts, size and rate are the
    clip file's own (`engine.clip_probe`; never the take's record, which can
    lie); ``film_frames`` is what the shot adds to the film at the film's
    fps.
    """

    scene_id: str
    title: str
    take: int
    video: str  # relative to the story folder
    frames: int
    head: int
    join: Join
    crossfade: int
    fps: int
    width: int
    height: int
    prompt: str
    seed: int
    status: str
    scores: dict[str, Any] | None
    first_frame: str | None
    last_frame: str | None
    film_fps: int

    @property
    def played(self) -> int:
        """Frames of the clip that play (at the clip's fps)."""
        return self.frames - self.head

    @property
    def film_frames(self) -> int:
        """Frames this shot occupies in the film, at the film's fps."""
        return max(1, round(self.played * self.film_fps / self.fps))


@dataclass(frozen=True)
class FilmPlan:
    """The shots of one line, the film's format and its content key."""

    line: StoryLine
    shots: tuple[Shot, ...]
    width: int
    height: int
    fps: int
    crossfade: int
    key: str
    notes: tuple[str, ...] = field(default=())

    @property
    def frames(self) -> int:
        """Frames of the film: every shot's, less the frames shared in dissolves."""
        return sum(s.film_frames for s in self.shots) - sum(
            s.crossfade for s in self.shots
        )

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    @property
    def path(self) -> str:
        """Where the film lands, relative to the story folder."""
        return film_file(self.line.leaf, self.key[:12])

    def starts(self) -> list[int]:
        """The film frame at which each shot starts (dissolves overlap)."""
        out, at = [], 0
        for shot in self.shots:
            at -= shot.crossfade
            out.append(at)
            at += shot.film_frames
        return out


def _undone_reason(status: str, has_take: bool, take_status: str | None) -> str:
    if not has_take:
        return {
            "queued": "queued, not generated yet",
            "generating": "being generated",
            "failed": "its generation failed; generate it again",
            "interrupted": "its generation stopped; generate it again",
        }.get(status, "not generated yet; generate it")
    return f"its selected take is {take_status}; select a finished take"


def _content_key(story: Story, shots: list[Shot], crossfade: int, root: Path) -> str:
    """A hash of everything the film's pixels and sound depend on."""
    s = story.settings
    parts: list[Any] = [ASSEMBLY_VERSION, s.width, s.height, s.fps, crossfade]
    for shot in shots:
        stat = resolve_asset(root, shot.video).stat()
        parts.append(
            [
                shot.scene_id,
                shot.take,
                shot.video,
                stat.st_size,
                stat.st_mtime_ns,
                shot.head,
                shot.join,
                shot.crossfade,
            ]
        )
    blob = json.dumps(parts, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def plan_film(
    story: Story,
    story_dir: str | Path,
    leaf: str | None = None,
    *,
    crossfade: int = 0,
) -> FilmPlan:
    """Plan the film of the line ending at ``leaf`` (the main line when None).

    Raises `kg.lines.UnknownLineError` for a scene that ends no line,
    `FilmRefusedError` listing every scene of the line without a finished
    selected take, or whose clip is missing or cannot be played (not a regular
    file, not a video, a bomb, longer than a scene: `engine.clip_probe`),
    `ValueError` for a crossfade
    out of range, and `kg.errors.UnsafePathError` for a clip path that leaves
    the story folder.
    """
    if not 0 <= crossfade <= MAX_CROSSFADE:
        raise ValueError(
            f"crossfade must be 0 to {MAX_CROSSFADE} frames, got {crossfade}"
        )
    root = Path(story_dir)
    graph = DynamicSceneGraph(story)
    chosen = line(graph, leaf)
    settings = story.settings
    problems: list[str] = []
    for sid in chosen.scenes:
        scene = graph.scene(sid)
        take = scene.selected
        if take is None or take.status != "done":
            why = _undone_reason(scene.status, take is not None, take and take.status)
            problems.append(f"{scene.title} ({sid}): {why}")
        elif take.files.video is None or not os.path.lexists(
            resolve_asset(root, take.files.video)
        ):
            problems.append(
                f"{scene.title} ({sid}): the clip of take {take.index} is missing; "
                "generate the scene again"
            )
    kind = "finished"
    if not problems:
        clips = _probe_clips(graph, chosen.scenes, root, problems)
        kind = "playable"
    if problems:
        raise FilmRefusedError(
            f"the line ending at {chosen.leaf!r} cannot play yet; "
            f"{len(problems)} of its {len(chosen)} scenes have no {kind} take:\n"
            + "\n".join(f"  {p}" for p in problems)
        )

    shots: list[Shot] = []
    notes: list[str] = []
    for pos, sid in enumerate(chosen.scenes):
        scene = graph.scene(sid)
        take = scene.selected
        assert take is not None and take.files.video is not None, "checked above"
        p = take.params
        if pos == 0:
            join: Join = "start"
        else:
            edge = graph.g.edges[chosen.scenes[pos - 1], sid]
            join = "continuous" if edge["transition"] == "continuous" else "cut"
        clip = clips[sid]
        fps = round(clip.fps)
        if (clip.frames, fps) != (p.num_frames, p.fps):
            notes.append(
                f"{scene.title} ({sid}) take {take.index} records {p.num_frames} "
                f"frames at {p.fps} fps, its clip holds {clip.frames} at {fps} "
                "fps; the film plays the clip"
            )
        head = take.overlap_frames if join == "continuous" else 0
        head = min(head, clip.frames - 1)
        if (clip.width, clip.height, fps) != (
            settings.width,
            settings.height,
            settings.fps,
        ):
            notes.append(
                f"{scene.title} ({sid}) take {take.index} is {clip.width}x"
                f"{clip.height} at {fps} fps; conformed to {settings.width}x"
                f"{settings.height} at {settings.fps} fps"
            )
        if scene.status == "stale":
            notes.append(
                f"{scene.title} ({sid}) is stale: it continues from a take that is "
                "no longer selected, so its join may jump"
            )
        shots.append(
            Shot(
                scene_id=sid,
                title=scene.title,
                take=take.index,
                video=take.files.video,
                frames=clip.frames,
                head=head,
                join=join,
                crossfade=0,
                fps=fps,
                width=clip.width,
                height=clip.height,
                prompt=p.prompt,
                seed=p.seed,
                status=scene.status,
                scores=None
                if take.scores is None
                else take.scores.model_dump(mode="json", exclude_none=True),
                first_frame=take.files.first_frame,
                last_frame=take.files.last_frame,
                film_fps=settings.fps,
            )
        )
    shots = _with_crossfades(shots, crossfade, notes)
    key = _content_key(story, shots, crossfade, root)
    return FilmPlan(
        line=chosen,
        shots=tuple(shots),
        width=settings.width,
        height=settings.height,
        fps=settings.fps,
        crossfade=crossfade,
        key=key,
        notes=tuple(notes),
    )


def _probe_clips(
    graph: DynamicSceneGraph, scenes: Sequence[str], root: Path, problems: list[str]
) -> dict[str, ClipInfo]:
    """Each scene's clip as its file holds it (`engine.clip_probe`); a clip
    that cannot play is added to ``problems``, naming the scene and take."""
    takes = {sid: graph.scene(sid).selected for sid in scenes}
    paths = [resolve_asset(root, takes[sid].files.video) for sid in scenes]
    clips: dict[str, ClipInfo] = {}
    for sid, info in zip(scenes, probe_clips(paths), strict=True):
        take = takes[sid]
        if isinstance(info, ClipInfo):
            clips[sid] = info
            continue
        problems.append(
            f"{graph.scene(sid).title} ({sid}): the clip of take {take.index} "
            f"({take.files.video}) cannot be played: {info}; generate the scene "
            "again"
        )
    return clips


def _with_crossfades(shots: list[Shot], crossfade: int, notes: list[str]) -> list[Shot]:
    """Give every cut a dissolve of ``crossfade`` frames, shortened where a
    shot is too short to share that many frames with both neighbours."""
    if crossfade == 0:
        return shots
    from dataclasses import replace

    out = list(shots)
    for i, shot in enumerate(out):
        if shot.join != "cut":
            continue
        # a shot gives at most half its frames to each dissolve it is part of
        fade = min(crossfade, out[i - 1].film_frames // 2, shot.film_frames // 2)
        if fade < crossfade:
            notes.append(
                f"the crossfade into {shot.title} ({shot.scene_id}) is {fade} "
                f"frames, not {crossfade}: a shot that short cannot share more"
            )
        out[i] = replace(shot, crossfade=fade)
    return out
