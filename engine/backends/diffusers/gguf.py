"""GGUF transformers for the LTX backends: check the architecture, then load.

Users on 12-24 GB cards run LTX transformers quantized to GGUF (Q8_0, Q4_K...)
as ComfyUI-GGUF, Wan2GP and AutoStudio do. diffusers loads them with
``from_single_file`` and ``GGUFQuantizationConfig`` (weights stay quantized,
each layer is dequantized to the compute dtype when it runs). A GGUF file of
another architecture would fail deep inside the key conversion, or load into
the wrong shapes; `check_gguf` reads the file's header first (no weights;
every count and size checked against the file first,
`engine.backends.diffusers.gguf_header`) and refuses it naming the file,
what it holds and what the backend expects.

`write_gguf` writes a transformer's weights in the original (LTX) key layout
that diffusers' single-file conversion reads, quantizing the transformer
blocks' attention and feed-forward weights to Q8_0 and keeping the rest
(embeddings, timestep and AdaLN modulation, input and output projections,
norms, biases) in float32, as GGUF converters of video transformers do (the
tests and the benchmark make their GGUF files with it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.backend import BackendError
from engine.backends.diffusers.gguf_header import check_gguf_header

__all__ = ["GgufInfo", "read_gguf_info", "check_gguf", "write_gguf", "load_gguf"]

Family = Literal["ltx", "ltx2"]

_FAMILY_NAMES = {"ltx": "LTX-Video", "ltx2": "LTX-2"}
# diffusers key -> original key (the inverse of diffusers' single-file renames)
_LTX2_ORIGINAL = (
    ("audio_proj_in", "audio_patchify_proj"),
    ("proj_in", "patchify_proj"),
    ("av_cross_attn_video_scale_shift", "av_ca_video_scale_shift_adaln_single"),
    ("av_cross_attn_video_a2v_gate", "av_ca_a2v_gate_adaln_single"),
    ("av_cross_attn_audio_scale_shift", "av_ca_audio_scale_shift_adaln_single"),
    ("av_cross_attn_audio_v2a_gate", "av_ca_v2a_gate_adaln_single"),
    ("video_a2v_cross_attn_scale_shift_table", "scale_shift_table_a2v_ca_video"),
    ("audio_a2v_cross_attn_scale_shift_table", "scale_shift_table_a2v_ca_audio"),
    ("norm_q", "q_norm"),
    ("norm_k", "k_norm"),
)


@dataclass(frozen=True)
class GgufInfo:
    """What a GGUF file's header says."""

    path: Path
    architecture: str  # general.architecture ("" when absent)
    family: str  # ltx2 | ltx | unknown: from the tensor names
    width: int | None  # the transformer's inner dim (its input projection's rows)
    tensors: int


def _family(names: list[str]) -> str:
    if any("audio_patchify_proj" in n or "audio_proj_in" in n for n in names):
        return "ltx2"
    has_proj = any("patchify_proj" in n or "proj_in" in n for n in names)
    has_time = any("adaln_single" in n or "time_embed" in n for n in names)
    return "ltx" if has_proj and has_time else "unknown"


def read_gguf_info(path: str | os.PathLike[str]) -> GgufInfo:
    """Architecture, family and width of a GGUF file, from its header."""
    from gguf import GGUFReader

    file = Path(path).expanduser()
    if not file.is_file():
        raise BackendError(
            f"transformer_file {file} does not exist; point it at a .gguf file"
        )
    check_gguf_header(file)  # counts and sizes against the file, before a reader
    try:
        reader = GGUFReader(str(file))
    except Exception as exc:  # noqa: BLE001 - any parse failure: not a GGUF file
        raise BackendError(
            f"transformer_file {file} is not a GGUF file: {exc}"
        ) from exc
    arch = ""
    field = reader.fields.get("general.architecture")
    if field is not None:
        arch = bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    names = [t.name for t in reader.tensors]
    width = None
    for t in reader.tensors:
        name = t.name.removeprefix("model.diffusion_model.")
        if name in ("patchify_proj.weight", "proj_in.weight"):
            width = int(t.shape[-1])  # ggml order: [in, out]
    return GgufInfo(file, arch, _family(names), width, len(names))


def check_gguf(
    path: str | os.PathLike[str], family: Family, expected_width: int | None = None
) -> GgufInfo:
    """Refuse a GGUF file that is not a transformer of ``family`` (and width).

    Raises
    ------
    BackendError
        Naming the file, what it holds and the architecture expected.
    """
    info = read_gguf_info(path)
    want = _FAMILY_NAMES[family]
    if info.family != family:
        held = _FAMILY_NAMES.get(info.family, "an unknown")
        arch = (
            f" (general.architecture {info.architecture!r})"
            if info.architecture
            else ""
        )
        raise BackendError(
            f"transformer_file {info.path} holds {held} transformer{arch}, not "
            f"{want}: the {family} backend needs an {want} transformer ({family}) "
            "in GGUF; choose a GGUF made from that model, or clear transformer_file"
        )
    if expected_width and info.width and info.width != expected_width:
        raise BackendError(
            f"transformer_file {info.path} holds an {want} transformer of width "
            f"{info.width}; the model's config expects width {expected_width}: "
            "use the GGUF made from this checkpoint"
        )
    return info


def _original_key(key: str, family: Family) -> str:
    if family == "ltx2":
        for new, old in _LTX2_ORIGINAL:
            if key.startswith(new) or f".{new}" in key:
                key = key.replace(new, old, 1)
                break
        if key.startswith("time_embed."):
            key = "adaln_single." + key.removeprefix("time_embed.")
        elif key.startswith("audio_time_embed."):
            key = "audio_adaln_single." + key.removeprefix("audio_time_embed.")
        for new, old in _LTX2_ORIGINAL[-2:]:
            key = key.replace(f".{new}.", f".{old}.")
    return "model.diffusion_model." + key


def write_gguf(
    model: Any,
    path: str | os.PathLike[str],
    family: Family = "ltx2",
    quantize: bool = True,
) -> Path:
    """Write ``model``'s weights as a GGUF file (see the module docstring).

    Block weights (``transformer_blocks.*`` 2-D ``.weight`` tensors whose rows
    are a multiple of 32) are stored as Q8_0, the rest as float32; keys are
    the original LTX layout under ``model.diffusion_model.``.
    """
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize as to_quant

    file = Path(path)
    writer = GGUFWriter(str(file), arch=family)
    for key, tensor in model.state_dict().items():
        data = tensor.detach().float().cpu().numpy()
        name = _original_key(key, family)
        in_block = key.startswith("transformer_blocks.") and key.endswith(".weight")
        if quantize and in_block and data.ndim == 2 and data.shape[-1] % 32 == 0:
            q = to_quant(data, GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, q, raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return file


def load_gguf(
    model_class: Any,
    path: str | os.PathLike[str],
    config_folder: str | os.PathLike[str],
    compute_dtype: Any,
) -> Any:
    """``model_class.from_single_file`` with ``GGUFQuantizationConfig``, offline.

    ``config_folder`` holds the transformer's ``config.json`` (the checkpoint's
    ``transformer/`` folder).
    """
    from diffusers import GGUFQuantizationConfig

    try:
        return model_class.from_single_file(
            str(path),
            quantization_config=GGUFQuantizationConfig(compute_dtype=compute_dtype),
            config=str(config_folder),
            torch_dtype=compute_dtype,
            local_files_only=True,
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise BackendError(f"could not load transformer_file {path}: {exc}") from exc
