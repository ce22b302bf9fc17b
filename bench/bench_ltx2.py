"""LTX-2 backend: where a scene's time goes, and what the memory modes cost.

Each configuration makes scene A, then scene B continuing from A's tails
(video and audio latents: the real continuity path), through
`engine.backends.ltx2.LTX2Backend.generate`. Reported, as medians over
``--repeat`` runs of scene B:

- seconds per denoising step (video and audio streams together);
- video decode and audio decode (audio VAE + vocoder) time;
- the share of the scene outside the denoising loop (load, conditioning,
  prompt, decode, tails) against the scene's total;
- per memory mode, the step time against ``none`` in the same run (the
  baseline): ``fp8`` (float8 storage, layerwise cast to the compute dtype)
  and a GGUF Q8_0 transformer written with the gguf package.

CPU configurations: the tiny random-weight model (64x64, 33 frames) and a
mid-size transformer (4 layers, 512 wide video, 256 wide audio) at 256x256,
49 frames. With ``--cuda`` and a CUDA device, the full-size LTX-2 transformer
architecture (random weights) at 768x512, 121 frames in bf16, fp8 and GGUF
Q8: seconds per step, VAE decode time, peak GPU memory, and the idle GPU
time between two scenes (the host work from the end of one scene to the
next scene's first step: loading, conditioning, prompt; also reported on the
CPU). Without CUDA that section is skipped and the output says so.

Long takes (``long`` section): the mid-size random LTX-2.3 at 256x256 in
windows of 33 frames overlapping by 16, 1, 2, 4 and 8 windows a take,
through ``generate``: seconds per window (median; flat is the goal), the
peak resident memory during the take (sampled every 10 ms; flat is the
goal, decode is chunked), and the made sound's length against the
picture's (the audio latents at 25 a second against frames / fps; within
one video frame is the goal).

Guidance cost (``guidance`` section): seconds per denoising step on the
mid-size LTX-2.3 with plain CFG (the floor, measured in the same run), CFG
with STG, CFG with modality guidance, and the makers' whole recipe; each
as a ratio to the floor (each term is one more transformer pass).

    python bench/bench_ltx2.py [--repeat 3] [--cuda] [--only tiny|mid]
        [--sections modes,long,guidance] [--out bench/results/bench_ltx2.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.backend import (  # noqa: E402
    CancelToken,
    ContinuityInput,
    GenerationRequest,
    WindowPlan,  # noqa: E402
)
from engine.backends.diffusers.gguf import write_gguf  # noqa: E402
from engine.backends.ltx2.backend import (  # noqa: E402
    LTX2Backend,  # noqa: E402
    release_models,
    use_pipeline,
)
from engine.backends.ltx2.sample import (  # noqa: E402
    Carried,
    Scene,
    encode_prompt,
    sample_scene,
)
from engine.backends.ltx2.tiny import build_random_pipeline  # noqa: E402

CONFIGS = {
    "tiny": dict(transformer="tiny", size=64, frames=33, steps=4),
    "mid": dict(transformer="mid", size=256, frames=49, steps=4),
}


def _request(size: int, frames: int, steps: int, **extra: Any) -> GenerationRequest:
    return GenerationRequest(
        prompt="rain on a tin roof as a woman says quietly: 'we should go'",
        width=size,
        height=size,
        num_frames=frames,
        fps=24,
        seed=1,
        steps=steps,
        guidance=1.0,
        **{"model": "bench-ltx2", **extra},
    )


def _scene_pair(
    backend: LTX2Backend, size: int, frames: int, steps: int, memory: str, gguf: str
) -> dict[str, float]:
    first = backend.generate(
        _request(size, frames, steps, memory_mode=memory, transformer_file=gguf),
        lambda *a: None,
        CancelToken(),
    )
    cont = ContinuityInput(
        mode="latent",
        tail_latents=first.tail_latents,
        latent_meta=first.latent_meta,
        tail_audio_latents=first.tail_audio_latents,
    )
    start = time.perf_counter()
    second = backend.generate(
        _request(
            size,
            frames,
            steps,
            memory_mode=memory,
            transformer_file=gguf,
            continuity=cont,
        ),
        lambda *a: None,
        CancelToken(),
    )
    total = time.perf_counter() - start
    t = second.timings
    assert second.audio_continuity_used == "latent"
    return {
        "step_s": t["denoise"] / steps,
        "decode_s": t["decode"],
        "decode_audio_s": t["decode_audio"],
        "total_s": total,
        "outside_loop_share": (total - t["denoise"]) / total,
        # host work between scene A's end and scene B's first step (the GPU
        # idles): loading (cached), conditioning and the prompt
        "gap_s": t["load"] + t["prepare"] + t["prompt"],
    }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def cpu_config(name: str, repeat: int, gguf_dir: Path) -> dict[str, Any]:
    cfg = CONFIGS[name]
    rows: dict[str, Any] = {}
    backend = LTX2Backend()
    gguf = write_gguf(
        build_random_pipeline(cfg["transformer"]).transformer,
        gguf_dir / f"{name}.gguf",
    )
    for mode, memory, file in (
        ("none", "none", ""),
        ("fp8", "fp8", ""),
        ("gguf_q8", "none", str(gguf)),
    ):
        release_models()
        use_pipeline(
            "bench-ltx2",
            build_random_pipeline(cfg["transformer"]),
            memory_mode=memory,
            transformer_file=file,
        )
        runs = [
            _scene_pair(backend, cfg["size"], cfg["frames"], cfg["steps"], memory, file)
            for _ in range(repeat)
        ]
        rows[mode] = _median(runs)
    base = rows["none"]["step_s"]
    for mode in ("fp8", "gguf_q8"):
        rows[mode]["step_vs_none"] = rows[mode]["step_s"] / base
    release_models()
    return {"config": cfg, "modes": rows}


def cuda_section(repeat: int, gguf_dir: Path) -> dict[str, Any]:
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device: the full-size section did not run"}
    out: dict[str, Any] = {}
    backend = LTX2Backend(device="cuda")
    for mode, memory in (("bf16", "none"), ("fp8", "fp8"), ("gguf_q8", "none")):
        release_models()
        pipe = build_random_pipeline("full", dtype=torch.bfloat16)
        file = ""
        if mode == "gguf_q8":
            file = str(write_gguf(pipe.transformer, gguf_dir / "full.gguf"))
        use_pipeline(
            "bench-ltx2",
            pipe,
            device="cuda",
            memory_mode=memory,
            transformer_file=file,
        )
        torch.cuda.reset_peak_memory_stats()
        runs = [_scene_pair(backend, 768, 121, 8, memory, file) for _ in range(repeat)]
        row = _median(runs)
        row["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        out[mode] = row
    return out


class _PeakRSS:
    """The resident set's peak while a block runs (psutil, every 10 ms)."""

    def __enter__(self) -> _PeakRSS:
        import threading

        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.01):
                self.peak = max(self.peak, self._proc.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


LONG_PLAN = WindowPlan(frames=33, overlap_frames=16, strength=1.0, adain_factor=0.25)


def long_takes(repeat: int) -> dict[str, Any]:
    """Seconds per window, peak RSS and sound-picture length per take."""
    release_models()
    use_pipeline("bench-ltx2-long", build_random_pipeline("mid", version="2.3"))
    backend = LTX2Backend()
    rows: dict[str, Any] = {}
    for windows in (1, 2, 4, 8):
        latents = 5 + 3 * (windows - 1)
        frames = 1 + 8 * (latents - 1)
        runs = []
        for _ in range(repeat):
            request = _request(
                256, frames, 4, windows=LONG_PLAN, model="bench-ltx2-long",
                quality_preset="fast",
            )  # fmt: skip
            with _PeakRSS() as rss:
                start = time.perf_counter()
                result = backend.generate(request, lambda *a: None, CancelToken())
                total = time.perf_counter() - start
            t = result.timings
            per = [t[k] for k in t if k.startswith("window_")] or [t["denoise"]]
            made = int(result.latent_meta["audio_latents_made"])
            rate = float(result.latent_meta["audio_latents_per_second"])
            runs.append(
                {
                    "window_s": statistics.median(per),
                    "total_s": total,
                    "decode_s": t["decode"],
                    "peak_rss_mib": rss.peak / 2**20,
                    "audio_minus_video_s": made / rate - frames / 24,
                }
            )
        row = _median(runs)
        row["frames"] = frames
        rows[str(windows)] = row
    base = rows["1"]
    for row in rows.values():
        row["window_vs_1"] = row["window_s"] / base["window_s"]
        row["rss_vs_1"] = row["peak_rss_mib"] / base["peak_rss_mib"]
    release_models()
    return rows


def guidance_cost(repeat: int) -> dict[str, Any]:
    """Seconds per step of each guidance recipe against plain CFG."""
    pipe = build_random_pipeline("mid", version="2.3")
    last = len(pipe.transformer.transformer_blocks) - 1
    variants = {
        "cfg (floor)": dict(),
        "cfg + stg": dict(stg=1.0, stg_blocks=(last,)),
        "cfg + modality": dict(modality=3.0),
        "makers' recipe": dict(stg=1.0, stg_blocks=(last,), modality=3.0),
    }
    prompt = encode_prompt(pipe, "rain on a tin roof", "blurry", 3.0, 128)
    rows: dict[str, Any] = {}
    for name, extra in variants.items():
        scene = Scene(49, 256, 256, 24, seed=1, steps=4, guidance=3.0, **extra)
        times = []
        for _ in range(repeat):
            out = sample_scene(pipe, scene, prompt, Carried(), lambda *a: None, bool)
            times.append(out.seconds / scene.steps)
        rows[name] = {"step_s": statistics.median(times), "passes": scene.passes}
    floor = rows["cfg (floor)"]["step_s"]
    for row in rows.values():
        row["vs_cfg"] = row["step_s"] / floor
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cuda", action="store_true")
    parser.add_argument("--only", choices=sorted(CONFIGS), default=None)
    parser.add_argument("--sections", default="modes,long,guidance")
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_ltx2.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    record: dict[str, Any] = {
        "machine": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "repeat": args.repeat,
        "cpu": {},
    }
    sections = set(args.sections.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        names = [args.only] if args.only else list(CONFIGS)
        for name in names if "modes" in sections else []:
            record["cpu"][name] = cpu_config(name, args.repeat, Path(tmp))
            for mode, row in record["cpu"][name]["modes"].items():
                ratio = row.get("step_vs_none")
                print(
                    f"{name:5} {mode:8} step {row['step_s']:.4f} s"
                    + (f" ({ratio:.2f}x none)" if ratio else "")
                    + f" | decode {row['decode_s']:.4f} s, audio "
                    f"{row['decode_audio_s']:.4f} s | outside loop "
                    f"{row['outside_loop_share']:.0%} of {row['total_s']:.3f} s"
                )
        if "long" in sections:
            record["long"] = long_takes(args.repeat)
            print("long takes (mid LTX-2.3, 256x256, windows of 33 overlapping 16):")
            for n, row in record["long"].items():
                print(
                    f"  {n} windows ({row['frames']:3d} frames): "
                    f"{row['window_s']:.3f} s/window ({row['window_vs_1']:.2f}x one)"
                    f" | peak RSS {row['peak_rss_mib']:.0f} MiB "
                    f"({row['rss_vs_1']:.2f}x one) | sound - picture "
                    f"{row['audio_minus_video_s'] * 1000:+.1f} ms"
                )
        if "guidance" in sections:
            record["guidance"] = guidance_cost(args.repeat)
            print("guidance cost per step (mid LTX-2.3, 256x256, 49 frames):")
            for name, row in record["guidance"].items():
                print(
                    f"  {name:15} {row['step_s']:.3f} s/step, {row['passes']} passes,"
                    f" {row['vs_cfg']:.2f}x plain CFG"
                )
        record["cuda"] = (
            cuda_section(args.repeat, Path(tmp))
            if args.cuda
            else {"skipped": "not asked (--cuda)"}
        )
    print("cuda:", json.dumps(record["cuda"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
