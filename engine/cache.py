"""Content hash of a generation, so an identical request reuses its take.

The key covers everything that decides the pixels: the backend (name and
version), the model, every field of the request except the carried arrays,
the reference images (their pixels), the LoRA stack (each file's digest and
weight), a supplied dialogue track (its sha256), and the continuity source
(which take, its own content hash, the mode). Two
takes with the same key are the same clip; regenerating is a waste unless the
user forces it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from engine.backend import GenerationRequest
from kg.schema import TakeRef

__all__ = ["CACHE_VERSION", "cache_key"]

# Bumped when the way files are written changes, so old takes are not reused.
CACHE_VERSION = 1


def cache_key(
    *,
    backend: str,
    backend_version: str,
    model: str,
    request: GenerationRequest,
    source: TakeRef | None,
    source_key: str,
    continuity_mode: str,
) -> str:
    """A sha256 hex digest of the generation's content.

    Examples
    --------
    >>> from engine.backend import GenerationRequest
    >>> r = GenerationRequest("a cat", 64, 64, 9, 24, 1, 4, 3.0)
    >>> k = dict(backend="animatic", backend_version="1", model="", request=r,
    ...          source=None, source_key="", continuity_mode="none")
    >>> cache_key(**k) == cache_key(**k)
    True
    >>> cache_key(**k) == cache_key(**{**k, "model": "other"})
    False
    """
    fields = {
        f.name: getattr(request, f.name)
        for f in dataclasses.fields(request)
        if f.name
        not in (
            "continuity",
            "scene",
            "memory_mode",
            "windows",
            "references",
            "loras",
            "dialogue_audio",
            "hosted",
            "color_anchor",
        )
    }
    doc = {
        "v": CACHE_VERSION,
        "backend": backend,
        "backend_version": backend_version,
        "model": model,
        "request": fields,
        "scene": dataclasses.asdict(request.scene) if request.scene else None,
        "windows": dataclasses.asdict(request.windows),
        "source": source.model_dump() if source else None,
        "source_key": source_key,
        "continuity_mode": continuity_mode,
        "strength": request.continuity.strength if request.continuity else None,
    }
    if request.references:  # absent otherwise: keys of earlier takes still match
        doc["references"] = [
            [r.path, r.strength, hashlib.sha256(r.frame.tobytes()).hexdigest()]
            for r in request.references
        ]
    if request.loras:  # absent otherwise, as references
        doc["loras"] = [
            [x.path, x.weight, x.in_context, x.digest] for x in request.loras
        ]
    if request.dialogue_audio is not None:  # absent otherwise, as references
        doc["dialogue_audio"] = [
            request.dialogue_audio.path,
            request.dialogue_audio.digest,
        ]
    if request.color_anchor is not None:  # absent otherwise, as references
        doc["color"] = request.color_anchor.key()
    text = json.dumps(doc, sort_keys=True, default=list, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
