"""Observer cost: encoder throughput and scoring time per take.

1. Frames per second of each encoder at batch 1, 8 and 32 on 768x512 frames
   (preprocessing included): the tiny random test models, and the real
   ViT-B-32 and dinov2-small architectures with random weights (same cost as
   the real weights). Baseline in the same run: the batched preprocessing
   alone, which every encoder pays.
2. The observer per take (49 frames at 768x512, 16 sampled, with a seam and
   no character references) as a fraction of generating that take with the
   CPU animatic backend, measured in the same run; each observer with the
   optical-flow motion metrics off and on (their cost as a ratio).

CPU always; the same on CUDA when a GPU is present (skipped otherwise).

    python bench/bench_scoring.py [--repeat 3] [--quick] [--threads N]
        [--out bench/results/bench_scoring.json]
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

from kg.observation import ObservationRequest
from kg.schema import GenerationParams, SceneNode, Story, Take, TakeFiles
from scoring.encoders import ImageEncoder
from scoring.observer import Observer
from scoring.testing import random_clip, random_dino, tiny_clip, tiny_dino

WIDTH, HEIGHT, FRAMES, FPS = 768, 512, 49, 24
BATCHES = (1, 8, 32)


def _time(fn: Callable[[], object], repeat: int, sync: bool) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _frames(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((n, HEIGHT, WIDTH, 3)) * 255).astype(np.uint8)


def encoder_rows(
    device: str, repeat: int, quick: bool
) -> tuple[list[dict], dict[str, ImageEncoder]]:
    sync = device == "cuda"
    builders: dict[str, Callable[[], ImageEncoder]] = {
        "tiny-clip": lambda: tiny_clip(device=device),
        "tiny-dino": lambda: tiny_dino(device=device),
        "ViT-B-32 (random)": lambda: random_clip("ViT-B-32", device=device),
        "dinov2-small (random)": lambda: random_dino(device=device),
    }
    frames = _frames(max(BATCHES))
    rows, built = [], {}
    for name, build in builders.items():
        encoder = build()
        built[name] = encoder
        for batch in BATCHES:
            if quick and batch == 32 and "random" in name:
                continue
            x = frames[:batch]
            prep_s = _time(lambda x=x, e=encoder: e.prep(x, e.device), repeat, sync)
            enc_s = _time(
                lambda x=x, e=encoder, b=batch: e.encode_images(x, b), repeat, sync
            )
            rows.append(
                {
                    "device": device,
                    "encoder": name,
                    "batch": batch,
                    "frames_per_s": batch / enc_s,
                    "prep_only_frames_per_s": batch / prep_s,
                    "model_share": max(0.0, 1 - prep_s / enc_s),
                }
            )
    return rows, built


def _story_and_take() -> tuple[Story, Take]:
    story = Story(title="bench", scenes=[SceneNode(id="s2", title="Scene 2")])
    params = GenerationParams(
        backend="animatic",
        prompt="a woman in a yellow coat walks along a stone quay, overcast",
        seed=0,
        steps=1,
        guidance=1.0,
        width=WIDTH,
        height=HEIGHT,
        num_frames=FRAMES,
        fps=FPS,
    )
    take = Take(index=1, params=params, files=TakeFiles(video="scenes/s2/take-1.mp4"))
    return story, take


def animatic_take(repeat: int) -> tuple[float | None, np.ndarray, str]:
    """Seconds to generate one animatic take, and its frames."""
    try:
        from engine.backend import (
            CancelToken,
            GenerationRequest,
            SceneContext,
            get_backend,
        )
    except ImportError as exc:
        return None, _frames(FRAMES), f"engine animatic backend missing ({exc})"
    backend = get_backend("animatic")
    request = GenerationRequest(
        prompt="a woman in a yellow coat walks along a stone quay",
        width=WIDTH,
        height=HEIGHT,
        num_frames=FRAMES,
        fps=FPS,
        seed=0,
        steps=1,
        guidance=1.0,
        scene=SceneContext(title="Arrival", characters=("Mara",), camera="pan_left"),
    )
    out: dict[str, np.ndarray] = {}

    def run() -> None:
        out["frames"] = backend.generate(request, lambda *_: None, CancelToken()).frames

    seconds = _time(run, repeat, False)
    return seconds, out["frames"], "engine.backends.animatic.backend"


def observer_rows(
    device: str,
    repeat: int,
    encoders: dict[str, ImageEncoder],
    frames: np.ndarray,
    take_s: float | None,
) -> list[dict]:
    sync = device == "cuda"
    story, take = _story_and_take()
    previous = frames[-1].copy()
    tail = frames[-2:].copy()  # so the seam flow is measured too
    configs = {
        "pixel metrics only (no weights)": (None, None),
        "tiny random encoders": (encoders["tiny-clip"], encoders["tiny-dino"]),
        "ViT-B-32 + dinov2-small (random)": (
            encoders["ViT-B-32 (random)"],
            encoders["dinov2-small (random)"],
        ),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (clip, dino) in configs.items():
            seconds = {}
            for flow in (False, True):
                observer = Observer(clip, dino, motion=flow)
                seconds[flow] = _time(
                    lambda o=observer: o.observe(
                        ObservationRequest.of_take(
                            Path(tmp), story, "s2", take, frames, previous, tail
                        )
                    ),
                    repeat,
                    sync,
                )
            for flow in (False, True):
                rows.append(
                    {
                        "device": device,
                        "observer": f"{name}, flow {'on' if flow else 'off'}",
                        "seconds_per_take": seconds[flow],
                        "flow_on_vs_off": seconds[True] / seconds[False]
                        if flow
                        else None,
                        "fraction_of_animatic_take": None
                        if take_s is None
                        else seconds[flow] / take_s,
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="skip batch 32 of the real architectures"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_scoring.json")
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0: torch's default); 1 is steadier on a busy machine",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    take_s, take_frames, take_source = animatic_take(args.repeat)
    enc_rows, obs_rows = [], []
    for device in devices:
        rows, built = encoder_rows(device, args.repeat, args.quick)
        enc_rows += rows
        obs_rows += observer_rows(device, args.repeat, built, take_frames, take_s)

    print(f"\nEncoders, {WIDTH}x{HEIGHT} uint8 frames in (preprocessing included)")
    print(
        f"{'device':6} {'encoder':24} {'batch':>5} {'frames/s':>10} "
        f"{'prep-only f/s':>14} {'model share':>12}"
    )
    for r in enc_rows:
        print(
            f"{r['device']:6} {r['encoder']:24} {r['batch']:>5} "
            f"{r['frames_per_s']:>10.1f} "
            f"{r['prep_only_frames_per_s']:>14.1f} {r['model_share']:>11.0%}"
        )
    baseline = "n/a" if take_s is None else f"{take_s:.2f} s"
    print(
        f"\nObserver per take ({FRAMES} frames {WIDTH}x{HEIGHT}, 16 sampled); "
        f"baseline: one animatic take = {baseline} ({take_source})"
    )
    print(
        f"{'device':6} {'observer':44} {'s/take':>8} {'x animatic take':>16} "
        f"{'flow on/off':>12}"
    )
    for r in obs_rows:
        frac = r["fraction_of_animatic_take"]
        ratio = r["flow_on_vs_off"]
        print(
            f"{r['device']:6} {r['observer']:44} {r['seconds_per_take']:>8.3f} "
            f"{'n/a' if frac is None else f'{frac:.2f}':>16} "
            f"{'' if ratio is None else f'{ratio:.2f}x':>12}"
        )
    if "cuda" not in devices:
        print("\nCUDA: not available, GPU section skipped")

    result = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0)
            if torch.cuda.is_available()
            else None,
        },
        "repeat": args.repeat,
        "animatic_take_s": take_s,
        "animatic_source": take_source,
        "encoders": enc_rows,
        "observer": obs_rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
