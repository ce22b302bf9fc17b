"""How a take in progress ends: done (files, scores, selection), failed or abandoned.

`TakeInProgress` is the one value that flows from the start of a generation
to its end: which take of which scene, what was asked, where its files go, the
story as this generation loaded it, and the stage timings so far. The three
endings each change the state once, through `kg.store.update_story` (the
merge path: edits saved meanwhile are kept):

- `finish`: write the frames and tail latents, encode the clip (on the
  writer thread while the observer scores, when there is one), then, once
  the clip exists, mark the take ``done`` and select it in one save
  (continuous descendants become ``stale``; the scene itself too when it was
  edited while it generated);
- `fail`: a ``failed`` take with a message saying what to change;
- `abandon`: a cancelled take disappears and the scene's status comes back.

With ``defer``, `finish` writes the frames, tail latents and sound and starts
the clip, then returns a `Finishing`: the scores, the clip awaited and the
``done`` save are its ``rest`` (run on `engine.finishing`'s thread while the
next scene is made), and its ``take`` is what a continuous successor may
start from meanwhile.

`finish` reports its phases (``encode``, ``score``) to the take's
`engine.progress.PhaseProgress`, records every phase's seconds in the take
(``phase.<name>``), and honours cancel in both: the encoder stops between
frames, scoring is left to end on its own (its files are removed when it
does), and the take is abandoned at once, the story left as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.backend import CancelToken, GenerationRequest, GenerationResult
from engine.color.anchor import line_anchor_frames
from engine.color.correct import original_files, write_originals
from engine.continuity import ContinuityPlan, save_tail_latents
from engine.disk import disk_full_message
from engine.errors import GenerationCancelled
from engine.observe import TakeObserver
from engine.progress import PhaseProgress
from engine.redaction import redact
from engine.sound import write_wav
from engine.takes import apply_selection
from engine.video import (
    ClipWriter,
    clip_preset,
    last_frames,
    write_png,
    write_video,
)
from kg.errors import StoryError, UnsafePathError
from kg.fields import clip_message
from kg.observation import ObservationRequest
from kg.paths import resolve_asset
from kg.schema import (
    GenerationParams,
    SceneNode,
    Scores,
    Story,
    Take,
    TakeCost,
    TakeFiles,
    TakeWindow,
)
from kg.store import load_story, update_story

__all__ = ["TakeInProgress", "Finishing", "finish", "fail", "abandon"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TakeInProgress:
    """One generation between its ``generating`` record and its end."""

    story_dir: Path
    story: Story  # as loaded for this generation (scores read characters from it)
    scene_id: str
    index: int
    prior_status: str  # the scene's status before, restored when cancelled
    params: GenerationParams
    request: GenerationRequest
    plan: ContinuityPlan
    files: TakeFiles  # every path the take may have (kg.layout.take_files)
    started: float  # time.perf_counter() at the start
    timings: dict[str, float] = field(default_factory=dict)
    # False for a candidate of best of N: done, it is not selected (the
    # choice among the candidates selects, `engine.best_of.select_best`)
    select: bool = True

    def change(self, edit: Callable[[SceneNode, Take], object]) -> object:
        """Apply ``edit`` to this take in the newest state and save it.

        A no-op (None) when the scene or take was deleted meanwhile.
        """
        return update_story(self.story_dir, lambda story: self.edit_in(story, edit))

    def edit_in(
        self, story: Story, edit: Callable[[SceneNode, Take], object]
    ) -> object:
        """``edit(scene, take)`` of this take in ``story``; None when deleted."""
        try:
            scene = story.scene(self.scene_id)
            take = scene.take(self.index)
        except KeyError:
            log.warning(
                "take %s of scene %r was deleted meanwhile", self.index, self.scene_id
            )
            return None
        return edit(scene, take)

    def remove_files(self) -> None:
        """Delete whatever files of this take were written (the originals of
        a colour correction included)."""
        kept = original_files(self.scene_id, self.index)
        for rel in (*self.files.model_dump().values(), *kept):
            if rel:
                # behind a link nothing of ours was written: leave it alone
                with contextlib.suppress(UnsafePathError):
                    resolve_asset(self.story_dir, rel).unlink(missing_ok=True)


def abandon(tip: TakeInProgress) -> None:
    """Remove an unfinished take (cancelled) and restore the scene's status."""

    def edit(scene: SceneNode, take: Take) -> None:
        scene.takes = [t for t in scene.takes if t.index != tip.index]
        scene.status = tip.prior_status

    tip.change(edit)
    tip.remove_files()


