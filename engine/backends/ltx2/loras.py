"""A take's LoRA stack on LTX-2, through diffusers' adapter API.

Each LoRA file is read with ``safetensors`` (never pickle) and handed to the
pipeline's ``load_lora_weights`` (diffusers' ``LTX2LoraLoaderMixin``, which
also converts the makers' ``diffusion_model.*`` names), once per pipeline,
under an adapter name made from the file and its digest; ``set_adapters``
turns on a take's stack with its weights and every other adapter off.

Before any weight is loaded the file's safetensors header is compared with
the model (`check_stack`): every tensor must target a linear layer the
LTX-2 transformer (or its text connectors) has, with the input and output
sizes it has. A LoRA made for another architecture (LTX-Video, another
release's width, an image model) is refused naming the file and the first
layers that do not fit. The model is known without loading its weights:
its configs build the module tree on the ``meta`` device.

Fused or unfused: with the whole transformer resident on a CUDA device in
plain floating point (memory mode ``none``, one stage) the stack is fused
into the weights (``fuse_lora``: no extra work per step) and unfused after
the take; otherwise it stays unfused (``fp8`` and GGUF weights cannot take
a merged delta, offloaded weights move between devices, and the two-stage
route switches adapters between stages). The take records which.

An in-context LoRA (an IC-LoRA such as Lightricks' Ingredients reference
LoRA) reads the scene's reference images as reference tokens
(`engine.backends.ltx2.references`); its ``reference_downscale_factor``
comes from its metadata, as in the makers' ``iclora_utils``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.backend import LoraFile
from engine.loras import LoraFileError
from engine.models import is_tiny, read_safetensors_header
from kg.take import LoraUse, StageRecipe

__all__ = [
    "Adapter",
    "TakeLoras",
    "activate",
    "adapter_name",
    "can_fuse",
    "check_stack",
    "downscale_factor",
    "label",
    "layer_problems",
    "live_layers",
    "load_stack",
    "lora_uses",
    "model_layers",
]

Shapes = dict[str, tuple[int, int]]  # "transformer.<module>" -> (in, out)


@dataclass(frozen=True)
class Adapter:
    """A loaded LoRA of the take's stack: its adapter name and where it came from."""

    name: str
    lora: LoraFile

    @property
    def weight(self) -> float:
        return self.lora.weight


def adapter_name(lora: LoraFile) -> str:
    """The adapter name of a file at its digest (a new version loads anew)."""
    key = hashlib.sha256(f"{lora.file}\0{lora.digest}".encode()).hexdigest()[:12]
    return f"lora_{key}"


def _diffusers_shapes(header: dict[str, list[int]]) -> dict[str, list[int]]:
    """Tensor shapes under the names diffusers loads them by: the makers'
    ``diffusion_model.`` and ``text_embedding_projection.`` names converted
    (``_convert_non_diffusers_ltx2_lora_to_diffusers``); names for no LTX-2
    component are left out (diffusers would skip them silently)."""
    from diffusers.loaders.lora_conversion_utils import (
        _convert_non_diffusers_ltx2_lora_to_diffusers as convert,
    )

    out = {
        k: v for k, v in header.items() if k.startswith(("transformer.", "connectors."))
    }
    if any(k.startswith("diffusion_model.") for k in header):
        out.update(convert(dict(header)))
    if any(k.startswith("text_embedding_projection.") for k in header):
        out.update(convert(dict(header), "text_embedding_projection"))
    return out


def layer_problems(header: dict[str, list[int]], layers: Shapes) -> list[str]:
    """What in a LoRA header does not fit ``layers`` (empty: it fits)."""
    shapes = _diffusers_shapes(header)
    if not shapes:
        first = next(iter(header), "")
        return [
            f"none of its tensors is for an LTX-2 model (names like "
            f"{first[:60]!r}): a LoRA for another model"
        ]
    problems: list[str] = []
    for name, shape in shapes.items():
        module, _, part = name.rpartition(".lora_")
        if not part or len(shape) != 2:
            continue
        if module not in layers:
            problems.append(f"{module} is not a layer of this model")
            continue
        want_in, want_out = layers[module]
        if part.startswith("A") and shape[1] != want_in:
            problems.append(f"{module} takes {want_in} inputs, the LoRA {shape[1]}")
        if part.startswith("B") and shape[0] != want_out:
            problems.append(f"{module} gives {want_out} outputs, the LoRA {shape[0]}")
    return problems


