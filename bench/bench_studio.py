"""Studio responsiveness: cold start, click latency in Chromium, rerun time.

Three measurements, each next to a baseline taken in the same run:

- cold start: spawn ``streamlit run studio/app.py`` and time until Chromium
  (Playwright, Debian's ``/usr/bin/chromium``) shows the app title; the
  baseline is a one-line Streamlit app started the same way.
- click to settled: in Chromium, from a click (a capturing ``click``
  listener's timestamp) to the end of the last run it caused (Streamlit's
  ``data-test-script-state`` back to ``notRunning`` and quiet for
  ``QUIET_MS``), median of ``--clicks``: selecting a scene, saving a scene,
  opening Screening, on synthetic stories of 10 and 200 scenes; the baseline
  is a bare Streamlit app with one button, served the same way. A second
  floor, per size: the same bare app drawing as many elements as the
  Storyboard does (counted in the page), what Streamlit's own rerun of that
  many elements costs in the browser.
- rerun: AppTest reruns of the Storyboard page on synthetic stories of 10,
  200 and 1,000 scenes (median of several unchanged reruns, and one rerun
  after a save, which misses the per-revision caches); the baseline is a page
  that only draws a title.

Goals: first paint under 3 s, a click within 1.5x of the bare app's, rerun
under 300 ms at 200 scenes. Prints a table and writes
``bench/results/bench_studio.json``.

Usage: ``.venv/bin/python bench/bench_studio.py [--sizes 10 200 1000]
[--click-sizes 10 200] [--clicks 20] [--no-browser]``
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
CLICK_APP = (
    'import streamlit as st\nst.title("Baseline")\n'
    'if st.button("Click me"):\n    st.write("clicked")\n'
)
# The bare app with ``n`` more elements: text inputs, Markdown, captions and
# buttons in turn, like a form.
_FLOOR_ELEMENT = (
    'st.text_input(f"field {i}", key=f"t{i}")',
    'st.markdown(f"**text {i}**")',
    'st.caption(f"caption {i}")',
    'st.button(f"button {i}", key=f"b{i}")',
)
# Element containers Streamlit draws in the main area (the sidebar excluded).
_COUNT_ELEMENTS = (
    "() => document.querySelectorAll("
    "'[data-testid=stMain] [data-testid=stElementContainer]').length"
)
CLICK_GOAL_X = 1.5
QUIET_MS = 500  # no run starts within this after the last one ended: settled


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


# Click to settled (browser) ------------------------------------------------------

# Records, in the page's own clock, every message from the server (the last
# one a run sends is its "finished"), every change of the app's run state
# (a MutationObserver batches records, so the value each one set is read from
# the next record's old value) and the time of the last click. A run so short
# that React never paints "running" is still seen through its messages.
_RECORDER = """() => {
  window.__runs = []; window.__click = 0;
  const Socket = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Socket(...args);
    ws.addEventListener('message',
                       () => window.__runs.push([performance.now(), 'message']));
    return ws;
  };
  window.WebSocket.prototype = Socket.prototype;
  Object.assign(window.WebSocket, Socket);
  document.addEventListener('click', () => { window.__click = performance.now(); },
                            true);
  const watch = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) { setTimeout(watch, 50); return; }
    new MutationObserver((ms) => {
      const t = performance.now();
      ms.forEach((m, i) => window.__runs.push([t, i + 1 < ms.length
        ? ms[i + 1].oldValue : app.getAttribute('data-test-script-state')]));
    }).observe(app, {attributes: true, attributeOldValue: true,
                     attributeFilter: ['data-test-script-state']});
  };
  document.addEventListener('DOMContentLoaded', watch);
}"""
_SETTLED = """(quiet) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const runs = window.__runs.filter(r => r[0] >= window.__click);
  if (!runs.some(r => r[1] === 'message')) return false;
  const last = runs[runs.length - 1];
  return app.getAttribute('data-test-script-state') === 'notRunning'
    && performance.now() - last[0] > quiet;
}"""
_LATENCY = """() => {
  const runs = window.__runs.filter(r => r[0] >= window.__click);
  return runs[runs.length - 1][0] - window.__click;
}"""


def _timed_click(page, click) -> float:  # noqa: ANN001 - playwright Page
    """Milliseconds from ``click()`` to the end of the last run it caused."""
    page.evaluate("window.__click = Infinity")
    click()
    page.wait_for_function(_SETTLED, arg=QUIET_MS, polling="raf", timeout=120_000)
    return float(page.evaluate(_LATENCY))


def _settle(page) -> None:  # noqa: ANN001
    """Wait until no run has started for ``QUIET_MS`` (after typing, loading)."""
    page.wait_for_function(
        """(quiet) => {
          const app = document.querySelector('[data-testid="stApp"]');
          const last = window.__runs[window.__runs.length - 1];
          return app.getAttribute('data-test-script-state') === 'notRunning'
            && (!last || performance.now() - last[0] > quiet);
        }""",
        arg=QUIET_MS,
        polling="raf",
        timeout=120_000,
    )


class _Server:
    """``script`` served like the studio (`studio.serve`), outputs in ``outputs``."""

    def __init__(self, script: Path, outputs: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "STORYGRAPH_OUTPUTS": str(outputs)}
        self.proc = subprocess.Popen(
            serve_command(script, self.port, *RUN_STUDIO_ARGS),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> _Server:
        wait_healthy(self.url, self.proc, 60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _open(browser, url: str, heading: str):  # noqa: ANN001, ANN202
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script(f"({_RECORDER})()")
    page.goto(url)
    expect(page.get_by_role("heading", name=heading).first).to_be_visible(
        timeout=120_000
    )
    _settle(page)
    return page


def _floor_app(elements: int) -> str:
    """The bare one-button app drawing ``elements`` element containers in all."""
    lines = [CLICK_APP]
    lines += [
        f"i = {i}\n{_FLOOR_ELEMENT[i % len(_FLOOR_ELEMENT)]}\n"
        for i in range(max(elements - 2, 0))
    ]
    return "".join(lines)


def _bare_clicks(
    browser,  # noqa: ANN001 - playwright Browser
    tmp: Path,
    clicks: int,
    elements: int = 0,
) -> list[float]:
    script = tmp / f"click_app_{elements}.py"
    script.write_text(_floor_app(elements) if elements else CLICK_APP)
    with _Server(script, tmp) as server:
        page = _open(browser, server.url, "Baseline")
        button = page.get_by_role("button", name="Click me")
        times = [_timed_click(page, button.click) for _ in range(clicks)]
        page.close()
    return times


def _studio_clicks(
    browser,  # noqa: ANN001 - playwright Browser
    url: str,
    title: str,
    clicks: int,
) -> tuple[dict[str, list[float]], int]:
    """Select a scene, save a scene, open Screening: ``clicks`` times each;
    and the number of elements the Storyboard draws."""
    page = _open(browser, f"{url}/storyboard?story=story", title)
    page.get_by_role("button", name="Save scene").wait_for(timeout=120_000)
    elements = int(page.evaluate(_COUNT_ELEMENTS))
    nav = page.get_by_test_id("stSidebarNav")
    times: dict[str, list[float]] = {"select": [], "save": [], "screening": []}
    for i in range(clicks):
        page.get_by_role("combobox", name="Scene").click()
        option = page.get_by_role("option").nth(1 + i % 2)
        times["select"].append(_timed_click(page, option.click))
    for i in range(clicks):
        pose = page.get_by_label("Pose", exact=True)
        pose.fill(f"pose {i}")
        pose.press("Tab")
        _settle(page)
        save = page.get_by_role("button", name="Save scene")
        times["save"].append(_timed_click(page, save.click))
    for _ in range(clicks):
        link = nav.get_by_role("link", name="Screening")
        times["screening"].append(_timed_click(page, link.click))
        nav.get_by_role("link", name="Storyboard").click()
        _settle(page)
    page.close()
    return times, elements


def bench_clicks(sizes: list[int], clicks: int) -> list[dict]:
    """Click-to-settled medians (ms): the bare app, then the studio per size."""
    from playwright.sync_api import sync_playwright

    from kg.store import save_story

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            base = _bare_clicks(browser, Path(tmp), clicks)
            rows.append(
                {"case": "bare app: button", "scenes": 0, "median_ms": _med(base)}
            )
            for n in sizes:
                outputs = Path(tmp) / f"outputs-{n}"
                story = synthetic_story(n)
                save_story(story, outputs / "story")
                app = ROOT / "studio" / "app.py"
                with _Server(app, outputs) as server:
                    times, elements = _studio_clicks(
                        browser, server.url, story.title, clicks
                    )
                floor = _bare_clicks(browser, Path(tmp), clicks, elements)
                rows.append(
                    {
                        "case": f"bare app: {elements} elem",
                        "scenes": n,
                        "elements": elements,
                        "median_ms": _med(floor),
                        "max_ms": max(floor),
                        "vs_bare": _med(floor) / rows[0]["median_ms"],
                    }
                )
                for action, runs in times.items():
                    rows.append(
                        {
                            "case": f"studio: {action}",
                            "scenes": n,
                            "median_ms": _med(runs),
                            "max_ms": max(runs),
                            "vs_bare": _med(runs) / rows[0]["median_ms"],
                            "vs_floor": _med(runs) / _med(floor),
                        }
                    )
                log.info("clicks at %d scenes: %s", n, rows[-4:])
        finally:
            browser.close()
    return rows


def _med(values: list[float]) -> float:
    return float(statistics.median(values))


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


def _click_table(clicks: list[dict]) -> list[str]:
    lines = ["Click to settled in Chromium (median of the clicks, ms)"]
    lines += [
        f"  {'case':<22}{'scenes':>7}{'median ms':>11}{'max ms':>9}{'vs bare':>9}"
        f"{'vs N elem':>11}"
    ]
    for r in clicks:
        if r["scenes"] == 0:
            lines += [f"  {r['case']:<22}{'-':>7}{r['median_ms']:>11.0f}"]
            continue
        lines += [
            f"  {r['case']:<22}{r['scenes']:>7}{r['median_ms']:>11.0f}"
            f"{r['max_ms']:>9.0f}{r['vs_bare']:>8.2f}x"
            + (f"{r['vs_floor']:>10.2f}x" if "vs_floor" in r else "")
        ]
    lines += [
        "  bare app: N elem = the one-button app drawing as many elements as the",
        "  Storyboard at that size: Streamlit's own cost of a rerun that big",
    ]
    studio = [r for r in clicks if r["case"].startswith("studio")]
    worst = max((r["vs_bare"] for r in studio), default=None)
    if worst is not None:
        ok = "met" if worst <= CLICK_GOAL_X else "MISSED"
        lines += [f"  goal: every click within {CLICK_GOAL_X}x of the bare app: {ok}"]
    return lines + [""]


def _table(cold: list[dict], reruns: list[dict], clicks: list[dict]) -> str:
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
    if clicks:
        lines += _click_table(clicks)
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
    parser.add_argument("--click-sizes", type=int, nargs="*", default=[10, 200])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    use_browser = not args.no_browser and os.access(CHROMIUM, os.X_OK)
    cold = bench_cold_start(args.cold_repeats) if use_browser else []
    clicks = (
        bench_clicks(args.click_sizes, args.clicks)
        if use_browser and args.click_sizes
        else []
    )
    reruns = bench_reruns(args.sizes, args.repeats)
    table = _table(cold, reruns, clicks)
    sys.stdout.write(table + "\n")
    out = ROOT / "bench" / "results" / "bench_studio.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "cold_start": cold,
                "clicks": clicks,
                "reruns": reruns,
                "goals": {
                    "first_paint_s": FIRST_PAINT_GOAL_S,
                    "click_vs_bare_x": CLICK_GOAL_X,
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