def fail(tip: TakeInProgress, message: str) -> Take:
    """Record the take as ``failed`` with ``message`` (bounded, plain text,
    secrets redacted: `engine.redaction`)."""
    # an exception can say anything, at any length, a provider's key included
    message = clip_message(redact(message))

    def edit(scene: SceneNode, take: Take) -> Take:
        take.status = "failed"
        take.error = message
        take.timings = tip.timings
        scene.status = "failed"
        return take.model_copy(deep=True)

    log.warning("scene %r take %d failed: %s", tip.scene_id, tip.index, message)
    tip.remove_files()
    return tip.change(edit)  # type: ignore[return-value]


@dataclass
class _Encoding:
    """How far the clip's encoder got (frames sent of all), for its phase."""

    done: int = 0
    total: int = 0

    def frame(self, done: int, total: int) -> None:
        self.done, self.total = done, total


def _write_files(
    tip: TakeInProgress,
    result: GenerationResult,
    writer: ClipWriter | None,
    progress: PhaseProgress,
    cancel: CancelToken,
    encoding: _Encoding,
) -> tuple[TakeFiles, Future[Path] | None]:
    """Frames and latents now; the clip now, or started on the writer thread."""
    story_dir, files, request = tip.story_dir, tip.files, tip.request
    frames = result.frames
    written = TakeFiles(first_frame=files.first_frame, last_frame=files.last_frame)
    write_png(resolve_asset(story_dir, files.first_frame), frames[0])
    write_png(resolve_asset(story_dir, files.last_frame), frames[-1])
    if result.tail_latents is not None:
        meta = {
            "width": str(request.width),
            "height": str(request.height),
            "model": request.model,
        }
        meta.update(result.latent_meta)
        save_tail_latents(
            resolve_asset(story_dir, files.tail_latents),
            result.tail_latents,
            meta,
            audio=result.tail_audio_latents,
        )
        written.tail_latents = files.tail_latents
    sound = None
    if result.audio is not None and files.audio:
        sound = write_wav(
            resolve_asset(story_dir, files.audio), result.audio, result.audio_rate
        )
        written.audio = files.audio
    write_originals(story_dir, result, request.fps, audio=sound)  # a corrected take
    video = resolve_asset(story_dir, files.video)
    encoding.total = len(frames)
    progress.phase("encode", 0, len(frames))
    if writer is not None:  # encodes while the observer scores
        submitted = time.perf_counter()

        def encoded(path: Path, error: BaseException | None) -> None:
            tip.timings["encode"] = time.perf_counter() - submitted

        return written, writer.submit(
            video,
            frames,
            request.fps,
            on_done=encoded,
            audio=sound,
            cancelled=cancel.is_set,
            on_frame=encoding.frame,
            preset=clip_preset(tip.params.backend),
        )

    def sent(done: int, total: int) -> None:
        progress.phase("encode", done, total)

    t_enc = time.perf_counter()
    write_video(
        video,
        frames,
        request.fps,
        audio=sound,
        cancelled=cancel.is_set,
        on_frame=sent,
        preset=clip_preset(tip.params.backend),
    )
    tip.timings["encode"] = time.perf_counter() - t_enc
    written.video = files.video
    return written, None


def previous_tail(story_dir: Path, story: Story, take: Take) -> np.ndarray | None:
    """The last two frames of the take ``take`` continued from (for the flow
    across the join); None after a cut or when that clip is gone."""
    source = take.params.continuity_source
    if source is None:
        return None
    try:
        prev = story.scene(source.scene_id).take(source.take)
        if not prev.files.video:
            return None
        return last_frames(resolve_asset(story_dir, prev.files.video), 2)
    except (KeyError, OSError, ValueError, StoryError) as exc:
        log.warning("no previous frames for the seam flow: %s", exc)
        return None


