"""Scale-out: the local runner against Ray with 1 and 2 CPU workers.

1. A 24-scene animatic story of 4 independent branches (4 continuous chains
   of 6 scenes, 192x128, 2 s at 12 fps), rendered by the local `JobRunner`
   and by `RayRunner` with 1 and 2 workers on a local cluster started once
   (its start-up is reported, not counted): wall time, its ratio to the local
   runner, and the scheduling overhead per scene (Ray's wall time less the
   local runner's, per scene, at 1 worker).
2. A batch of 8 small stories (4 scenes each): stories per minute on 1 and
   2 workers.

Scoring is off (the observer's cost is measured in bench_scoring).

    python bench/bench_scale.py [--out bench/results/bench_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from engine.ray_runner import RayRunner
from engine.runner import JobRunner
from kg.graph import DynamicSceneGraph
from kg.schema import SceneNode, Story
from kg.store import load_story, save_story


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


def local(folder: Path) -> float:
    t0 = time.perf_counter()
    runner = JobRunner(folder, background_encode=True)
    runner.submit([s.id for s in load_story(folder).scenes], backend="animatic")
    assert runner.wait(3600)
    assert not runner.status().failed
    return time.perf_counter() - t0


def on_ray(folders: list[Path], workers: int) -> float:
    status = RayRunner(workers=workers).run(folders)
    assert not status.failed, [s.errors for s in status.stories]
    return status.seconds


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_scale.json")
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        template = branching_story(work / "template", 4, 6)
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        start_s = time.perf_counter() - t0
        scenes = 24
        rows = {"local runner": local(fresh_copy(template, work / "local"))}
        for n in (1, 2):
            rows[f"ray, {n} worker{'s' if n > 1 else ''}"] = on_ray(
                [fresh_copy(template, work / f"ray{n}")], n
            )
        base = rows["local runner"]
        overhead = (rows["ray, 1 worker"] - base) / scenes
        print(
            "24 animatic scenes in 4 independent branches "
            f"(Ray start-up {start_s:.1f} s, not counted)"
        )
        print(f"{'runner':<18} {'wall s':>8} {'vs local':>9}")
        for name, s in rows.items():
            print(f"{name:<18} {s:>8.2f} {s / base:>8.2f}x")
        ms = overhead * 1000
        print(f"scheduling overhead per scene (ray 1 worker - local): {ms:.0f} ms")

        small = branching_story(work / "small", 1, 4)
        batch = {}
        for n in (1, 2):
            folders = [fresh_copy(small, work / f"batch{n}-{i}") for i in range(8)]
            seconds = on_ray(folders, n)
            batch[n] = {"seconds": seconds, "stories_per_minute": 8 / seconds * 60}
        print("batch of 8 four-scene stories")
        for n, r in batch.items():
            per_min = r["stories_per_minute"]
            print(f"  {n} worker(s): {r['seconds']:.2f} s, {per_min:.1f} stories/min")
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "story": {"scenes": scenes, "branches": 4, "wall_s": rows,
                  "ratio_to_local": {k: v / base for k, v in rows.items()},
                  "overhead_per_scene_s": overhead, "ray_start_s": start_s},
        "batch_of_8": batch,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
