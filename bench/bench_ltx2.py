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

    python bench/bench_ltx2.py [--repeat 3] [--cuda] [--only tiny|mid]
        [--out bench/results/bench_ltx2.json]
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

from engine.backend import CancelToken, ContinuityInput, GenerationRequest  # noqa: E402
from engine.backends.diffusers.gguf import write_gguf  # noqa: E402
from engine.backends.ltx2.backend import (  # noqa: E402
    LTX2Backend,  # noqa: E402
    release_models,
    use_pipeline,
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
        model="bench-ltx2",
        **extra,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cuda", action="store_true")
    parser.add_argument("--only", choices=sorted(CONFIGS), default=None)
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
    with tempfile.TemporaryDirectory() as tmp:
        for name in [args.only] if args.only else list(CONFIGS):
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