def _observe_or_cancel(
    tip: TakeInProgress,
    observer: TakeObserver,
    frames: np.ndarray,
    take: Take,
    cancel: CancelToken,
) -> tuple[Scores | None, str | None]:
    """`_observe` on a helper thread, given up at once when ``cancel`` is set
    (`GenerationCancelled`): the scoring ends on its own and whatever it
    writes for this take is removed then."""
    out: list[tuple[Scores | None, str | None]] = []
    ended = threading.Event()
    given_up = threading.Event()

    def score() -> None:
        try:
            out.append(_observe(tip, observer, frames, take))
        finally:
            ended.set()
            if given_up.is_set():  # embeddings written after the cancel
                _remove_if_unclaimed(tip)

    threading.Thread(target=score, name="storygraph-score", daemon=True).start()
    while not ended.wait(0.1):
        if cancel.is_set():
            given_up.set()
            if ended.is_set():  # it ended meanwhile: nothing left to remove later
                tip.remove_files()
            raise GenerationCancelled("cancelled while scoring")
    return out[0] if out else (None, None)


def _remove_if_unclaimed(tip: TakeInProgress) -> None:
    """A given-up take's files, unless a newer take of the scene has its index
    (and so its paths) by now: those files are that take's."""
    try:
        scene = load_story(tip.story_dir).scene(tip.scene_id)
    except (KeyError, StoryError, OSError) as exc:
        log.warning("left the files of a cancelled take: %s", exc)
        return
    if any(t.index == tip.index for t in scene.takes):
        return
    tip.remove_files()


def _observe(
    tip: TakeInProgress,
    observer: TakeObserver,
    frames: np.ndarray,
    take: Take,
) -> tuple[Scores | None, str | None]:
    """Score the take (from the story in memory); a failure is recorded."""
    previous = tip.plan.previous_last_frame if tip.plan.source is not None else None
    request = ObservationRequest.of_take(
        tip.story_dir,
        tip.story,
        tip.scene_id,
        take,
        frames,
        previous,
        previous_tail(tip.story_dir, tip.story, take),
        line_anchor_frames(tip.story_dir, tip.story, tip.scene_id, frames),
    )
    try:
        observation = observer.observe(request)
    except Exception as exc:
        log.exception(
            "the observer failed on scene %r take %d", tip.scene_id, tip.index
        )
        return Scores(unavailable={"observer": f"scoring failed: {exc}"}), None
    return observation.scores, observation.embeddings


def finish(
    tip: TakeInProgress,
    result: GenerationResult,
    observer: TakeObserver | None,
    writer: ClipWriter | None,
    edited_since: Callable[[Story], bool],
    *,
    progress: PhaseProgress | None = None,
    cancel: CancelToken | None = None,
    defer: bool = False,
) -> Take | Finishing:
    """Steps 6 to 8: files, scores, then ``done`` and selected in one save.

    Cancelled while encoding or scoring, the take is abandoned (its files
    removed, the scene's status restored) and `GenerationCancelled` raised.
    ``defer``: write the frames, tail latents and sound now, start the clip
    on ``writer``, and return a `Finishing` whose ``rest`` makes the scores
    and saves the take (on the caller's finisher thread, so the next scene's
    denoising need not wait for them).
    """
    progress = progress or PhaseProgress()
    cancel = cancel or CancelToken()
    try:
        staged = _stage_files(tip, result, writer, progress, cancel)
        if isinstance(staged, Take):
            return staged  # failed
        if not defer:
            return _complete(
                tip, result, observer, staged, edited_since, progress, cancel
            )
    except GenerationCancelled:
        abandon(tip)
        raise

    def rest() -> Take:
        try:
            _check_clip(staged.clip, cancel)  # cancelled while it waited here
            # scores read the predecessor's clip and the story's takes: the
            # newest state (a continuity source finished meanwhile)
            now = tip
            with contextlib.suppress(StoryError, OSError):
                now = dataclasses.replace(tip, story=load_story(tip.story_dir))
            return _complete(
                now, result, observer, staged, edited_since, progress, cancel
            )
        except GenerationCancelled:
            abandon(tip)
            raise

    provisional = Take(
        index=tip.index,
        status="done",
        params=tip.params.model_copy(
            update={"continuity_used": staged.used, "continuity_note": staged.note}
        ),
        files=staged.written.model_copy(),
    )
    return Finishing(
        tip.scene_id,
        tip.index,
        provisional,
        rest,
        cancel,
        progress,
        staged.clip,
        tip.files.video,
    )


