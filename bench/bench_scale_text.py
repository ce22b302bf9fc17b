"""Scale in scenes and in text: ``show``, prompt building, the Storyboard, ``graph``.

Scenes: synthetic stories (`kg.example.synthetic_story`: the example's cast,
a main line with a cut branch every 10 scenes) of 1,000, 4,000 and 10,000
scenes. Text: one scene whose motion is 1 KB, 64 KB or 1 MB long, set behind
the schema's back (it refuses more than 2,000 characters) to time the prompt
builder's own algorithm, plus the time a story file with such a value takes
to load (1 KB is within the limit; 64 KB and 1 MB are refused).

Linear work grows about 4x from 1,000 to 4,000 scenes (and 64x from 1 KB to
64 KB). Baseline in the same run: the old per-scene memory walk that
``show`` used (`story_memory` for each scene, quadratic in a line).

    python bench/bench_scale_text.py [--sizes 1000 4000 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

from kg.example import synthetic_story
from kg.graph import DynamicSceneGraph, generation_order
from kg.memory import memory_by_scene, story_memory
from kg.prompt import build_prompt
from kg.store import save_story

TEXT_SIZES = {"1 KB": 1_024, "64 KB": 65_536, "1 MB": 1_048_576}


def timed(action: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _show(story_dir: Path) -> None:
    from typer.testing import CliRunner

    from studio.cli import app

    result = CliRunner().invoke(app, ["show", str(story_dir)])
    assert result.exit_code == 0, result.output


def _old_show_memory(graph: DynamicSceneGraph) -> None:
    for sid in generation_order(graph):
        story_memory(graph, sid)


def _storyboard(story_dir: Path, repeat: int) -> tuple[float, float]:
    """(first run, median warm rerun) of the Storyboard page, in seconds."""
    from studio.testing import page_test

    at = page_test("storyboard", story_dir, timeout=600)
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    assert not at.exception, at.exception
    return first, timed(at.run, repeat)


def bench_scenes(sizes: list[int], repeat: int, root: Path) -> list[dict]:
    from studio.components.graph import graph_data
    from studio.graph_image import MAX_DRAWN_SCENES
    from studio.services import StoryView

    rows = []
    for n in sizes:
        story = synthetic_story(n)
        story_dir = root / f"s{n}"
        save_story(story, story_dir)
        graph = DynamicSceneGraph(story)
        last = generation_order(graph)[-1]
        first_run, rerun = _storyboard(story_dir, repeat)
        out = root / f"g{n}.png"
        row = {
            "scenes": n,
            "show_s": timed(lambda d=story_dir: _show(d), repeat),
            "memory_all_scenes_s": timed(lambda g=graph: memory_by_scene(g), repeat),
            "old_per_scene_memory_s": timed(lambda g=graph: _old_show_memory(g), 1)
            if n <= 4_000
            else None,
            "prompt_last_scene_ms": 1e3
            * timed(lambda g=graph, s=last: build_prompt(g, s), repeat),
            "graph_view_data_ms": 1e3
            * timed(
                lambda s=story, c=last: graph_data(StoryView(Path("x"), s), c),
                repeat,
            ),
            "storyboard_first_run_s": first_run,
            "storyboard_rerun_s": rerun,
            "graph_png_around_s": timed(
                lambda d=story_dir, o=out, c=last: _graph(d, o, around=c), 1
            ),
            "graph_refused": n > MAX_DRAWN_SCENES and not _graph(story_dir, out),
        }
        rows.append(row)
    return rows


def _graph(story_dir: Path, out: Path, around: str | None = None) -> bool:
    from typer.testing import CliRunner

    from studio.cli import app

    args = ["graph", str(story_dir), "--out", str(out)]
    if around:
        args += ["--around", around]
    return CliRunner().invoke(app, args).exit_code == 0


def bench_text(repeat: int, root: Path) -> list[dict]:
    from kg.errors import StoryValidationError
    from kg.store import dump_story, parse_story

    rows = []
    for label, size in TEXT_SIZES.items():
        story = synthetic_story(20)
        scene = story.scenes[-1]
        scene.__dict__["motion"] = ("the wind rises " * (size // 15 + 1))[:size]
        graph = DynamicSceneGraph(story)
        text = dump_story(story)

        outcome: list[str] = []

        def load(text: str = text, outcome: list[str] = outcome) -> None:
            try:
                parse_story(text)
            except StoryValidationError:
                outcome.append("refused")
            else:
                outcome.append("accepted")

        rows.append(
            {
                "text": label,
                "chars": size,
                "prompt_ms": 1e3
                * timed(lambda g=graph, s=scene.id: build_prompt(g, s), repeat),
                "load_ms": 1e3 * timed(load, repeat),
                "load_outcome": outcome[0],
            }
        )
    return rows


def _ratios(rows: list[dict], key: str, field: str) -> dict[str, float]:
    out = {}
    for a, b in zip(rows, rows[1:], strict=False):
        if a[field] and b[field]:
            out[f"{a[key]}->{b[key]}"] = round(b[field] / a[field], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_scale_text.json")
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, redirect_stdout(io.StringIO()):
        scenes = bench_scenes(args.sizes, args.repeat, Path(tmp))
        texts = bench_text(args.repeat, Path(tmp))

    print(
        f"{'scenes':>7} {'show s':>8} {'memory s':>9} {'old walk s':>11} "
        f"{'prompt ms':>10} {'graph data ms':>14} {'board 1st s':>12} "
        f"{'board rerun s':>14} {'png s':>6}"
    )
    for r in scenes:
        old = r["old_per_scene_memory_s"]
        print(
            f"{r['scenes']:>7} {r['show_s']:>8.2f} {r['memory_all_scenes_s']:>9.3f} "
            f"{(f'{old:.2f}' if old is not None else '-'):>11} "
            f"{r['prompt_last_scene_ms']:>10.2f} {r['graph_view_data_ms']:>14.1f} "
            f"{r['storyboard_first_run_s']:>12.2f} {r['storyboard_rerun_s']:>14.3f} "
            f"{r['graph_png_around_s']:>6.2f}"
        )
    ratios = {
        f: _ratios(scenes, "scenes", f)
        for f in (
            "show_s",
            "memory_all_scenes_s",
            "old_per_scene_memory_s",
            "prompt_last_scene_ms",
            "graph_view_data_ms",
            "storyboard_first_run_s",
            "storyboard_rerun_s",
        )
    }
    print("ratios between sizes (linear: about 4 for 1000->4000, 2.5 for 4000->10000):")
    for field, r in ratios.items():
        print(f"  {field:<24} {r}")
    print(f"\n{'text':>6} {'prompt ms':>10} {'load ms':>8}  load")
    for r in texts:
        print(
            f"{r['text']:>6} {r['prompt_ms']:>10.2f} {r['load_ms']:>8.1f}  "
            f"{r['load_outcome']}"
        )
    text_ratios = {
        "prompt_ms": _ratios(texts, "text", "prompt_ms"),
        "load_ms": _ratios(texts, "text", "load_ms"),
    }
    print("ratios (linear: 64 for 1 KB->64 KB, 16 for 64 KB->1 MB):", text_ratios)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "scenes": scenes,
                "scene_ratios": ratios,
                "text": texts,
                "text_ratios": text_ratios,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
