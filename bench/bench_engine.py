"""Engine benchmark: scene overhead, animatic speed, mp4 writing throughput.

Measures, in one process on the CPU:

1. per-scene overhead outside the backend call (continuity, prompt, cache
   key, state writes, PNG/latents, and the mp4 encode when it is inline) as a
   fraction of the scene's wall time, for the example story generated with the
   animatic, with the clip encoded inline and on the background writer;
2. animatic frames per second at 768x512 per camera move, against the
   baseline of copying the same frames in memory;
3. mp4 (H.264 yuv420p) writing throughput in frames/s and MB/s of raw RGB
   input, against the baseline of writing the raw frames to disk;
4. x264 presets for a 768x512 animatic clip: frames/s, file size and PSNR
   against the frames (the preview preset, `engine.video.PREVIEW_PRESET`,
   is chosen from this table).

5. the story through the job runner (`engine.runner.JobRunner`, as the
   studio and ``storygraph run`` use it), each take finished (clip, scores,
   save) in turn or behind the next scene's backend (``overlap``): the story's
   wall time against the sum of its backend calls (the floor: the denoiser
   alone), the overhead fraction, and the gap between one scene's backend
   call ending and the next one's starting (median), and the wall time
   against the backend calls alone (those of the run made in turn: an
   overlapped run's own calls share the CPU with the encoder, which on a GPU
   they would not). Once with no observer,
   once with an observer that holds the finisher ``--observer-ms`` a take
   without using the CPU (scoring on a GPU); its cost is reported per take.

Goal: the animatic's scene overhead below 25% of scene time (row 5, with the
takes finished behind the next scene).

Prints a table and writes ``bench/results/engine.json``.

Usage: ``.venv/bin/python bench/bench_engine.py [--frames 49] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from engine.backend import (
    CancelToken,
    GenerationRequest,
    SceneContext,
    VideoBackend,
    get_backend,
)
from engine.generate import generate_scene
from engine.runlock import hold_run
from engine.video import PREVIEW_PRESET, ClipWriter, read_video, write_video
from kg.example import example_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.store import load_story, save_story

WIDTH, HEIGHT = 768, 512
RESULTS = Path(__file__).parent / "results" / "engine.json"


class TimedBackend(VideoBackend):
    """Wraps a backend and records the start and end of each ``generate``."""

    def __init__(self, inner):  # noqa: ANN001
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self.supports_latent_continuity = inner.supports_latent_continuity
        self.spans: list[tuple[float, float]] = []

    @property
    def seconds(self) -> list[float]:
        return [end - start for start, end in self.spans]

    def generate(self, request, progress, cancel):  # noqa: ANN001, ANN201
        t = time.perf_counter()
        try:
            return self.inner.generate(request, progress, cancel)
        finally:
            self.spans.append((t, time.perf_counter()))


def _example(folder: str, frames: int) -> None:
    """The example story at the bench size, ``frames`` a scene, saved."""
    story = example_story()
    story.settings.width, story.settings.height = WIDTH, HEIGHT
    for scene in story.scenes:
        scene.num_frames = frames
    save_story(story, folder)


def scene_overhead(frames: int, background: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        _example(tmp, frames)
        backend = TimedBackend(get_backend("animatic"))
        order = generation_order(DynamicSceneGraph(load_story(tmp)))
        scene_s: list[float] = []
        t_all = time.perf_counter()
        with hold_run(tmp), ClipWriter() as writer:
            for sid in order:
                t = time.perf_counter()
                generate_scene(
                    tmp, sid, backend=backend, writer=writer if background else None
                )
                scene_s.append(time.perf_counter() - t)
        total_s = time.perf_counter() - t_all  # includes the final clip flush
    backend_s = sum(backend.seconds)
    scenes_s = sum(scene_s)
    return {
        "scenes": len(order),
        "frames_per_scene": frames,
        "backend_s": backend_s,
        "scene_s": scenes_s,
        "overhead_s_per_scene": (scenes_s - backend_s) / len(order),
        "overhead_fraction": (scenes_s - backend_s) / scenes_s,
        "story_wall_s": total_s,
    }


class _HoldingObserver:
    """Scores nothing; holds its thread ``seconds`` without the CPU."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def observe(self, request):  # noqa: ANN001, ANN201
        from kg.observation import Observation
        from kg.schema import Scores

        self.calls += 1
        threading.Event().wait(self.seconds)  # a GPU encoder's wait, no CPU
        return Observation(scores=Scores())

    def release(self) -> None:
        pass


