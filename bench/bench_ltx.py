"""LTX backend: what latent continuity saves over frame continuity, and overheads.

For each configuration, scene A is generated, then scene B is generated
alternately from A's tail latents (latent path: no VAE encode) and from A's
last frame (frame path, the baseline in the same run: diffusers encodes the
image with the VAE). Reported, as medians over ``--repeat`` runs:

- the VAE encode time the frame path pays (timed on the real encoder module)
  and the scene-time saving of the latent path;
- the per-scene overhead outside the denoising loop as a fraction of the
  scene time (loading, prompt encoding, latent preparation, decode, tail);
- seconds per denoising step and VAE decode time.

CPU configurations: the tiny random-weight model, and the tiny transformer
with a mid-size random-weight VAE at 256x256. With ``--cuda`` and a CUDA
device, the full-size LTX-Video 2B architecture (random weights, bf16) at
768x512, 97 frames, adds peak GPU memory and the GPU gap between two scenes
(VAE decode end of one scene to the first denoising step of the next).
Without CUDA that section is skipped and the output says so.

Long takes: 1, 2, 4 and 8 windows of 33 frames overlapping by 8 (tiny
transformer, mid-size random VAE, 256x256, CPU), each case in a fresh
process so its peak resident memory is its own: seconds per window (flat
means total time grows linearly), peak RSS (flat means memory does not grow
with length), against one window of the same total length as the baseline.

    python bench/bench_ltx.py [--repeat 3] [--cuda] [--out bench/results/bench_ltx.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from engine.backend import CancelToken, ContinuityInput, GenerationRequest, WindowPlan
from engine.backends.ltx.backend import LTXBackend, release_models, use_pipeline
from engine.backends.ltx.tiny import build_random_pipeline


@dataclasses.dataclass(frozen=True)
class Config:
    name: str
    transformer: str
    vae: str
    width: int
    height: int
    num_frames: int
    steps: int
    device: str


class _Clock:
    """Times real module calls (VAE encoder/decoder, transformer) with hooks."""

    def __init__(self, pipe: Any, sync: bool) -> None:
        self.sync = sync
        self.encode_s = 0.0
        self.first_step_at: float | None = None
        self.decode_end_at: float | None = None
        self._t = 0.0
        self.handles = [
            pipe.vae.encoder.register_forward_pre_hook(self._start),
            pipe.vae.encoder.register_forward_hook(self._stop_encode),
            pipe.vae.decoder.register_forward_hook(self._decoded),
            pipe.transformer.register_forward_pre_hook(self._step),
        ]

    def _now(self) -> float:
        if self.sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _start(self, *_: Any) -> None:
        self._t = self._now()

    def _stop_encode(self, *_: Any) -> None:
        self.encode_s += self._now() - self._t

    def _decoded(self, *_: Any) -> None:
        self.decode_end_at = self._now()

    def _step(self, *_: Any) -> None:
        if self.first_step_at is None:
            self.first_step_at = self._now()

    def reset(self) -> None:
        self.encode_s, self.first_step_at = 0.0, None

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_config(config: Config, repeat: int) -> dict[str, Any]:
    cuda = config.device == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    pipe = build_random_pipeline(config.transformer, config.vae, dtype=dtype)
    use_pipeline(config.name, pipe, device=config.device)
    backend = LTXBackend(device=config.device)
    clock = _Clock(pipe, sync=cuda)
    request = GenerationRequest(
        prompt="a fox runs through the snow at dusk",
        width=config.width,
        height=config.height,
        num_frames=config.num_frames,
        fps=24,
        seed=0,
        steps=config.steps,
        guidance=3.0,
        model=config.name,
    )

    def generate(req: GenerationRequest) -> Any:
        return backend.generate(req, lambda s, t: None, CancelToken())

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    scene_a = generate(request)
    gaps, runs = [], {"latent": [], "frame": []}
    for i in range(repeat):
        for mode in ("latent", "frame"):
            carried = ContinuityInput(
                mode=mode,
                tail_latents=scene_a.tail_latents if mode == "latent" else None,
                last_frame=scene_a.frames[-1],
                latent_meta=scene_a.latent_meta,
            )
            previous_decode_end = clock.decode_end_at
            clock.reset()
            start = time.perf_counter()
            result = generate(
                dataclasses.replace(request, seed=i + 1, continuity=carried)
            )
            total = time.perf_counter() - start
            assert result.continuity_used == mode, result.continuity_note
            if previous_decode_end is not None and clock.first_step_at is not None:
                gaps.append(clock.first_step_at - previous_decode_end)
            runs[mode].append(
                {**result.timings, "wall": total, "encode": clock.encode_s}
            )
    clock.close()
    latent, frame = runs["latent"], runs["frame"]
    wall_latent = _median([r["wall"] for r in latent])
    wall_frame = _median([r["wall"] for r in frame])
    denoise = _median([r["denoise"] for r in latent])
    row = {
        "config": dataclasses.asdict(config),
        "scene_s_latent": wall_latent,
        "scene_s_frame": wall_frame,
        "encode_s_frame_path": _median([r["encode"] for r in frame]),
        "encode_s_latent_path": _median([r["encode"] for r in latent]),
        "saving_s": wall_frame - wall_latent,
        "saving_fraction": (wall_frame - wall_latent) / wall_frame,
        "s_per_step": denoise / config.steps,
        "decode_s": _median([r["decode"] for r in latent]),
        "overhead_fraction": (wall_latent - denoise) / wall_latent,
        "gap_between_scenes_s": _median(gaps),
    }
    if cuda:
        row["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    release_models()
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'config':<22}{'latent s':>10}{'frame s':>10}{'encode s':>10}"
        f"{'saved':>8}{'s/step':>9}{'decode s':>10}{'outside loop':>14}"
        f"{'gap s':>8}{'peak GiB':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        peak = f"{r['peak_gpu_gib']:.1f}" if "peak_gpu_gib" in r else "-"
        print(
            f"{r['config']['name']:<22}{r['scene_s_latent']:>10.3f}"
            f"{r['scene_s_frame']:>10.3f}{r['encode_s_frame_path']:>10.3f}"
            f"{r['saving_fraction']:>8.1%}{r['s_per_step']:>9.3f}"
            f"{r['decode_s']:>10.3f}{r['overhead_fraction']:>14.1%}"
            f"{r['gap_between_scenes_s']:>8.3f}{peak:>10}"
        )


LONG_WINDOW, LONG_OVERLAP = 33, 8  # 5 latents, 1 carried: 4 new per window


def long_take_case(windows: int, one_window: bool, device: str = "cpu") -> dict:
    """One long take in this process: seconds and peak RSS (run in a child)."""
    latents = 5 + 4 * (windows - 1)
    frames = 1 + 8 * (latents - 1)
    cuda = device == "cuda"
    transformer, vae, size = (
        ("ltx-2b", "ltx", (768, 512)) if cuda else ("tiny", "mid", (256, 256))
    )
    pipe = build_random_pipeline(
        transformer, vae, dtype=torch.bfloat16 if cuda else torch.float32
    )
    use_pipeline("bench-long", pipe, device=device)
    window = frames if one_window else LONG_WINDOW
    request = GenerationRequest(
        prompt="a fox runs through the snow at dusk",
        width=size[0],
        height=size[1],
        num_frames=frames,
        fps=24,
        seed=0,
        steps=2 if not cuda else 8,
        guidance=3.0,
        model="bench-long",
        windows=WindowPlan(frames=max(window, 17), overlap_frames=LONG_OVERLAP),
    )
    backend = LTXBackend(device=device)
    start = time.perf_counter()
    result = backend.generate(request, lambda *r: None, CancelToken())
    total = time.perf_counter() - start
    per_window = [v for k, v in result.timings.items() if k.startswith("window_")]
    return {
        "windows": windows,
        "one_window": one_window,
        "frames": frames,
        "total_s": total,
        "denoise_s": result.timings["denoise"],
        "decode_s": result.timings["decode"],
        "s_per_window": statistics.mean(per_window),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_long_takes(counts: tuple[int, ...]) -> list[dict[str, Any]]:
    rows = []
    for windows in counts:
        for one in (False, True):
            if one and windows == 1:
                continue
            out = subprocess.run(
                [sys.executable, __file__, "--long-take-case", str(windows)]
                + (["--one-window"] if one else []),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def print_long_takes(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'windows':>8}{'frames':>8}{'how':>12}{'total s':>10}{'s/window':>10}"
        f"{'decode s':>10}{'peak RSS MiB':>14}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        how = "one window" if r["one_window"] else "windowed"
        print(
            f"{r['windows']:>8}{r['frames']:>8}{how:>12}{r['total_s']:>10.2f}"
            f"{r['s_per_window']:>10.2f}{r['decode_s']:>10.2f}"
            f"{r['peak_rss_mib']:>14.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-take-case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--one-window", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-scenes", action="store_true", help="long takes only")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cuda", action="store_true", help="add the 2B GPU section")
    parser.add_argument("--cuda-steps", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_ltx.json")
    )
    args = parser.parse_args()
    if args.long_take_case:
        print(json.dumps(long_take_case(args.long_take_case, args.one_window)))
        return

    configs = [
        Config("tiny-random cpu", "tiny", "tiny", 64, 64, 17, 2, "cpu"),
        Config("mid-vae cpu 256x256", "tiny", "mid", 256, 256, 17, 2, "cpu"),
    ]
    notes = []
    if args.cuda and torch.cuda.is_available():
        configs.append(
            Config(
                "ltx-2b cuda 768x512",
                "ltx-2b",
                "ltx",
                768,
                512,
                97,
                args.cuda_steps,
                "cuda",
            )
        )
    elif args.cuda:
        notes.append("CUDA section skipped: no CUDA device available")
    else:
        notes.append("CUDA section not requested (pass --cuda on a GPU machine)")

    rows = [] if args.skip_scenes else [run_config(c, args.repeat) for c in configs]
    if rows:
        print_table(rows)
        print(
            "latent s / frame s: scene B time from carried latents / from the last "
            "frame (baseline); encode s: VAE encode the frame path pays; outside "
            "loop: latent-path scene time not spent denoising; gap s: decode end "
            "of one scene to the first denoising step of the next (backend only)"
        )
    long_rows = run_long_takes((1, 2, 4, 8))
    print()
    print_long_takes(long_rows)
    print(
        f"windowed: windows of {LONG_WINDOW} frames overlapping by {LONG_OVERLAP}; "
        "one window: the same frames in one window (baseline); peak RSS of a "
        "fresh process per case. Long takes on CUDA (GPU idle between windows "
        "and between scenes) need a GPU machine."
    )
    for note in notes:
        print(note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "bench": "bench_ltx",
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "threads": torch.get_num_threads(),
        },
        "repeat": args.repeat,
        "rows": rows,
        "long_takes": long_rows,
        "notes": notes,
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