def _layers(modules: dict[str, Any]) -> Shapes:
    """``"<component>.<module>" -> (in, out)`` of every linear layer."""
    found: Shapes = {}
    for component, module in modules.items():
        if module is None:
            continue
        for name, layer in module.named_modules():
            size_in = getattr(layer, "in_features", None)
            size_out = getattr(layer, "out_features", None)
            if isinstance(size_in, int) and isinstance(size_out, int):
                found[f"{component}.{name}"] = (size_in, size_out)
    return found


def live_layers(pipe: Any) -> Shapes:
    """The linear layers of a loaded pipeline's transformer and connectors."""
    return _layers(
        {
            "transformer": pipe.transformer,
            "connectors": getattr(pipe, "connectors", None),
        }
    )


@functools.lru_cache(maxsize=4)
def model_layers(model: str) -> Shapes:
    """The linear layers of ``model``'s transformer and connectors, built from
    its configs on the ``meta`` device (no weights read, no memory used)."""
    from diffusers import LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import LTX2TextConnectors

    from engine.backends.ltx2.loading import resolve_model

    source = resolve_model(model)
    with torch.device("meta"):
        if is_tiny(model):
            from engine.backends.ltx2.tiny import VERSION_OF_TINY, build_components

            version, _ = VERSION_OF_TINY[source.name]
            transformer, connectors = build_components(version)
        else:
            assert source.folder is not None, "folder sources carry their folder"
            transformer = LTX2VideoTransformer3DModel.from_config(
                _config(source.folder / "transformer" / "config.json")
            )
            connectors_config = source.folder / "connectors" / "config.json"
            connectors = (
                LTX2TextConnectors.from_config(_config(connectors_config))
                if connectors_config.is_file()
                else None
            )
    return _layers({"transformer": transformer, "connectors": connectors})


def _config(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _refuse(problems: dict[str, list[str]]) -> None:
    if not problems:
        return
    lines = []
    for where, found in problems.items():
        shown = "; ".join(found[:3]) + (
            f"; and {len(found) - 3} more" if len(found) > 3 else ""
        )
        lines.append(f"  {where}: made for another architecture ({shown})")
    raise LoraFileError(
        f"{len(problems)} LoRA file(s) do not fit this LTX-2 model, so nothing "
        "was generated; use LoRAs trained for this model and release, or remove "
        "them (Cast, Settings):\n" + "\n".join(lines)
    )


def _where(lora: LoraFile) -> str:
    return f"{lora.path} ({lora.scope})"


def check_stack(model: str, loras: Iterable[LoraFile]) -> None:
    """Refuse every LoRA of the stack that does not fit ``model`` (its header
    against the model's layers; no weight is read). Raises `LoraFileError`."""
    loras = list(loras)
    if not loras:
        return
    layers = model_layers(model)
    problems = {}
    for lora in loras:
        header, _ = read_safetensors_header(Path(lora.file))
        found = layer_problems(header, layers)
        if found:
            problems[_where(lora)] = found
    _refuse(problems)


def downscale_factor(lora: LoraFile) -> int:
    """The reference downscale factor an IC-LoRA was trained with (its
    metadata's ``reference_downscale_factor``, as the makers read it; 1)."""
    _, metadata = read_safetensors_header(Path(lora.file))
    try:
        return max(1, int(metadata.get("reference_downscale_factor", 1)))
    except (TypeError, ValueError):
        return 1


def _adapters(pipe: Any) -> set[str]:
    names: set[str] = set()
    for component in (pipe.transformer, getattr(pipe, "connectors", None)):
        if component is not None and getattr(
            component, "_hf_peft_config_loaded", False
        ):
            names |= set(component.peft_config)
    return names


def load_stack(pipe: Any, loras: Iterable[LoraFile]) -> list[Adapter]:
    """Each LoRA loaded into the pipeline once (checked against its layers
    first, read with safetensors), as adapters of the take's stack."""
    from safetensors.torch import load_file

    adapters: list[Adapter] = []
    loaded = _adapters(pipe)
    problems: dict[str, list[str]] = {}
    todo = []
    for lora in loras:
        name = adapter_name(lora)
        adapters.append(Adapter(name, lora))
        if name in loaded:
            continue
        header, _ = read_safetensors_header(Path(lora.file))
        found = layer_problems(header, live_layers(pipe))
        if found:
            problems[_where(lora)] = found
        todo.append((name, lora))
    _refuse(problems)
    dtype = pipe.transformer.dtype
    if not dtype.is_floating_point or dtype.itemsize < 2:
        dtype = torch.float32  # fp8-stored weights: the adapter stays in float
    for name, lora in todo:
        state = {k: v.to(dtype) for k, v in load_file(lora.file, device="cpu").items()}
        pipe.load_lora_weights(state, adapter_name=name)
    return adapters


def activate(pipe: Any, active: list[tuple[str, float]]) -> None:
    """Turn on exactly ``active`` (adapter name, weight), every other off."""
    if not _adapters(pipe):
        assert not active, "adapters are loaded before they are turned on"
        return
    if not active:
        pipe.disable_lora()
        return
    pipe.enable_lora()
    pipe.set_adapters([n for n, _ in active], [w for _, w in active])


def can_fuse(pipe: Any, memory_mode: str, adapters: list[Adapter]) -> bool:
    """Whether the stack is fused into the weights (see the module docstring)."""
    if not adapters or any(a.lora.in_context for a in adapters):
        return False
    if getattr(pipe, "latent_upsampler", None) is not None:
        return False  # two stages switch adapters between them
    if memory_mode != "none":
        return False
    transformer = pipe.transformer
    dtype = transformer.dtype
    device = next(transformer.parameters()).device
    return device.type == "cuda" and dtype in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
    )


