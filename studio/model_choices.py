"""The Model setting's choices: the catalog's models with their availability.

Read from `engine.models.CATALOG` (what ``storygraph fetch-models`` fetches,
and whether it is in the local cache now: `engine.models.model_status`, no
network) and from the backend catalog's random-weight test models
(`engine.catalog.CATALOG` versions' ``tiny_id``; ``tiny-random`` builds a
tiny LTX-Video or LTX-2 in code, for smoke runs without weights). Anything
else (a local folder, a hosted model id) is typed as "Other".
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

__all__ = ["ModelChoice", "OTHER", "DEFAULT", "model_choices"]

DEFAULT = ""  # the backend's own default model
OTHER = "\u2026other"  # a value no model id can take (ids are plain names)
_STATUS_TTL_S = 30.0  # a fetch in a terminal shows up within this


@dataclass(frozen=True)
class ModelChoice:
    value: str  # what Settings.model holds
    label: str  # what the chooser shows


def _label(name: str, backend: str, what: str, state: str) -> str:
    return f"{name} · {backend} · {what} · {state}"


@functools.lru_cache(maxsize=4)
def _choices(epoch: int) -> tuple[ModelChoice, ...]:
    from engine.catalog import CATALOG as BACKENDS
    from engine.models import TINY_MODEL_ID, model_status

    choices = [ModelChoice(DEFAULT, "backend's default")]
    tiny = {TINY_MODEL_ID: ["ltx"]}
    for backend in BACKENDS.values():
        for version in backend.versions.values():
            tiny.setdefault(version.tiny_id, []).append(backend.name)
    for model_id, backends in tiny.items():
        choices.append(
            ModelChoice(
                model_id,
                _label(
                    model_id,
                    "/".join(dict.fromkeys(backends)),
                    "random weights, built in code (noise, for smoke runs)",
                    "always available",
                ),
            )
        )
    for status in model_status():
        spec = status.spec
        if spec.role != "video" or not spec.backend or "lora" in spec.name:
            continue
        if status.available:
            state = "available"
        elif status.folder is not None:
            state = "incomplete: " + "; ".join(status.problems)[:80]
        else:
            state = f"not fetched: storygraph fetch-models {spec.name}"
        choices.append(
            ModelChoice(
                spec.name, _label(spec.name, spec.backend, spec.description, state)
            )
        )
    choices.append(
        ModelChoice(OTHER, "Other: a local folder or a model id, typed below")
    )
    return tuple(choices)


def model_choices() -> tuple[ModelChoice, ...]:
    """Every choice, availability checked at most every `_STATUS_TTL_S`."""
    return _choices(int(time.monotonic() // _STATUS_TTL_S))
