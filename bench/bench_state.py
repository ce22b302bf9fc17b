"""Story state: save/load time and file size by story size, decay recomputation.

Stories of 10, 100, 1,000 and 10,000 scenes in one continuous line, each scene
with two characters and one take. Baseline in the same run: a plain
``json.dumps``/``json.loads`` of the same document (what any JSON store pays),
so the ratio shows the cost of validation, locking, fsync and the backup.
A load of the bytes this process has just saved takes the story the save
validated (`kg.store.load_story`); a load of a file another process wrote
parses and validates it, measured apart as the "cold load" (the same file
loaded a second time, when the saved story has been handed out).

Floors, measured in the same run and interleaved with the measure (one
round: floor, save, load; medians over the rounds, as the machine is shared):

- save + load: a plain ``json.dumps(indent=2)`` + ``json.loads`` of the same
  document; goal within 1.2x at 1,000 and 10,000 scenes;
- decay (`kg.memory.story_memory` over 10,000 entities on a 1,000-scene
  path, which walks the path and returns one ranked row per entity): the
  bare formula ``importance * rate ** distance`` over the same entities,
  vectorised with numpy (its result as Python floats), and the same formula
  as a Python loop; goal within 5x of the vectorised one. A third figure,
  not a floor of the formula but of the result: building the 10,000
  `EntityMemory` rows alone from ready Python columns (what any
  implementation returning those rows pays).

    python bench/bench_state.py [--repeat 5] [--out bench/results/bench_state.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from kg.graph import DynamicSceneGraph
from kg.memory import EntityMemory, story_memory
from kg.schema import (
    Character,
    Environment,
    GenerationParams,
    SceneEdge,
    SceneNode,
    Story,
    Take,
    TakeFiles,
)
from kg.store import dump_story, load_story, save_story


def make_story(n_scenes: int, n_characters: int = 20) -> Story:
    characters = [
        Character(id=f"c{i}", name=f"Character {i}", visual_attributes=["coat"])
        for i in range(n_characters)
    ]
    envs = [Environment(id=f"e{i}", name=f"Place {i}") for i in range(5)]
    scenes = []
    for i in range(n_scenes):
        take = Take(
            index=1,
            params=GenerationParams(
                backend="animatic",
                prompt="a" * 200,
                seed=i,
                steps=1,
                guidance=1.0,
                width=768,
                height=512,
                num_frames=49,
                fps=24,
            ),
            files=TakeFiles(
                video=f"scenes/s{i}/take-1.mp4",
                tail_latents=f"scenes/s{i}/take-1.latents.safetensors",
            ),
            timings={"backend": 1.0, "write": 0.1},
        )
        scenes.append(
            SceneNode(
                id=f"s{i}",
                title=f"Scene {i}",
                character_ids=[f"c{i % n_characters}", f"c{(i * 7) % n_characters}"]
                if i % n_characters != (i * 7) % n_characters
                else [f"c{i % 20}"],
                environment_id=f"e{i % 5}",
                motion="walks along the pier",
                status="done",
                takes=[take],
                selected_take=1,
            )
        )
    edges = [SceneEdge(source=f"s{i}", target=f"s{i + 1}") for i in range(n_scenes - 1)]
    return Story(
        title="bench",
        characters=characters,
        environments=envs,
        scenes=scenes,
        edges=edges,
    )


def timed(fn, repeat: int) -> float:  # noqa: ANN001
    """Median seconds of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def interleaved(cases: dict, rounds: int) -> dict[str, float]:  # noqa: ANN001
    """Median seconds of each case, the cases taking turns round by round."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in samples.items()}


def bench_state(sizes: list[int], repeat: int) -> list[dict]:
    rows = []
    for n in sizes:
        story = make_story(n)
        with tempfile.TemporaryDirectory() as tmp:
            save_story(story, tmp)
            doc = json.loads(dump_story(story))

            def save(story: Story = story, tmp: str = tmp) -> None:
                story.description = str(time.perf_counter())  # a real change
                save_story(story, tmp)

            r = repeat if n < 10_000 else max(3, repeat // 2)
            t = interleaved(
                {
                    "floor": lambda doc=doc: json.loads(json.dumps(doc, indent=2)),
                    "save": save,
                    "load": lambda tmp=tmp: load_story(tmp),
                    "cold_load": lambda tmp=tmp: load_story(tmp),
                },
                r,
            )
            size = (Path(tmp) / "kg_state.json").stat().st_size
        save_s, load_s, raw = t["save"], t["load"], t["floor"]
        cold_s = t["cold_load"]
        rows.append(
            {
                "scenes": n,
                "save_ms": save_s * 1e3,
                "load_ms": load_s * 1e3,
                "save_plus_load_ms": (save_s + load_s) * 1e3,
                "file_kb": size / 1024,
                "plain_json_roundtrip_ms": raw * 1e3,
                "ratio_vs_plain_json": (save_s + load_s) / raw,
                "cold_load_ms": cold_s * 1e3,
                "save_plus_cold_load_ratio_vs_plain_json": (save_s + cold_s) / raw,
            }
        )
    return rows


def bench_decay(n_entities: int, n_scenes: int, repeat: int) -> dict:
    """Salience of ``n_entities`` along a path of ``n_scenes``."""
    story = Story(
        title="decay",
        characters=[Character(id=f"c{i}", name=f"C{i}") for i in range(n_entities)],
    )
    g = DynamicSceneGraph(story)
    per_scene = max(1, n_entities // n_scenes)
    for j in range(n_scenes):
        ids = [f"c{(j * per_scene + k) % n_entities}" for k in range(per_scene)]
        g.add_scene(
            SceneNode(id=f"s{j}", title=f"S{j}", character_ids=ids),
            after=f"s{j - 1}" if j else None,
        )
    last = f"s{n_scenes - 1}"
    memory = story_memory(g, last)
    count = len(memory)
    # the floors: the bare formula over the same entities' importance and
    # distance, vectorised, and as a Python loop
    rate = story.settings.decay.rate
    importance = np.array([m.importance for m in memory])
    distance = np.array([m.distance for m in memory])
    columns = list(zip(*memory, strict=True))
    new_row = functools.partial(tuple.__new__, EntityMemory)  # no per-row Python
    t = interleaved(
        {
            "decay": lambda: story_memory(g, last),
            "numpy": lambda: (importance * np.power(rate, distance)).tolist(),
            "loop": lambda: [1.0 * rate ** (i % n_scenes) for i in range(count)],
            "rows": lambda: list(map(new_row, zip(*columns, strict=True))),
        },
        max(repeat, 11),
    )
    return {
        "entities": count,
        "scenes_on_path": n_scenes,
        "decay_ms": t["decay"] * 1e3,
        "vectorised_formula_ms": t["numpy"] * 1e3,
        "python_loop_formula_ms": t["loop"] * 1e3,
        "ratio_vs_vectorised": t["decay"] / t["numpy"],
        "ratio_vs_python_loop": t["decay"] / t["loop"],
        "rows_alone_ms": t["rows"] * 1e3,
        "rows_alone_ratio_vs_vectorised": t["rows"] / t["numpy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_state.json")
    )
    args = parser.parse_args()

    rows = bench_state(args.sizes, args.repeat)
    decay = bench_decay(10_000, 1_000, args.repeat)

    print(
        f"{'scenes':>7} {'save ms':>9} {'load ms':>9} {'save+load':>10} "
        f"{'file KB':>9} {'plain json ms':>14} {'x plain':>8} {'cold load':>10} "
        f"{'x plain (cold)':>15}"
    )
    for r in rows:
        print(
            f"{r['scenes']:>7} {r['save_ms']:>9.1f} {r['load_ms']:>9.1f} "
            f"{r['save_plus_load_ms']:>10.1f} {r['file_kb']:>9.0f} "
            f"{r['plain_json_roundtrip_ms']:>14.1f} {r['ratio_vs_plain_json']:>8.2f} "
            f"{r['cold_load_ms']:>10.1f} "
            f"{r['save_plus_cold_load_ratio_vs_plain_json']:>15.2f}"
        )
    print(
        f"\ndecay: {decay['entities']} entities over {decay['scenes_on_path']} scenes: "
        f"{decay['decay_ms']:.1f} ms; bare formula vectorised "
        f"{decay['vectorised_formula_ms']:.2f} ms "
        f"(x{decay['ratio_vs_vectorised']:.0f}), as a Python loop "
        f"{decay['python_loop_formula_ms']:.2f} ms "
        f"(x{decay['ratio_vs_python_loop']:.1f}); building the rows alone "
        f"{decay['rows_alone_ms']:.2f} ms "
        f"(x{decay['rows_alone_ratio_vs_vectorised']:.1f})"
    )
    goals = {
        f"save_plus_load_{r['scenes']}_within_1_2x_plain_json": r["ratio_vs_plain_json"]
        <= 1.2
        for r in rows
        if r["scenes"] >= 1000
    }
    goals["decay_within_5x_vectorised_formula"] = decay["ratio_vs_vectorised"] <= 5
    print("goals:", goals)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "state": rows,
                "decay": decay,
                "goals": goals,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