def fuse(pipe: Any, adapters: list[Adapter]) -> None:
    """Merge the active stack into the weights (`unfuse` takes it out)."""
    pipe.fuse_lora(
        components=_components(pipe, adapters),
        lora_scale=1.0,
        adapter_names=[a.name for a in adapters],
    )


def unfuse(pipe: Any, adapters: list[Adapter]) -> None:
    pipe.unfuse_lora(components=_components(pipe, adapters))


def _components(pipe: Any, adapters: list[Adapter]) -> list[str]:
    names = {a.name for a in adapters}
    out = []
    for component in ("transformer", "connectors"):
        module = getattr(pipe, component, None)
        if module is not None and names & set(getattr(module, "peft_config", {}) or {}):
            out.append(component)
    return out


class TakeLoras:
    """The take's stack on the pipeline for a ``with`` block: loaded (each
    checked first), turned on at its weights, fused when it can be; on exit
    unfused and every adapter off, whatever happened inside."""

    def __init__(self, pipe: Any, loras: Iterable[LoraFile], memory_mode: str) -> None:
        self.pipe = pipe
        self.loras = tuple(loras)
        self.memory_mode = memory_mode
        self.adapters: list[Adapter] = []
        self.fused = False

    def __enter__(self) -> TakeLoras:
        pipe = self.pipe
        self.adapters = load_stack(pipe, self.loras)
        pipe.take_adapters = self.adapters
        pipe.take_fused = False
        activate(pipe, [(a.name, a.weight) for a in self.adapters])
        if can_fuse(pipe, self.memory_mode, self.adapters):
            fuse(pipe, self.adapters)
            self.fused = pipe.take_fused = True
        return self

    def __exit__(self, *exc: object) -> None:
        pipe = self.pipe
        try:
            if self.fused:
                unfuse(pipe, self.adapters)
        finally:
            pipe.take_fused = False
            pipe.take_adapters = []
            activate(pipe, [])

    def named(self, stages: list[StageRecipe]) -> list[StageRecipe]:
        """Each stage's recipe with the take's LoRAs it ran with (in-context
        ones not in a second stage), before the distilled LoRA."""
        out = []
        for stage in stages:
            names = [
                label(a.lora)
                for a in self.adapters
                if not (a.lora.in_context and stage.name == "stage 2")
            ]
            out.append(stage.model_copy(update={"loras": [*names, *stage.loras]}))
        return out


def label(lora: LoraFile) -> str:
    """A LoRA's name in a take's record: its file's name without the suffix."""
    return Path(lora.path).stem[:200] or lora.path[:200]


def lora_uses(stack: TakeLoras) -> list[LoraUse]:
    """What the take records of its own stack."""
    return [
        LoraUse(
            name=label(a.lora),
            file=a.lora.path,
            weight=a.weight,
            scope=a.lora.scope,
            in_context=a.lora.in_context,
            fused=stack.fused,
        )
        for a in stack.adapters
    ]
