"""A LoRA stack as the Cast and Settings pages show it: one LoRA per line.

``file = weight``, and ``in context`` after the weight for an IC-LoRA that
reads the scene's reference images (Lightricks' Ingredients reference
LoRA); the weight may be left out (1). A line that does not read stays as
text in the weight, so validation names the line (``loras.2.weight``)
instead of dropping it. Data only: no Streamlit.

Examples
--------
>>> text = "/loras/fox.safetensors = 0.8\\nloras/sheet.safetensors = 1 in context"
>>> rows = parse_lora_lines(text)
>>> rows[0], rows[1]["in_context"]
({'file': '/loras/fox.safetensors', 'weight': 0.8, 'in_context': False}, True)
>>> from kg.settings import LoraRef
>>> print(lora_lines([LoraRef(**r) for r in rows]))
/loras/fox.safetensors = 0.8
loras/sheet.safetensors = 1 in context
>>> parse_lora_lines("x.safetensors = lots")[0]["weight"]
'lots'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kg.settings import LoraRef

__all__ = ["IN_CONTEXT", "lora_lines", "parse_lora_lines", "LORA_HELP"]

IN_CONTEXT = "in context"
LORA_HELP = (
    "One LoRA per line: `file = weight`, the file a .safetensors LoRA (an "
    "absolute path, or one inside the story folder such as "
    "`loras/fox.safetensors`), the weight 1 when left out (negative weights "
    "subtract it). Add `in context` after the weight for an IC-LoRA that reads "
    "the scene's reference images (Lightricks' Ingredients LoRA). Used by "
    "the ltx2 backend; a LoRA for another model is refused before a take "
    "starts, naming the file."
)


def parse_lora_lines(text: str) -> list[dict[str, Any]]:
    """The lines of a LoRA box as `LoraRef` input (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        file, sep, rest = line.rpartition("=")
        if not sep:
            file, rest = line, ""
        rest = rest.strip()
        in_context = rest.lower().endswith(IN_CONTEXT)
        if in_context:
            rest = rest[: -len(IN_CONTEXT)].strip()
        weight: Any = 1.0
        if rest:
            try:
                weight = float(rest)
            except ValueError:
                weight = rest  # validation names it
        rows.append({"file": file.strip(), "weight": weight, "in_context": in_context})
    return rows


def lora_lines(loras: Sequence[LoraRef | dict[str, Any]]) -> str:
    """A stack as the box shows it (what `parse_lora_lines` reads back)."""
    out = []
    for lora in loras:
        item = lora if isinstance(lora, LoraRef) else LoraRef(**lora)
        extra = f" {IN_CONTEXT}" if item.in_context else ""
        out.append(f"{item.file} = {item.weight:g}{extra}")
    return "\n".join(out)
