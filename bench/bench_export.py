"""Dataset export: time per clip and per IC-LoRA pair for a 50-scene story.

The story is one continuous line of 50 animatic scenes (generated first at
192x128, 24 frames; generation is not timed). Timed, each into a fresh
folder:

- ``plain``: 50 rows, 50 clips normalised to the 128x96x17 bucket;
- ``ltx2 continuation``: 49 pairs over the same 50 clips;
- ``ltx2 re-export``: the same folder again (every clip unchanged: hashed,
  not encoded);

and, as baselines in the same run, over the same 50 source clips:

- ``copy``: a plain copy of the mp4 files (the floor for any export);
- ``read+write``: decode and re-encode the first 17 frames without resizing
  (the floor for any export that re-encodes).

Stage totals (decode, resize + crop, encode) show where the time goes.

    python bench/bench_export.py [--scenes 50] [--repeat 1] \
        [--out bench/results/bench_export.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine.dataset import ExportOptions, export_dataset
from engine.dataset.bucket import Bucket, fit_to_bucket
from engine.generate import generate_scene
from engine.video import read_video, write_video
from kg.graph import DynamicSceneGraph, generation_order
from kg.paths import resolve_asset
from kg.schema import CAMERA_MOVES, SceneNode, Story
from kg.store import load_story, save_story

BUCKET = Bucket(128, 96, 17)


def make_story(folder: Path, n_scenes: int) -> Path:
    """A continuous line of ``n_scenes`` animatic scenes, generated."""
    story = Story(title=f"Bench {n_scenes}")
    story.settings.width, story.settings.height, story.settings.fps = 192, 128, 12
    graph = DynamicSceneGraph(story)
    prev = None
    for i in range(n_scenes):
        scene = SceneNode(
            id=f"s{i:03d}",
            title=f"Scene {i}",
            motion=f"the boat drifts past marker {i}",
            camera=CAMERA_MOVES[i % len(CAMERA_MOVES)],
            seed=i,
        )
        if prev is None:
            graph.add_scene(scene)
        else:
            graph.add_scene(scene, after=prev)
        prev = scene.id
    save_story(story, folder)
    for sid in generation_order(DynamicSceneGraph(story)):
        take = generate_scene(folder, sid, backend="animatic")
        assert take.status == "done", take.error
    return folder


def _timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _sources(story_dir: Path) -> list[Path]:
    story = load_story(story_dir)
    return [resolve_asset(story_dir, s.selected.files.video) for s in story.scenes]


def run(n_scenes: int, repeat: int, out_json: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench_export_"))
    try:
        t0 = time.perf_counter()
        story_dir = make_story(work / "story", n_scenes)
        gen_s = time.perf_counter() - t0
        sources = _sources(story_dir)
        counter = iter(range(10**6))

        def fresh() -> Path:
            return work / f"out{next(counter)}"

        def export(fmt: str) -> Callable[[], object]:
            opts = ExportOptions(format=fmt, bucket=BUCKET)
            return lambda: export_dataset(story_dir, fresh(), opts)

        warm_dir = work / "warm"
        ltx2 = ExportOptions(format="ltx2", bucket=BUCKET)
        export_dataset(story_dir, warm_dir, ltx2)

        def copy() -> None:
            dest = fresh()
            dest.mkdir()
            for src in sources:
                shutil.copyfile(src, dest / src.name.replace("take", src.parent.name))

        def read_write() -> None:
            dest = fresh()
            for src in sources:
                frames = read_video(src)[: BUCKET.frames]
                write_video(dest / f"{src.parent.name}.mp4", frames, 12)

        stages = {"decode": 0.0, "resize_crop": 0.0, "encode": 0.0}
        dest = fresh()
        for src in sources:
            t = time.perf_counter()
            frames = read_video(src)
            stages["decode"] += time.perf_counter() - t
            t = time.perf_counter()
            fitted = fit_to_bucket(frames, BUCKET)
            stages["resize_crop"] += time.perf_counter() - t
            t = time.perf_counter()
            write_video(dest / f"{src.parent.name}.mp4", fitted, 12)
            stages["encode"] += time.perf_counter() - t

        n_pairs = n_scenes - 1
        cases = [
            ("copy (baseline)", _timed(copy, repeat), n_scenes, "clip"),
            ("read+write (baseline)", _timed(read_write, repeat), n_scenes, "clip"),
            ("plain export", _timed(export("plain"), repeat), n_scenes, "clip"),
            ("ltx2 continuation", _timed(export("ltx2"), repeat), n_pairs, "pair"),
            (
                "ltx2 re-export (unchanged)",
                _timed(lambda: export_dataset(story_dir, warm_dir, ltx2), repeat),
                n_pairs,
                "pair",
            ),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        {
            "case": name,
            "total_s": total,
            "items": n,
            "unit": unit,
            "per_item_ms": 1000 * total / n,
        }
        for name, total, n, unit in cases
    ]
    base = rows[1]["per_item_ms"]
    print(
        f"{n_scenes} animatic scenes 192x128x24 -> bucket {BUCKET.text} "
        f"(generation, not timed: {gen_s:.1f} s); median of {repeat}"
    )
    print(f"{'case':<28} {'total s':>8} {'items':>6} {'ms/item':>9} {'vs r+w':>7}")
    for r in rows:
        print(
            f"{r['case']:<28} {r['total_s']:>8.2f} {r['items']:>4} {r['unit']:<1}"
            f" {r['per_item_ms']:>9.1f} {r['per_item_ms'] / base:>6.2f}x"
        )
    print(
        "stages over 50 clips: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())
    )
    result = {
        "scenes": n_scenes,
        "source": "animatic 192x128, 24 frames",
        "bucket": BUCKET.text,
        "repeat": repeat,
        "generation_s": gen_s,
        "cases": rows,
        "stages_s": stages,
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_json}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_export.json")
    )
    args = parser.parse_args()
    run(args.scenes, args.repeat, args.out)


if __name__ == "__main__":
    main()
