"""GPU check of the LTX backends on full-size architectures with random weights.

One prepared script for a machine with one CUDA GPU (no download: the
architectures are built from their configs in code, as the tests build the
tiny ones). For the LTX-2 19B transformer (diffusers' defaults) with the
LTX-2 VAEs, and memory modes ``none``, ``fp8``, ``group_offload`` and a
GGUF Q8_0 transformer, it makes two continuous scenes through
`LTX2Backend.generate` and reports:

- peak GPU memory after load and during a take (GiB), against the bf16
  transformer's size;
- seconds per denoising step and the video decode time;
- the seconds between the two scenes' denoising loops (the GPU's idle time
  besides decode: load, conditioning, prompt), and, for an LTX-Video 2B long
  take of three windows, the seconds between two windows' loops.

It asserts on the device what the tests assert on the CPU: after load,
every module the sampler calls sits on the execution device (resident
modes), and ``fp8``'s peak at load stays below the bf16 transformer's size.
Figures are printed and written as JSON under ``bench/results/``.

    python bench/gpu_check.py [--size full|mid|tiny] [--device cuda]
        [--out bench/results/gpu_check.json]

``--size tiny --device cpu`` runs the same script on the tiny models in
seconds (what the CPU-only machine can check of it); sizes, steps and
frames then shrink with it.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
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
    WindowPlan,
)
from engine.backends.diffusers.gguf import write_gguf  # noqa: E402
from engine.backends.ltx.backend import LTXBackend  # noqa: E402
from engine.backends.ltx.backend import release_models as release_ltx  # noqa: E402
from engine.backends.ltx.backend import use_pipeline as use_ltx  # noqa: E402
from engine.backends.ltx.tiny import build_random_pipeline as ltx_video  # noqa: E402
from engine.backends.ltx2.backend import (  # noqa: E402
    LTX2Backend,
    release_models,
    use_pipeline,
)
from engine.backends.ltx2.tiny import build_random_pipeline  # noqa: E402

SHAPES = {  # size -> (width, height, frames, steps)
    "full": (768, 512, 121, 8),
    "mid": (256, 256, 49, 4),
    "tiny": (64, 64, 33, 2),
}
MODES = ("none", "fp8", "group_offload", "gguf_q8")
RESIDENT = ("none", "fp8", "gguf_q8")
SAMPLER_MODULES = (
    "transformer",
    "vae",
    "audio_vae",
    "vocoder",
    "connectors",
    "text_encoder",
    "latent_upsampler",
)


def _gib(n: float) -> float:
    return round(n / 2**30, 3)


def _peak(device: str) -> int:
    return torch.cuda.max_memory_allocated() if device.startswith("cuda") else 0


def _reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


class _Clock:
    """Times of the first and last step callback of each denoising loop."""

    def __init__(self) -> None:
        self.loops: list[list[float]] = []
        self._key: tuple[int, int] | None = None

    def __call__(self, step: int, total: int, window: int = 1, windows: int = 1):
        now = time.perf_counter()
        if step == 1 or (window, windows) != self._key:
            self.loops.append([now, now])
            self._key = (window, windows)
        self.loops[-1][1] = now

    def gaps(self) -> list[float]:
        return [b[0] - a[1] for a, b in zip(self.loops, self.loops[1:], strict=False)]


def _request(shape: tuple[int, int, int, int], **kw: Any) -> GenerationRequest:
    width, height, frames, steps = shape
    return GenerationRequest(
        prompt="rain on a tin roof as a woman says quietly: 'we should go'",
        width=width, height=height, num_frames=frames, fps=24, seed=1,
        steps=steps, guidance=1.0, model="gpu-check", **kw,
    )  # fmt: skip


def _on_device(pipe: Any, device: str) -> list[str]:
    wrong = []
    for name in SAMPLER_MODULES:
        module = getattr(pipe, name, None)
        if module is None:
            continue
        for param in module.parameters():
            if param.device.type != torch.device(device).type:
                wrong.append(f"{name} on {param.device}")
                break
    return wrong


def ltx2_modes(size: str, device: str, gguf_dir: Path) -> dict[str, Any]:
    shape = SHAPES[size]
    mark = time.perf_counter()
    base = build_random_pipeline(size, dtype=torch.bfloat16, upsampler=True)
    built = time.perf_counter() - mark
    bf16 = sum(p.numel() * 2 for p in base.transformer.parameters())
    gguf = str(write_gguf(base.transformer, gguf_dir / f"{size}.gguf"))
    rows: dict[str, Any] = {"build_s": built, "transformer_bf16_gib": _gib(bf16)}
    backend = LTX2Backend(device=device)
    for mode in MODES:
        release_models()
        _reset(device)
        pipe = copy.deepcopy(base)
        memory = "none" if mode == "gguf_q8" else mode
        file = gguf if mode == "gguf_q8" else ""
        mark = time.perf_counter()
        use_pipeline(
            "gpu-check", pipe, device, memory_mode=memory, transformer_file=file
        )
        row: dict[str, Any] = {
            "load_s": time.perf_counter() - mark,
            "peak_load_gib": _gib(_peak(device)),
        }
        if mode in RESIDENT:
            wrong = _on_device(pipe, device)
            assert not wrong, f"{mode}: modules off the device: {wrong}"
        if mode == "fp8" and device.startswith("cuda"):
            assert _peak(device) < bf16, "fp8 loaded more than the bf16 transformer"
        clock = _Clock()
        first = backend.generate(
            _request(shape, memory_mode=memory, transformer_file=file),
            clock,
            CancelToken(),
        )
        cont = ContinuityInput(
            mode="latent",
            tail_latents=first.tail_latents,
            latent_meta=first.latent_meta,
            tail_audio_latents=first.tail_audio_latents,
            lead_frame=first.frames[-(1 + 8 * (first.tail_latents.shape[2] - 1))],
        )
        second = backend.generate(
            _request(shape, memory_mode=memory, transformer_file=file, continuity=cont),
            clock,
            CancelToken(),
        )
        t = second.timings
        stages = len(second.recipe.stages) if second.recipe else 1
        row.update(
            peak_take_gib=_gib(_peak(device)),
            step_s=t["denoise"] / max(1, shape[3] * stages),
            decode_s=t["decode"],
            gap_between_scenes_s=clock.gaps()[stages - 1] if clock.gaps() else None,
            host_before_first_step_s=t["load"] + t["prepare"] + t["prompt"],
            audio_continuity=second.audio_continuity_used,
        )
        rows[mode] = row
        print(f"ltx2 {mode:13} " + json.dumps(row))
    release_models()
    return rows


def ltx_windows(size: str, device: str) -> dict[str, Any]:
    """An LTX-Video long take of three windows: the gap between windows."""
    width, height, _, steps = SHAPES[size]
    pipe = (
        ltx_video("ltx-2b", vae="ltx", dtype=torch.bfloat16)
        if size == "full"
        else ltx_video()
    )
    use_ltx("gpu-check", pipe, device)
    clock = _Clock()
    frames, window = (281, 121) if size == "full" else (49, 17)
    result = LTXBackend(device=device).generate(
        _request(
            (width, height, frames, steps),
            windows=WindowPlan(frames=window, overlap_frames=8),
        ),
        clock,
        CancelToken(),
    )
    release_ltx()
    gaps = clock.gaps()
    return {
        "windows": len(result.windows) or 1,
        "gaps_between_windows_s": gaps,
        "decode_s": result.timings.get("decode"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SHAPES), default="full")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/gpu_check.json")
    )
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run it on a GPU machine")
    record: dict[str, Any] = {
        "machine": platform.platform(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "size": args.size,
        "shape": SHAPES[args.size],
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        record["ltx2"] = ltx2_modes(args.size, args.device, Path(tmp))
    record["ltx_long_take"] = ltx_windows(args.size, args.device)
    record["seconds"] = time.perf_counter() - start
    print("ltx long take", json.dumps(record["ltx_long_take"]))
    print(f"done in {record['seconds']:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