@dataclass(frozen=True)
class Finishing:
    """A take whose frames, tail latents and sound are written while its
    clip, scores and ``done`` save are still to come.

    ``rest()`` makes them and returns the take (``done`` or ``failed``;
    `GenerationCancelled` when ``cancel`` is set meanwhile, the take then
    abandoned). Until it has, ``take`` (``done``, files without the clip) is
    what a continuous successor may start from (`engine.generate.prepare_take`
    ``provisional``); a successor that did must not be kept if ``rest`` does
    not end ``done``.
    """

    scene_id: str
    index: int
    take: Take
    rest: Callable[[], Take]
    cancel: CancelToken
    progress: PhaseProgress  # the take's phases, ``rest``'s included
    clip: Future[Path] | None = None  # on the writer (None: written already)
    video: str | None = None  # the clip's path in the story folder

    def with_clip(self) -> Take:
        """``take`` once its clip is written, with it (as it is when the clip
        failed: the take then fails, and what starts from it is discarded);
        for a successor that reads its source's clip (a lead frame)."""
        if self.clip is None:
            return self.take
        try:
            self.clip.result()
        except Exception:  # noqa: BLE001 - `rest` records the failure
            return self.take
        files = self.take.files.model_copy(update={"video": self.video})
        return self.take.model_copy(update={"files": files})


@dataclass(frozen=True)
class _Staged:
    """Step 6 done: the files written, the clip on its way (or written)."""

    written: TakeFiles
    clip: Future[Path] | None
    encoding: _Encoding
    used: str  # the continuity mode used
    note: str


def _check(cancel: CancelToken, doing: str) -> None:
    if cancel.is_set():
        raise GenerationCancelled(f"cancelled {doing}")


def _check_clip(clip: Future[Path] | None, cancel: CancelToken) -> None:
    """Cancelled: stop the writer's clip (if any) before giving up."""
    if not cancel.is_set():
        return
    if clip is not None:
        with contextlib.suppress(Exception):
            clip.result()  # the encoder stops at its next frame
    raise GenerationCancelled("cancelled while encoding")


def _wait_for_clip(
    clip: Future[Path], cancel: CancelToken, progress: PhaseProgress, enc: _Encoding
) -> None:
    """Wait for the writer's clip, reporting its frames; cancel stops the
    encoder (it checks between frames) and this wait with it."""
    while True:
        try:
            clip.result(timeout=0.1)
            return
        except TimeoutError:
            progress.phase("encode", enc.done, enc.total)
            if cancel.is_set():
                with contextlib.suppress(Exception):
                    clip.result()  # the encoder stops at its next frame
                raise GenerationCancelled("cancelled while encoding") from None


def _stage_files(
    tip: TakeInProgress,
    result: GenerationResult,
    writer: ClipWriter | None,
    progress: PhaseProgress,
    cancel: CancelToken,
) -> _Staged | Take:
    """Step 6: the files (the clip on the writer thread, if any, during step
    7); a ``failed`` take when they cannot be written."""
    _check(cancel, "before the take's files were written")
    t_write = time.perf_counter()
    encoding = _Encoding()
    try:
        written, clip = _write_files(tip, result, writer, progress, cancel, encoding)
    except GenerationCancelled:
        raise
    except Exception as exc:
        log.exception("writing take %d of scene %r failed", tip.index, tip.scene_id)
        return fail(
            tip,
            disk_full_message(exc)
            or f"could not write the take's files: {exc}; check free disk space "
            f"and permissions in {tip.story_dir}",
        )
    tip.timings["write"] = (
        time.perf_counter() - t_write - tip.timings.get("encode", 0.0)
    )
    used = result.continuity_used if tip.plan.input is not None else "none"
    note = clip_message(
        "; ".join(
            dict.fromkeys(n for n in (tip.plan.note, result.continuity_note) if n)
        )
    )
    return _Staged(written, clip, encoding, used, note)


