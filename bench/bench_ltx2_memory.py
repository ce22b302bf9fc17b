"""LTX-2 memory on the CPU: a GGUF load, and decoding a long take.

Two questions, each answered as the peak resident memory of one step,
measured in its own process (the kernel's high-water mark, ``VmHWM``, reset
through ``/proc/self/clear_refs`` just before the step):

- **GGUF**: loading a checkpoint folder with a GGUF transformer the way the
  runtime does now (the folder's transformer is never loaded) against the
  floor it replaced (the folder loaded whole, then the GGUF swapped in), on a
  mid-size LTX-2 (a 30M-parameter transformer saved as a diffusers folder).
- **Decode**: a 481-frame take (61 latents) decoded 16 latents at a time
  (what the backend does) against the one-piece decode, on the mid model's
  VAE at 256x256.

Ratios are taken against the floor measured in the same run. Linux only
(``/proc``); prints a table and writes JSON.

    python bench/bench_ltx2_memory.py [--out bench/results/bench_ltx2_memory.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_hwm() -> int:
    Path("/proc/self/clear_refs").write_text("5")
    return _hwm_kib()


def case(name: str, folder: Path) -> dict[str, Any]:
    """Run one step in this process; its peak resident memory in MiB."""
    import torch

    from engine.backends.diffusers import runtime
    from engine.backends.ltx2 import loading

    if name.startswith("decode"):
        from engine.backends.diffusers.frames import decode_in_chunks

        pipe = loading.load_pipeline(loading.resolve_model(str(folder)), torch.float32)
        latents = torch.randn(
            1, 128, 61, 8, 8, generator=torch.Generator().manual_seed(0)
        )
        before = _reset_hwm()
        chunk = 16 if name == "decode_chunked" else 61
        frames = decode_in_chunks(pipe, latents, chunk_latents=chunk)
        assert frames.shape[0] == 481
    else:
        gguf = str(folder / "transformer.gguf")
        source = loading.resolve_model(str(folder))
        before = _reset_hwm()
        if name == "gguf_now":
            pipe = runtime.loaded_model(
                str(folder), "cpu", family="ltx2", loader=loading, transformer_file=gguf
            ).pipe
        else:  # the floor: the whole folder first, then the GGUF swapped in
            pipe = loading.load_pipeline(source, torch.float32)
            pipe.transformer = runtime._gguf_transformer(
                pipe, source, "ltx2", gguf, torch.float32
            )
        assert getattr(pipe.transformer, "is_quantized", False)
    return {"case": name, "peak_mib": (_hwm_kib() - before) / 1024}


def _run(name: str, folder: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--case", name, "--folder", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case")
    parser.add_argument("--folder", type=Path)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bench_ltx2_memory.json")
    )
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.folder)))
        return
    from engine.backends.diffusers.gguf import write_gguf
    from engine.backends.ltx2.tiny import build_random_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mid-ltx2"
        pipe = build_random_pipeline("mid")
        pipe.save_pretrained(folder)
        write_gguf(pipe.transformer, folder / "transformer.gguf")
        del pipe
        rows = {
            name: _run(name, folder)["peak_mib"]
            for name in ("gguf_floor", "gguf_now", "decode_one_piece", "decode_chunked")
        }
    record = {
        "peak_mib": rows,
        "gguf_now_vs_floor": rows["gguf_now"] / rows["gguf_floor"],
        "decode_chunked_vs_one_piece": rows["decode_chunked"]
        / rows["decode_one_piece"],
    }
    for name, mib in rows.items():
        print(f"{name:18} peak {mib:8.1f} MiB")
    print(
        f"GGUF load: {record['gguf_now_vs_floor']:.2f}x the whole-folder floor; "
        f"chunked decode: {record['decode_chunked_vs_one_piece']:.2f}x one piece"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