def runner_overhead(frames: int, overlap: bool, observer_s: float) -> dict:
    """The example story through the job runner (6 scenes, two lines)."""
    from engine.runner import JobRunner

    with tempfile.TemporaryDirectory() as tmp:
        _example(tmp, frames)
        backend = TimedBackend(get_backend("animatic"))
        observer = _HoldingObserver(observer_s) if observer_s else None
        runner = JobRunner(
            tmp, observer, backends=lambda name: backend, overlap=overlap
        )
        order = generation_order(DynamicSceneGraph(load_story(tmp)))
        t0 = time.perf_counter()
        runner.submit(order, backend=backend)
        assert runner.wait(600), "the story did not finish"
        wall = time.perf_counter() - t0
        status = runner.status()
        assert status.finished and not status.failed, status
    spans = sorted(backend.spans)
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
    backend_s = sum(backend.seconds)
    return {
        "overlap": overlap,
        "observer_s_per_take": observer_s,
        "scenes": len(order),
        "wall_s": wall,
        "backend_s": backend_s,
        "overhead_fraction": (wall - backend_s) / wall,
        "median_gap_ms": statistics.median(gaps) * 1e3 if gaps else 0.0,
    }


def animatic_fps(frames: int, repeat: int) -> dict[str, float]:
    backend = get_backend("animatic")
    out: dict[str, float] = {}
    for camera in ("static", "pan_right", "tilt_up", "zoom_in"):
        scene = SceneContext(
            title="The keeper waits",
            characters=("Mara", "the old keeper"),
            character_looks=("yellow oilskin coat", "navy sweater"),
            environment="the harbour",
            lighting="dusk",
            weather="rain",
            camera=camera,
            motion="the keeper raises his lantern",
        )
        request = GenerationRequest(
            prompt="p", width=WIDTH, height=HEIGHT, num_frames=frames, fps=24,
            seed=1, steps=1, guidance=1.0, scene=scene,
        )  # fmt: skip
        best = min(
            _timed(lambda r=request: backend.generate(r, _noop, CancelToken()))
            for _ in range(repeat)
        )
        out[camera] = frames / best
    return out


def _noop(step: int, total: int) -> None:
    pass


def _timed(fn) -> float:  # noqa: ANN001
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def copy_fps(frames: int, repeat: int) -> float:
    src = np.random.default_rng(0).integers(
        0, 256, (frames, HEIGHT, WIDTH, 3), np.uint8
    )
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeat))
    return frames / best


def mp4_throughput(frames: int, repeat: int) -> dict[str, float]:
    clip = _bench_clip(frames)
    raw_mb = clip.nbytes / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        enc = min(
            _timed(lambda: write_video(Path(tmp) / "c.mp4", clip, 24))
            for _ in range(repeat)
        )
        size_mb = (Path(tmp) / "c.mp4").stat().st_size / 1e6
        raw = min(
            _timed(lambda: (Path(tmp) / "c.raw").write_bytes(clip.tobytes()))
            for _ in range(repeat)
        )
    return {
        "frames_per_s": frames / enc,
        "raw_input_mb_per_s": raw_mb / enc,
        "file_mb": size_mb,
        "raw_write_mb_per_s": raw_mb / raw,
    }


def presets(frames: int, repeat: int) -> dict[str, dict[str, float]]:
    clip = _bench_clip(frames)
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in ("veryfast", "superfast", "ultrafast"):
            path = Path(tmp) / f"{preset}.mp4"
            enc = statistics.median(
                _timed(lambda p=path, s=preset: write_video(p, clip, 24, preset=s))
                for _ in range(repeat)
            )
            back = read_video(path).astype(np.float32)
            mse = float(((back - clip) ** 2).mean())
            out[preset] = {
                "frames_per_s": frames / enc,
                "file_kb": path.stat().st_size / 1024,
                "psnr_db": 10 * np.log10(255**2 / max(mse, 1e-9)),
            }
    return out


