"""Studio responsiveness: cold start to first paint, Storyboard rerun time.

Two measurements, each next to a baseline taken in the same run:

- cold start: spawn ``streamlit run studio/app.py`` and time until Chromium
  (Playwright, Debian's ``/usr/bin/chromium``) shows the app title; the
  baseline is a one-line Streamlit app started the same way.
- rerun: AppTest reruns of the Storyboard page on synthetic stories of 10,
  200 and 1,000 scenes (median of several unchanged reruns, and one rerun
  after a save, which misses the per-revision caches); the baseline is a page
  that only draws a title.

Goals: first paint under 3 s, rerun under 300 ms at 200 scenes. Prints a
table and writes ``bench/results/bench_studio.json``.

Usage: ``.venv/bin/python bench/bench_studio.py [--sizes 10 200 1000] [--no-browser]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from studio.testing import (
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    serve_command,
    wait_healthy,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench_studio")

APP_TITLE = "StoryGraph Studio"
FIRST_PAINT_GOAL_S = 3.0
RERUN_GOAL_MS = 300.0
RERUN_GOAL_SCENES = 200
# The launch flags run_studio.sh adds (see there).
RUN_STUDIO_ARGS = ("--server.fileWatcherType=none",)
BASELINE_APP = 'import streamlit as st\nst.title("Baseline")\n'


# Synthetic stories ------------------------------------------------------------


def synthetic_story(n_scenes: int):  # noqa: ANN201 - kg.schema.Story
    """A story of ``n_scenes`` (`kg.example.synthetic_story`)."""
    from kg.example import synthetic_story as build

    return build(n_scenes)


# Rerun time (AppTest) ----------------------------------------------------------


def _baseline_page() -> None:
    import streamlit as st

    st.title("Baseline")


def _time_runs(at, repeats: int) -> list[float]:  # noqa: ANN001 - AppTest
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - start) * 1000)
        assert not at.exception, at.exception
    return times


def bench_reruns(sizes: list[int], repeats: int) -> list[dict]:
    from streamlit.testing.v1 import AppTest

    from kg.store import save_story
    from studio import services
    from studio.testing import page_test

    rows = []
    base = AppTest.from_function(_baseline_page, default_timeout=120)
    base.run()
    base_ms = statistics.median(_time_runs(base, repeats))
    rows.append({"case": "baseline page", "scenes": 0, "median_ms": base_ms})
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[services.OUTPUTS_ENV] = tmp
        for n in sizes:
            folder = Path(tmp) / f"story-{n}"
            save_story(synthetic_story(n), folder)
            at = page_test("storyboard", folder, timeout=300)
            start = time.perf_counter()
            at.run()
            first_ms = (time.perf_counter() - start) * 1000
            reruns = _time_runs(at, repeats)
            services.save_scene(folder, "s00000", {"pose": "looking back"})
            after_save = _time_runs(at, 1)[0]
            services.add_scene(folder, "s00005")
            after_structure = _time_runs(at, 1)[0]
            row = {
                "case": "storyboard",
                "scenes": n,
                "first_run_ms": first_ms,
                "median_ms": statistics.median(reruns),
                "max_ms": max(reruns),
                "after_save_ms": after_save,
                "after_structure_edit_ms": after_structure,
                "vs_baseline": statistics.median(reruns) / base_ms,
            }
            rows.append(row)
            log.info("storyboard %d scenes: %s", n, row)
    return rows


# Cold start (browser) ----------------------------------------------------------


def _cold_start(
    script: Path, title: str, outputs: Path, extra_args: tuple[str, ...] = ()
) -> tuple[float, float]:
    """(spawn -> title shown, server up -> title shown) in seconds, in Chromium."""
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        env = {**os.environ, "STORYGRAPH_OUTPUTS": str(outputs)}
        start = time.perf_counter()
        proc = subprocess.Popen(
            serve_command(script, port, *extra_args),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(url, proc, 60, poll=0.02)
            up = time.perf_counter()
            page.goto(url)
            expect(page.get_by_role("heading", name=title)).to_be_visible(
                timeout=60_000
            )
            shown = time.perf_counter()
            return shown - start, shown - up
        finally:
            proc.terminate()
            proc.wait(10)
            browser.close()


def bench_cold_start(repeats: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline_app.py"
        baseline.write_text(BASELINE_APP)
        for case, script, title in (
            ("baseline app", baseline, "Baseline"),
            ("studio", ROOT / "studio" / "app.py", APP_TITLE),
        ):
            runs = [
                _cold_start(script, title, Path(tmp), RUN_STUDIO_ARGS)
                for _ in range(repeats)
            ]
            rows.append(
                {
                    "case": case,
                    "median_s": statistics.median(r[0] for r in runs),
                    "first_paint_s": statistics.median(r[1] for r in runs),
                    "runs_s": runs,
                }
            )
            log.info("cold start %s: %s", case, runs)
    return rows


# Report --------------------------------------------------------------------------


def _table(cold: list[dict], reruns: list[dict]) -> str:
    lines = []
    if cold:
        base = cold[0]["median_s"]
        lines += ["Cold start (median s; the title shown in Chromium)"]
        lines += [
            f"  {'case':<14}{'spawn->title':>13}{'vs base':>9}{'first paint':>13}"
        ]
        for r in cold:
            lines += [
                f"  {r['case']:<14}{r['median_s']:>13.2f}"
                f"{r['median_s'] / base:>8.2f}x{r['first_paint_s']:>13.2f}"
            ]
        lines += ["  first paint: server answering -> title shown (a first session)"]
        studio = cold[-1]["first_paint_s"]
        ok = "met" if studio < FIRST_PAINT_GOAL_S else "MISSED"
        lines += [f"  goal: first paint < {FIRST_PAINT_GOAL_S:.0f} s: {ok}", ""]
    lines += ["Storyboard rerun (AppTest)"]
    lines += [
        f"  {'case':<16}{'scenes':>7}{'first ms':>10}{'median ms':>11}"
        f"{'max ms':>9}{'after save':>12}{'new scene':>11}{'vs base':>9}"
    ]
    for r in reruns:
        if r["case"] == "baseline page":
            lines += [f"  {r['case']:<16}{'-':>7}{'-':>10}{r['median_ms']:>11.1f}"]
            continue
        lines += [
            f"  {r['case']:<16}{r['scenes']:>7}{r['first_run_ms']:>10.1f}"
            f"{r['median_ms']:>11.1f}{r['max_ms']:>9.1f}{r['after_save_ms']:>12.1f}"
            f"{r['after_structure_edit_ms']:>11.1f}"
            f"{r['vs_baseline']:>8.1f}x"
        ]
    goal = [r for r in reruns if r.get("scenes") == RERUN_GOAL_SCENES]
    if goal:
        ok = "met" if goal[0]["median_ms"] < RERUN_GOAL_MS else "MISSED"
        lines += [f"  goal < {RERUN_GOAL_MS:.0f} ms at {RERUN_GOAL_SCENES}: {ok}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 200, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold-repeats", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    use_browser = not args.no_browser and os.access(CHROMIUM, os.X_OK)
    cold = bench_cold_start(args.cold_repeats) if use_browser else []
    reruns = bench_reruns(args.sizes, args.repeats)
    table = _table(cold, reruns)
    sys.stdout.write(table + "\n")
    out = ROOT / "bench" / "results" / "bench_studio.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "cold_start": cold,
                "reruns": reruns,
                "goals": {
                    "first_paint_s": FIRST_PAINT_GOAL_S,
                    "rerun_ms_at_200": RERUN_GOAL_MS,
                },
                "table": table,
            },
            indent=2,
        )
    )
    sys.stdout.write(f"wrote {out}\n")


if __name__ == "__main__":
    main()