def _complete(
    tip: TakeInProgress,
    result: GenerationResult,
    observer: TakeObserver | None,
    staged: _Staged,
    edited_since: Callable[[Story], bool],
    progress: PhaseProgress,
    cancel: CancelToken,
) -> Take:
    """Steps 7 and 8: scores, the clip awaited, ``done`` and selected."""
    written, clip, encoding = staged.written, staged.clip, staged.encoding
    used, note = staged.used, staged.note
    # 7. observer
    scores, embeddings = None, None
    if observer is not None:
        _check_clip(clip, cancel)
        progress.phase("score")
        t_obs = time.perf_counter()
        params = tip.params.model_copy(
            update={"continuity_used": used, "continuity_note": note}
        )
        take = Take(index=tip.index, status="generating", params=params, files=written)
        try:
            scores, embeddings = _observe_or_cancel(
                tip, observer, result.frames, take, cancel
            )
        except GenerationCancelled:
            _check_clip(clip, cancel)  # the encoder stopped before files go
            raise
        tip.timings["observe"] = time.perf_counter() - t_obs
    if clip is not None:  # a take is never done before its clip exists
        t_wait = time.perf_counter()
        try:
            if not clip.done():
                progress.phase("encode", encoding.done, encoding.total)
            _wait_for_clip(clip, cancel, progress, encoding)
        except GenerationCancelled:
            raise
        except Exception as exc:
            log.exception(
                "encoding take %d of scene %r failed", tip.index, tip.scene_id
            )
            return fail(
                tip,
                disk_full_message(exc)
                or f"the clip could not be encoded: {exc}; check free disk space "
                "and generate the scene again",
            )
        tip.timings["encode_wait"] = time.perf_counter() - t_wait
        written.video = tip.files.video
    _check(cancel, "before the take was saved")
    tip.timings["total"] = time.perf_counter() - tip.started
    for name, seconds in progress.timings.items():
        tip.timings[f"phase.{name}"] = seconds

    # 8. done, selected, descendants stale
    def edit(scene: SceneNode, take: Take) -> Take:
        take.status = "done"
        take.params.continuity_used = used
        take.params.continuity_note = note
        take.params.random_weights = bool(result.random_weights)
        take.files = written.model_copy(update={"embeddings": embeddings})
        take.timings = dict(tip.timings)
        take.scores = scores
        take.error = None
        take.overlap_frames = result.repeated_frames if used != "none" else 0
        if result.audio is not None:
            take.params.audio_continuity = result.audio_continuity_used
        take.params.recipe = result.recipe
        take.color_correction = result.color_correction
        if result.cost is not None:
            take.cost = TakeCost(
                usd=result.cost[0], source=clip_message(result.cost[1])
            )
        take.windows = [
            TakeWindow(
                start_frame=w.start_frame,
                num_frames=w.num_frames,
                seed=w.seed,
                prompt=clip_message(w.prompt),
            )
            for w in result.windows
        ]
        return take.model_copy(deep=True)

    def complete(story: Story) -> Take | None:
        try:
            take = edit(
                story.scene(tip.scene_id), story.scene(tip.scene_id).take(tip.index)
            )
        except KeyError:
            log.warning(
                "take %s of scene %r was deleted meanwhile", tip.index, tip.scene_id
            )
            return None
        if not tip.select:
            return take  # a candidate: the choice among them selects
        stale = apply_selection(story, tip.scene_id, tip.index, tip.story_dir)
        if stale:
            log.info("scene %r: marked stale %s", tip.scene_id, stale)
        if edited_since(story):
            # saved while it generated: the take shows the old text
            story.scene(tip.scene_id).status = "stale"
            log.info("scene %r: edited while generating; marked stale", tip.scene_id)
        return take  # type: ignore[return-value]

    return update_story(tip.story_dir, complete)  # type: ignore[return-value]