def _bench_clip(frames: int) -> np.ndarray:
    return (
        get_backend("animatic")
        .generate(
            GenerationRequest(
                prompt="p",
                width=WIDTH,
                height=HEIGHT,
                num_frames=frames,
                fps=24,
                seed=1,
                steps=1,
                guidance=1.0,
                scene=SceneContext(title="Bench", weather="rain", camera="pan_right"),
            ),  # fmt: skip
            _noop,
            CancelToken(),
        )
        .frames
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--observer-ms", type=float, default=300.0)
    args = parser.parse_args()

    observer_s = args.observer_ms / 1e3
    runs = {
        (overlap, obs): runner_overhead(args.frames, overlap, obs)
        for obs in (0.0, observer_s)
        for overlap in (False, True)
    }
    # the floor: the backend calls alone, as the in-turn run made them (an
    # overlapped run's own backend calls share the CPU with the encoder)
    floor_s = runs[(False, 0.0)]["backend_s"]
    for r in runs.values():
        r["wall_vs_backend_alone"] = r["wall_s"] / floor_s

    inline = scene_overhead(args.frames, background=False)
    background = scene_overhead(args.frames, background=True)
    fps = animatic_fps(args.frames, args.repeat)
    baseline_fps = copy_fps(args.frames, args.repeat)
    mp4 = mp4_throughput(args.frames, args.repeat)
    by_preset = presets(args.frames, args.repeat)

    rows = [
        ("scene overhead, mp4 inline", f"{inline['overhead_fraction']:.1%}",
         f"{inline['overhead_s_per_scene'] * 1e3:.0f} ms/scene"),
        ("scene overhead, mp4 on writer thread",
         f"{background['overhead_fraction']:.1%}",
         f"{background['overhead_s_per_scene'] * 1e3:.0f} ms/scene"),
        *(
            (
                f"runner, {'scored' if obs else 'no observer'}, "
                f"{'overlapped' if overlap else 'in turn'}",
                f"{r['overhead_fraction']:.1%}",
                f"wall {r['wall_s']:.2f} s = {r['wall_s'] / floor_s:.2f}x the "
                f"backend alone; its backend {r['backend_s']:.2f} s, "
                f"gap {r['median_gap_ms']:.0f} ms"
                + (f", scoring {obs * 1e3:.0f} ms/take" if obs else ""),
            )
            for (overlap, obs), r in runs.items()
        ),
        ("story wall time inline / writer",
         f"{inline['story_wall_s']:.2f} s / {background['story_wall_s']:.2f} s",
         f"{inline['scenes']} scenes x {args.frames} frames"),
        *(
            (f"animatic {cam} {WIDTH}x{HEIGHT}", f"{v:.0f} frames/s",
             f"{v / baseline_fps:.1%} of memcpy")
            for cam, v in fps.items()
        ),
        ("baseline: memcpy of frames", f"{baseline_fps:.0f} frames/s", ""),
        ("mp4 H.264 yuv420p write (veryfast)", f"{mp4['frames_per_s']:.0f} frames/s",
         f"{mp4['raw_input_mb_per_s']:.0f} MB/s raw RGB in, "
         f"{mp4['file_mb']:.2f} MB out"),
        ("baseline: raw frames to disk", f"{mp4['raw_write_mb_per_s']:.0f} MB/s", ""),
        *(
            (f"x264 {name}{' (previews)' if name == PREVIEW_PRESET else ''}",
             f"{p['frames_per_s']:.0f} frames/s",
             f"{p['file_kb']:.0f} KB, PSNR {p['psnr_db']:.1f} dB")
            for name, p in by_preset.items()
        ),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>22}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>22}  {note}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "size": [WIDTH, HEIGHT],
        "frames": args.frames,
        "scene_overhead_inline": inline,
        "scene_overhead_background": background,
        "animatic_fps": fps,
        "baseline_memcpy_fps": baseline_fps,
        "mp4": mp4,
        "median_animatic_fps": statistics.median(fps.values()),
        "presets": by_preset,
        "runner": [runs[k] for k in runs],
        "goal_overhead_under_25pct": runs[(True, 0.0)]["overhead_fraction"] < 0.25,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
