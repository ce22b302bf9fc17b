"""Scale-out: the local runner against Ray, measured apart from this machine's CPUs.

1. Scaling: a 24-scene story of 4 independent branches (4 continuous chains
   of 6 scenes, 192x128, 2 s at 12 fps) made by a bench backend that holds
   its worker for a fixed time without using the CPU (``HoldBackend``: it
   sleeps, as a worker waits on its GPU), so scaling is measured apart from
   this machine's two cores. The local runner and `RayRunner` with 1, 2 and
   4 workers on one local cluster (started once; its start-up is reported,
   not counted). Per run: wall time, speed-up over 1 worker and its fraction
   of linear, and the overhead per scene (wall time less the time the
   backend held, per scene of the critical path). Goals: at least 0.9 of
   linear speed-up, under 30 ms of Ray scheduling overhead per scene.
2. The animatic (CPU-bound, so no scaling on 2 cores): the same story made
   by the local runner and by Ray with 1 worker, as a check of what Ray
   costs a scene that takes milliseconds.

Scoring is off (the observer's cost is measured in bench_scoring).

    python bench/bench_scale.py [--hold 0.25] [--out bench/results/bench_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.backend import (
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    VideoBackend,
)
from engine.ray_runner import RayRunner
from engine.runner import JobRunner
from kg.graph import DynamicSceneGraph
from kg.schema import SceneNode, Story
from kg.store import load_story, save_story

BRANCHES, LENGTH = 4, 6


class HoldBackend(VideoBackend):
    """Holds its worker ``hold_s`` per scene without using the CPU (a sleep,
    cancel asked every 10 ms), then returns flat frames: a GPU scene as the
    scheduler sees it. Recorded as the animatic (the catalog's rules apply)."""

    name = "animatic"
    version = "hold"

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s

    def generate(self, request: GenerationRequest, progress, cancel: CancelToken):  # noqa: ANN001, ANN201
        end = time.monotonic() + self.hold_s
        while (left := end - time.monotonic()) > 0:
            if cancel.is_set():
                raise GenerationCancelled("cancelled")
            time.sleep(min(left, 0.01))
        shade = (request.seed * 37) % 256
        frames = np.full(
            (request.num_frames, request.height, request.width, 3), shade, np.uint8
        )
        return GenerationResult(frames=frames, timings={"hold": self.hold_s})


def branching_story(folder: Path, branches: int, length: int) -> Path:
    story = Story(title=f"{branches} branches of {length}")
    story.settings.width, story.settings.height, story.settings.fps = 192, 128, 12
    graph = DynamicSceneGraph(story)
    for b in range(branches):
        prev = None
        for i in range(length):
            scene = SceneNode(
                id=f"b{b}-s{i}",
                title=f"Branch {b} scene {i}",
                motion=f"the boat passes marker {i}",
                seed=b * 100 + i,
            )
            if prev is None:
                graph.add_scene(scene)
            else:
                graph.add_scene(scene, after=prev)
            prev = scene.id
    save_story(story, folder)
    return folder


def fresh_copy(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target


def local(folder: Path, backend: object) -> float:
    t0 = time.perf_counter()
    runner = JobRunner(folder, background_encode=True)
    runner.submit([s.id for s in load_story(folder).scenes], backend=backend)
    assert runner.wait(3600)
    assert not runner.status().failed
    return time.perf_counter() - t0


STARTS: list[float] = []  # seconds until the workers of each Ray run were up


def on_ray(folders: list[Path], workers: int, backend: object) -> float:
    """Wall seconds of a Ray run, less the start of its workers (`STARTS`)."""
    t0 = time.perf_counter()
    status = RayRunner(workers=workers).run(folders, backend=backend)
    assert not status.failed, [s.errors for s in status.stories]
    STARTS.append(status.workers_start_s)
    return time.perf_counter() - t0 - status.workers_start_s


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=0.25, help="seconds a scene")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_scale.json")
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    scenes = BRANCHES * LENGTH
    hold = HoldBackend(args.hold)
    try:
        template = branching_story(work / "template", BRANCHES, LENGTH)
        t0 = time.perf_counter()
        # logical CPUs: 4 held workers use none of them
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
        start_s = time.perf_counter() - t0
        runs = 0

        def copy() -> Path:
            nonlocal runs
            runs += 1
            return fresh_copy(template, work / f"run{runs}")

        walls: dict[str, float] = {}
        walls["local runner"] = statistics.median(
            local(copy(), hold) for _ in range(args.repeat)
        )
        for n in (1, 2, 4):
            walls[f"ray, {n} worker{'s' if n > 1 else ''}"] = statistics.median(
                on_ray([copy()], n, hold) for _ in range(args.repeat)
            )
        rows = []
        one = walls["ray, 1 worker"]
        for name, wall in walls.items():
            n = 1 if name == "local runner" else int(name.split()[1])
            path_scenes = scenes / min(n, BRANCHES)  # scenes on the critical path
            held = path_scenes * args.hold
            speedup = one / wall
            rows.append(
                {
                    "runner": name,
                    "workers": n,
                    "wall_s": wall,
                    "held_s": held,
                    "speedup_vs_1_worker": speedup,
                    "fraction_of_linear": speedup / n,
                    "overhead_ms_per_scene": (wall - held) / path_scenes * 1e3,
                }
            )
        print(
            f"{scenes} scenes in {BRANCHES} independent branches, each holding its "
            f"worker {args.hold * 1e3:.0f} ms without CPU (median of {args.repeat}; "
            f"not counted: Ray start-up {start_s:.1f} s, workers' start "
            f"{statistics.median(STARTS):.1f} s a run, median)"
        )
        print(
            f"{'runner':<16} {'wall s':>7} {'floor s':>8} {'speed-up':>9} "
            f"{'of linear':>10} {'overhead ms/scene':>18}"
        )
        for r in rows:
            print(
                f"{r['runner']:<16} {r['wall_s']:>7.2f} {r['held_s']:>8.2f} "
                f"{r['speedup_vs_1_worker']:>8.2f}x {r['fraction_of_linear']:>10.2f} "
                f"{r['overhead_ms_per_scene']:>18.0f}"
            )
        ray_rows = [r for r in rows if r["runner"] != "local runner"]
        goals = {
            "speedup_at_least_0_9_of_linear": all(
                r["fraction_of_linear"] >= 0.9 for r in ray_rows
            ),
            "ray_overhead_under_30ms_per_scene": ray_rows[0]["overhead_ms_per_scene"]
            < 30,
        }
        print("goals:", goals)

        animatic = {
            "local runner": local(copy(), "animatic"),
            "ray, 1 worker": on_ray([copy()], 1, "animatic"),
        }
        per_scene = (animatic["ray, 1 worker"] - animatic["local runner"]) / scenes
        print(
            f"animatic (CPU-bound): local {animatic['local runner']:.2f} s, ray 1 "
            f"worker {animatic['ray, 1 worker']:.2f} s ({per_scene * 1e3:+.0f} ms "
            "a scene)"
        )
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "story": {"scenes": scenes, "branches": BRANCHES, "hold_s": args.hold,
                  "ray_start_s": start_s, "workers_start_s": STARTS,
                  "rows": rows},
        "goals": goals,
        "animatic": {"wall_s": animatic, "ray_extra_s_per_scene": per_scene},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
