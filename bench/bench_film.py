"""Film assembly: seconds per minute of film for 10, 50 and 200 animatic scenes.

Each story is one line of animatic scenes (`bench_export.make_story`: 192x128
at 12 fps, 2 s each; generation is not timed), every fifth join a cut, the
others continuous (one repeated frame each). Timed per story, in the same run
(medians of 3 rounds, the cases taking turns):

- ``concat -c copy``: ffmpeg's concat demuxer stream-copies the same clips
  into one file, no decoding, no repeated frames skipped (the lower bound of
  any join);
- ``re-encode (floor)``: one ffmpeg process decodes the same concatenated
  clips and encodes them with the film's settings (x264 preset, CRF, a
  keyframe a second, BT.709 tags): what any re-encoded film costs;
- ``film``: `engine.film.assemble_film`, hard cuts (re-encoded: continuous
  joins skip repeated frames);
- ``film, crossfade 6``: the same with a 6-frame dissolve at every cut;
- ``film, cuts only (copy)``: every join made a cut, so every clip plays
  whole and the streams are copied (the film's note says so);
- ``re-assembly (unchanged)``: planning and assembling the unchanged line
  again (the cached film is found by its content key).

Goal: ``film`` within 1.3x of the re-encode floor.

    python bench/bench_film.py [--scenes 10 50 200] \
        [--out bench/results/bench_film.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
from bench_export import make_story

from engine.film import assemble_film, plan_film
from engine.video import CLIP_PRESET, COLOUR_TAGS
from kg.paths import resolve_asset
from kg.store import load_story, update_story

CUT_EVERY = 5
CROSSFADE = 6


def _cuts(story_dir: Path) -> None:
    def mutate(story) -> None:  # noqa: ANN001
        for i, edge in enumerate(story.edges, start=1):
            if i % CUT_EVERY == 0:
                edge.transition = "cut"

    update_story(story_dir, mutate)


def _concat(story_dir: Path, out: Path) -> None:
    story = load_story(story_dir)
    listing = out.with_suffix(".txt")
    listing.write_text(
        "".join(
            f"file '{resolve_asset(story_dir, s.selected.files.video)}'\n"
            for s in story.scenes
        )
    )
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "concat",
         "-safe", "0", "-i", str(listing), "-c", "copy", str(out)],
        check=True,
    )  # fmt: skip


def _reencode(story_dir: Path, out: Path) -> None:
    """The floor: the same clips concatenated and encoded in one ffmpeg."""
    story = load_story(story_dir)
    listing = out.with_suffix(".txt")
    listing.write_text(
        "".join(
            f"file '{resolve_asset(story_dir, s.selected.files.video)}'\n"
            for s in story.scenes
        )
    )
    fps = story.settings.fps
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "concat",
         "-safe", "0", "-i", str(listing), "-an", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-crf", "18", "-preset", CLIP_PRESET,
         "-g", str(fps), *COLOUR_TAGS, str(out)],
        check=True,
    )  # fmt: skip


def _all_cuts(story_dir: Path) -> None:
    def mutate(story) -> None:  # noqa: ANN001
        for edge in story.edges:
            edge.transition = "cut"

    update_story(story_dir, mutate)


ROUNDS = 3


def _rounds(cases: dict, rounds: int) -> dict[str, float]:  # noqa: ANN001
    """Median seconds of each case, the cases taking turns round by round
    (the machine is shared: a floor and its measure see the same load)."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in samples.items()}


def bench(n_scenes: int, work: Path) -> dict:
    t0 = time.perf_counter()
    story_dir = make_story(work / f"story{n_scenes}", n_scenes)
    gen_s = time.perf_counter() - t0
    _cuts(story_dir)
    story = load_story(story_dir)
    hard = plan_film(story, story_dir)
    faded = plan_film(story, story_dir, crossfade=CROSSFADE)
    minutes = hard.seconds / 60
    out = work / f"out{n_scenes}.mp4"  # not the cache: every round assembles
    timed = _rounds(
        {
            "concat -c copy": lambda: _concat(story_dir, work / "concat.mp4"),
            "re-encode (floor)": lambda: _reencode(story_dir, work / "reencode.mp4"),
            "film": lambda: assemble_film(story_dir, hard, out=out),
            f"film, crossfade {CROSSFADE}": lambda: assemble_film(
                story_dir, faded, out=out
            ),
        },
        ROUNDS,
    )
    assemble_film(story_dir, faded)  # into the cache
    timed["re-assembly (unchanged)"] = _rounds(
        {
            "again": lambda: assemble_film(
                story_dir, plan_film(load_story(story_dir), story_dir, crossfade=6)
            )
        },
        ROUNDS,
    )["again"]
    _all_cuts(story_dir)
    whole = plan_film(load_story(story_dir), story_dir)
    copied: list = []
    timed["film, cuts only (copy)"] = _rounds(
        {"copy": lambda: copied.append(assemble_film(story_dir, whole, out=out))},
        ROUNDS,
    )["copy"]
    cases = timed
    floor = cases["re-encode (floor)"]
    copy_floor = cases["concat -c copy"]
    rows = [
        {
            "case": name,
            "total_s": total,
            "s_per_film_minute": total / minutes,
            "vs_reencode": total / floor,
            "vs_concat_copy": total / copy_floor,
        }
        for name, total in cases.items()
    ]
    return {
        "scenes": n_scenes,
        "film_frames": hard.frames,
        "film_s": hard.seconds,
        "cuts": sum(s.join == "cut" for s in hard.shots),
        "cuts_only_note": copied[0].notes[-1],
        "goal_film_within_1_3x_reencode": cases["film"] <= 1.3 * floor,
        "generation_s": gen_s,
        "cases": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_film.json")
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_film_"))
    results = []
    try:
        for n in args.scenes:
            r = bench(n, work)
            results.append(r)
            print(
                f"\n{n} scenes: {r['film_s']:.0f} s of film ({r['film_frames']} "
                f"frames, 192x128 @ 12 fps, {r['cuts']} cuts; generation, not "
                f"timed: {r['generation_s']:.0f} s)"
            )
            print(
                f"{'case':<26} {'total s':>8} {'s/film min':>11} "
                f"{'vs re-encode':>13} {'vs copy':>8}"
            )
            for c in r["cases"]:
                print(
                    f"{c['case']:<26} {c['total_s']:>8.2f} "
                    f"{c['s_per_film_minute']:>11.2f} {c['vs_reencode']:>12.2f}x "
                    f"{c['vs_concat_copy']:>7.1f}x"
                )
            print(f"cuts only: {r['cuts_only_note']}")
            print(f"goal film <= 1.3x re-encode: {r['goal_film_within_1_3x_reencode']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {
        "results": results,
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
