"""Colour drift: what measuring and correcting it costs, and what it holds.

1. Metric cost per take (49 frames at 768x512, a continuous join): the two
   colour metrics (`scoring.color.score_color`) next to the observer's other
   pixel and flow metrics on the same frames (temporal flicker, the seam
   pixel difference, the optical-flow motion and seam flow). Floor in the
   same run: one read pass over the frames (their mean).
2. Correction cost per take: the CIELAB transfer (Reinhard, MKL) of the
   frames and the AdaIN pull of LTX-Video latents of that take
   (``[1, 128, 7, 16, 24]``), next to encoding the take's mp4 once (every
   take pays it; a pixel correction pays it twice, for the kept original).
3. Drift over 5, 20 and 50 scenes on the drifting test backend
   (`engine.color.testing.DriftingBackend`: +1 L*, +1 a* per scene, frame
   continuity, 96x96), without correction and with correction ``line``
   (strength 1 and the default 0.8): the line's colour drift at its last
   scene and its largest. ``--latent`` adds the tiny random-weight LTX-Video
   with a latent drift per scene (tail statistics' distance from the anchor).

    python bench/bench_drift.py [--repeat 3] [--latent] [--scenes 5 20 50]
        [--out bench/results/bench_drift.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.backends.diffusers.adain import adain_toward, channel_stats
from engine.color.testing import DriftingBackend, base_frame, line_story
from engine.color.transfer import lab_stats, transfer
from engine.generate import generate_scene
from engine.video import write_video
from kg.observation import ObservationRequest
from kg.schema import Scores
from kg.store import load_story, save_story
from scoring import metrics
from scoring.color import score_color
from scoring.observer import Observer
from scoring.recording import score_motion

WIDTH, HEIGHT, FRAMES, FPS = 768, 512, 49, 24


def _time(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _take() -> np.ndarray:
    """A moving, colourful take: the base still panning with some noise."""
    rng = np.random.default_rng(0)
    still = base_frame(WIDTH + FRAMES * 4, HEIGHT)
    frames = np.stack([still[:, 4 * t : 4 * t + WIDTH] for t in range(FRAMES)])
    noise = rng.integers(-6, 7, frames.shape)
    return np.clip(frames.astype(int) + noise, 0, 255).astype(np.uint8)


def metric_costs(repeat: int) -> list[dict]:
    frames = _take()
    previous = np.clip(frames[:2].astype(int) + 8, 0, 255).astype(np.uint8)
    request = ObservationRequest(
        story_dir=Path("."),
        scene_id="s",
        take_index=1,
        prompt="",
        frames=frames,
        previous_last_frame=previous[-1],
        character_ids=(),
        references={},
        embeddings_path="e.safetensors",
        fps=FPS,
        previous_tail=previous,
        anchor_frames=frames[:4],
    )
    cases = {
        "floor: one read pass (mean)": lambda: frames.mean(),
        "temporal flicker": lambda: metrics.temporal_flicker(frames),
        "seam pixel difference": lambda: metrics.seam_pixel_mae(
            previous[-1], frames[0]
        ),
        "motion + seam flow (OpenCV DIS)": lambda: score_motion(
            Scores(), request, frames
        ),
        "colour: join shift + line drift": lambda: score_color(
            Scores(), request, frames
        ),
    }
    return [
        {"what": name, "ms": 1000 * _time(fn, repeat)} for name, fn in cases.items()
    ]


def correction_costs(repeat: int) -> list[dict]:
    frames = _take()
    target = lab_stats(np.clip(frames[:1].astype(int) + 10, 0, 255).astype(np.uint8))
    latents = torch.randn(1, 128, 7, HEIGHT // 32, WIDTH // 32)
    mean, std = channel_stats(torch.randn(1, 128, 3, HEIGHT // 32, WIDTH // 32))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "take.mp4"
        cases = {
            "floor: encode the take's mp4 once": lambda: write_video(out, frames, FPS),
            "transfer, reinhard (CIELAB)": lambda: transfer(frames, target),
            "transfer, mkl (CIELAB)": lambda: transfer(frames, target, method="mkl"),
            "AdaIN pull of the latents": lambda: adain_toward(latents, mean, std, 1.0),
        }
        return [
            {"what": name, "ms": 1000 * _time(fn, repeat)} for name, fn in cases.items()
        ]


def _line(folder: Path, scenes: int, correction: str, strength: float) -> list:
    story = line_story(scenes, correction=correction, size=96)
    story.settings.color.strength = strength
    save_story(story, folder)
    observer = Observer(None, None, motion=False)
    backend = DriftingBackend()
    for i in range(1, scenes + 1):
        generate_scene(folder, f"s{i}", backend=backend, observer=observer)
    return [s.selected.scores for s in load_story(folder).scenes]


def drift_runs(counts: list[int]) -> list[dict]:
    rows = []
    for n in counts:
        for correction, strength in (("off", 1.0), ("line", 1.0), ("line", 0.8)):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                scores = _line(Path(tmp), n, correction, strength)
                seconds = time.perf_counter() - t0
            drift = [s.line_color_drift for s in scores]
            joins = [s.join_color_shift for s in scores[1:]]
            rows.append(
                {
                    "path": "pixel",
                    "scenes": n,
                    "correction": correction,
                    "strength": strength if correction != "off" else None,
                    "last": drift[-1],
                    "max": max(drift),
                    "mean_join": float(np.mean(joins)) if joins else None,
                    "s_per_scene": seconds / n,
                }
            )
    return rows


def latent_runs(counts: list[int]) -> list[dict]:
    """The tiny random LTX-Video drifting in latent space (see the docstring)."""
    import engine.backends.ltx.backend as ltx_backend
    from engine.continuity import load_tail_latents
    from kg.paths import resolve_asset
    from kg.schema import SceneEdge, SceneNode, Settings, Story

    real = ltx_backend.sample_windows

    def drifting(pipe, request, carried, *args, **kw):  # noqa: ANN001, ANN202
        out = real(pipe, request, carried, *args, **kw)
        own = channel_stats(out.latents)[0]
        held = channel_stats(carried.latents)[0] if carried.latents is not None else own
        shape = (1, -1, 1, 1, 1)
        out.latents = out.latents - own.view(shape) + held.view(shape) + 0.1
        return out

    ltx_backend.sample_windows = drifting
    rows = []
    try:
        for n in counts:
            for correction in ("off", "line"):
                with tempfile.TemporaryDirectory() as tmp:
                    folder = Path(tmp)
                    story = Story(
                        title="latent drift",
                        settings=Settings(
                            backend="ltx",
                            model="tiny-random",
                            width=64,
                            height=64,
                            quality_preset="fast",
                            continuity_mode="latent",
                        ),
                        scenes=[
                            SceneNode(id=f"s{i}", title=f"S{i}", num_frames=17)
                            for i in range(1, n + 1)
                        ],
                        edges=[
                            SceneEdge(source=f"s{i}", target=f"s{i + 1}")
                            for i in range(1, n)
                        ],
                    )
                    story.settings.color.correction = correction  # type: ignore[assignment]
                    story.settings.color.strength = 1.0
                    save_story(story, folder)
                    t0 = time.perf_counter()
                    for i in range(1, n + 1):
                        generate_scene(folder, f"s{i}", backend="ltx")
                    seconds = time.perf_counter() - t0
                    means = []
                    for scene in load_story(folder).scenes:
                        rel = scene.selected.files.tail_latents
                        tail = load_tail_latents(resolve_asset(folder, rel))[0]
                        means.append(channel_stats(tail)[0])
                    distance = [float((m - means[0]).norm()) for m in means]
                rows.append(
                    {
                        "path": "latent",
                        "scenes": n,
                        "correction": correction,
                        "strength": 1.0 if correction != "off" else None,
                        "last": distance[-1],
                        "max": max(distance),
                        "mean_join": None,
                        "s_per_scene": seconds / n,
                    }
                )
    finally:
        ltx_backend.sample_windows = real
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenes", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--latent", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_drift.json")
    )
    args = parser.parse_args()

    measured = metric_costs(args.repeat)
    floor = measured[0]["ms"]
    print(f"\nMetric cost per take ({FRAMES} frames, {WIDTH}x{HEIGHT})")
    print(f"{'metric':36} {'ms':>9} {'x floor':>9}")
    for row in measured:
        row["x_floor"] = row["ms"] / floor
        print(f"{row['what']:36} {row['ms']:9.1f} {row['x_floor']:9.1f}")

    corrections = correction_costs(args.repeat)
    floor = corrections[0]["ms"]
    print(f"\nCorrection cost per take ({FRAMES} frames, {WIDTH}x{HEIGHT})")
    print(f"{'correction':36} {'ms':>9} {'x encode':>9}")
    for row in corrections:
        row["x_encode"] = row["ms"] / floor
        print(f"{row['what']:36} {row['ms']:9.1f} {row['x_encode']:9.2f}")

    runs = drift_runs(args.scenes)
    if args.latent:
        runs += latent_runs(args.scenes)
    print("\nDrift along a line (pixel: line_color_drift in ΔE00; latent: tail")
    print("statistics' distance from the anchor's)")
    header = f"{'path':7} {'scenes':>6} {'correction':>11} {'strength':>8}"
    print(f"{header} {'last':>7} {'max':>7} {'join':>6} {'s/scene':>8}")
    for r in runs:
        strength = "-" if r["strength"] is None else f"{r['strength']:g}"
        join = "-" if r["mean_join"] is None else f"{r['mean_join']:.2f}"
        print(
            f"{r['path']:7} {r['scenes']:6d} {r['correction']:>11} {strength:>8} "
            f"{r['last']:7.2f} {r['max']:7.2f} {join:>6} {r['s_per_scene']:8.3f}"
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "torch_threads": torch.get_num_threads(),
                "take": {"frames": FRAMES, "width": WIDTH, "height": HEIGHT},
                "metrics": measured,
                "corrections": corrections,
                "drift": runs,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
