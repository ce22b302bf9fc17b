"""Reading a story for the pages: a cached view per file version, previews.

`story_view` is keyed on the state file's identity (path, mtime, size,
inode), so a rerun with nothing changed costs a ``stat``; derived values
(generation order, salience, labels) are computed once per revision.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from kg.graph import (
    DynamicSceneGraph,
    continuous_descendants,
    generation_order,
    layered_layout,
    neighbourhood,
)
from kg.schema import (
    GENERATED_STATUSES,
    PENDING_STATUSES,
    SceneNode,
    Story,
)
from kg.store import STATE_FILE, load_story

if TYPE_CHECKING:
    from kg.memory import EntityMemory
    from kg.prompt import ScenePrompt


# Reading: a cached view per file version ----------------------------------------


class StoryView:
    """A story as loaded at one revision, with what pages derive from it.

    Shared between reruns and sessions: treat it as read-only. Derived values
    (generation order, salience, scene index) are computed once per revision.
    """

    def __init__(self, path: Path, story: Story) -> None:
        self.path = path
        self.story = story
        self.graph = DynamicSceneGraph(story)

    @property
    def revision(self) -> int:
        return self.story.revision

    @functools.cached_property
    def order(self) -> list[str]:
        """Scene ids in generation order (the story read front to back)."""
        return generation_order(self.graph)

    @functools.cached_property
    def salience(self) -> dict[str, float]:
        """``kg.memory.scene_salience``, shared by revisions of the same shape."""
        from kg.memory import scene_salience

        key = _structure_key(self.story)
        with _VIEWS_LOCK:
            cached = _SALIENCE.get(key)
        if cached is None:
            cached = scene_salience(self.graph)
            with _VIEWS_LOCK:
                if len(_SALIENCE) >= _VIEWS_MAX:
                    _SALIENCE.pop(next(iter(_SALIENCE)))
                _SALIENCE[key] = cached
        return cached

    @functools.cached_property
    def labels(self) -> dict[str, str]:
        return {s.id: f"{s.title} ({s.id})" for s in self.story.scenes}

    @functools.cached_property
    def layout(self) -> dict[str, tuple[float, float]]:
        """(layer, -row) of every scene (`kg.graph.layered_layout`)."""
        return layered_layout(self.graph)

    def nearest(self, center: str, limit: int) -> list[str]:
        """Up to ``limit`` scenes nearest ``center`` (`kg.graph.neighbourhood`)."""
        return neighbourhood(self.graph, center, limit)

    def salience_timeline(self, leaf: str) -> list:
        """Entity salience at each scene of the line ending at ``leaf``."""
        from kg.memory import salience_timeline

        return salience_timeline(self.graph, leaf)

    def scene(self, scene_id: str) -> SceneNode:
        return self.graph.scene(scene_id)

    def leaves(self) -> list[str]:
        """Last scenes of each story line, in generation order."""
        g = self.graph.g
        return [n for n in self.order if g.out_degree(n) == 0]


def _structure_key(story: Story) -> tuple:
    """What salience depends on: scene order, who appears where, edges, decay.

    Statuses, takes and wording do not change it, so the saves a generation
    makes every few seconds reuse the previous value.
    """
    return (
        tuple((s.id, tuple(s.character_ids), s.environment_id) for s in story.scenes),
        tuple((e.source, e.target, e.transition) for e in story.edges),
        tuple((c.id, c.importance) for c in story.characters),
        tuple((e.id, e.importance) for e in story.environments),
        story.settings.decay.model_dump_json(),
    )


_SALIENCE: dict[tuple, dict[str, float]] = {}
_VIEWS: dict[tuple[str, int, int, int], StoryView] = {}
_VIEWS_LOCK = threading.Lock()
_VIEWS_MAX = 16


def forget_views() -> None:
    """Drop every cached view (a story folder was deleted)."""
    with _VIEWS_LOCK:
        _VIEWS.clear()


def story_view(folder: Path) -> StoryView:
    """The story in ``folder`` as it is on disk now (cached per file version)."""
    file = Path(folder) / STATE_FILE
    info = file.stat()
    key = (str(file.resolve()), info.st_mtime_ns, info.st_size, info.st_ino)
    with _VIEWS_LOCK:
        view = _VIEWS.get(key)
    if view is not None:
        return view
    view = StoryView(Path(folder), load_story(folder))
    with _VIEWS_LOCK:
        if len(_VIEWS) >= _VIEWS_MAX:
            _VIEWS.pop(next(iter(_VIEWS)))
        _VIEWS[key] = view
    return view


def _path_story(view: StoryView, scene_id: str, draft: SceneNode) -> Story:
    """The story line leading to ``scene_id`` with the draft in its place.

    Prompts and memory only read the ancestor path, so previewing an unsaved
    edit costs the path, not the whole story.
    """
    from kg.graph import ancestor_path

    path = ancestor_path(view.graph, scene_id)
    on_path = set(path)
    scenes = [draft if sid == scene_id else view.scene(sid) for sid in path]
    edges = [
        e
        for e in view.story.edges
        if e.source in on_path and e.target in on_path and e.target != path[0]
    ]
    return Story.model_construct(
        title=view.story.title,
        settings=view.story.settings,
        characters=view.story.characters,
        environments=view.story.environments,
        scenes=scenes,
        edges=edges,
    )


def preview_prompt(
    view: StoryView, scene_id: str, draft: SceneNode | None = None
) -> tuple[ScenePrompt, list[EntityMemory]]:
    """The prompt and the remembered entities of a scene, unsaved edits included
    (with its dialogue and sound when the story's backend makes sound)."""
    from engine.catalog import CATALOG
    from kg.memory import remembered
    from kg.prompt import build_prompt

    draft = draft or view.scene(scene_id)
    graph = DynamicSceneGraph(_path_story(view, scene_id, draft))
    settings = view.story.settings
    backend = CATALOG.get(settings.backend)
    audio = backend is not None and backend.makes_audio
    budget = settings.prompt_token_budget or (
        backend.prompt_token_budget if backend is not None else None
    )
    prompt = build_prompt(graph, scene_id, audio=audio, budget=budget)
    return prompt, remembered(graph, scene_id)


def silent_backend_note(view: StoryView) -> str | None:
    """Why dialogue and sound fields do nothing now (None: the backend makes
    sound), from the backend catalog's ``makes_audio``."""
    from engine.catalog import CATALOG

    backend = view.story.settings.backend
    spec = CATALOG.get(backend)
    if spec is None or spec.makes_audio:
        return None
    with_sound = ", ".join(b.name for b in CATALOG.values() if b.makes_audio)
    return (
        f"The story's backend ({backend}) makes no sound: dialogue and sound are "
        f"kept but not used. Choose a backend with sound ({with_sound}) in "
        "Settings to use them."
    )


def pending_scene_ids(view: StoryView) -> list[str]:
    """Scenes to generate, in generation order."""
    return [sid for sid in view.order if view.scene(sid).status in PENDING_STATUSES]


def stale_if_selected(view: StoryView, scene_id: str) -> list[str]:
    """Scenes that would become stale if another take of ``scene_id`` is chosen."""
    return [
        sid
        for sid in continuous_descendants(view.graph, scene_id)
        if view.scene(sid).status in GENERATED_STATUSES
    ]


# The metrics of the table (`kg.metrics`), in its order.
