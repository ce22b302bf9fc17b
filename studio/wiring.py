"""How the front ends put the libraries together, in one place for both.

The engine and scoring never import each other; the studio and the
``storygraph`` command connect them here:

- `models`: the process's model cache (`engine.model_cache.ModelCache`), the
  one owner of every loaded model: the backends' pipelines and the scoring
  encoders; releasing one family frees only that family's model;
- `default_observer`: the scoring observer that scores every take (or None
  when scoring cannot start: generation never depends on it), its encoders
  held in `models`;
- `shared_backend`: one backend instance per name for the whole process,
  reused across scenes, runs and stories; a backend that loads weights
  (its catalog spec's ``model_family``) is given `models`, and
  `release_backends` frees every family;
- `make_runner`: a `JobRunner` with both.

Nothing here imports torch at module import time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.backend import VideoBackend
    from engine.job_queue import SharedQueue
    from engine.model_cache import ModelCache
    from engine.observe import TakeObserver
    from engine.runner import JobRunner

__all__ = [
    "models",
    "default_observer",
    "shared_backend",
    "release_backends",
    "make_runner",
]

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_BACKENDS: dict[str, VideoBackend] = {}


def models() -> ModelCache:
    """The process's model cache: every loaded model lives here."""
    from engine.model_cache import PROCESS_MODELS

    return PROCESS_MODELS


def default_observer() -> TakeObserver | None:
    """The scoring observer, or None (with a log line) when it cannot start."""
    try:
        from scoring.observer import Observer
    except ImportError as exc:
        log.warning("scoring is not installed (%s); takes are not scored", exc)
        return None
    try:
        return Observer.default(models=models())
    except Exception as exc:  # noqa: BLE001 - scoring must never stop generation
        log.warning("scoring disabled: %s", exc)
        return None


def shared_backend(name: str) -> VideoBackend:
    """The process's backend called ``name``, built on first use."""
    from engine.backend import get_backend
    from engine.catalog import CATALOG

    with _LOCK:
        backend = _BACKENDS.get(name)
        if backend is None:
            holds = name in CATALOG and CATALOG[name].holds_models
            options = {"models": models()} if holds else {}
            backend = _BACKENDS[name] = get_backend(name, **options)
        return backend


def release_backends() -> None:
    """Free every shared backend and every loaded model (they load again on
    next use)."""
    with _LOCK:
        backends = list(_BACKENDS.values())
        _BACKENDS.clear()
    for backend in backends:
        backend.release()
    models().release()


def make_runner(
    story_dir: str | os.PathLike[str],
    *,
    score: bool = True,
    on_scene_end: Callable[[str, str], None] | None = None,
    queue: SharedQueue | None = None,
) -> JobRunner:
    """A `JobRunner` for a story, scoring with the default observer; runners
    given one ``queue`` share one order and one turn across stories."""
    from engine.runner import JobRunner

    return JobRunner(
        story_dir,
        default_observer() if score else None,
        on_scene_end=on_scene_end,
        backends=shared_backend,
        queue=queue,
    )
