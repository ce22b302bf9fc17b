"""The studio's one door to the story graph, the engine and the observer.

Pages call only these functions: they read a story through a cached
`StoryView` (keyed on the file's identity, so a rerun with nothing changed
costs a ``stat``), write through `edit_story` (``kg.store.update_story``:
locked, revision-checked, re-applied to the newest revision, so a change the
generation worker made in between is never lost), and start, poll and cancel
generations through the engine's `JobRunner`, one per story folder and
process. Nothing here draws; heavy libraries (torch through the engine, the
observer's encoders) are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st
from pydantic import ValidationError

from kg.errors import StoryConflictError, StoryError, StoryValidationError
from kg.graph import (
    DynamicSceneGraph,
    continuous_descendants,
    generation_order,
    mark_stale_descendants,
)
from kg.layout import references_dir
from kg.paths import TMP_MARK, inside, make_folder
from kg.schema import (
    GENERATED_STATUSES,
    PENDING_STATUSES,
    Character,
    Environment,
    SceneNode,
    Settings,
    Story,
)
from kg.store import (
    STATE_FILE,
    dump_story,
    load_story,
    parse_story,
    parse_story_bytes,
    save_story,
    validation_problems,
)
from kg.store import resolve_asset as _resolve_asset

if TYPE_CHECKING:
    from kg.memory import EntityMemory
    from kg.prompt import ScenePrompt

__all__ = [
    "StoryError",
    "StoryValidationError",
    "SCORE_FIELDS",
    "JobSnapshot",
    "OUTPUTS_ENV",
    "GENERATED_STATUSES",
    "PENDING_STATUSES",
    "StoryEntry",
    "StoryView",
    "Problem",
    "outputs_root",
    "list_stories",
    "check_slug",
    "slugify",
    "create_story",
    "import_story",
    "duplicate_story",
    "delete_story",
    "remember_last_story",
    "last_story",
    "story_view",
    "edit_story",
    "problems_of",
    "validate_scene",
    "save_scene",
    "add_scene",
    "branch_scene",
    "connect_scenes",
    "disconnect_scenes",
    "set_transition",
    "delete_scene",
    "preview_prompt",
    "pending_scene_ids",
    "stale_if_selected",
    "select_take",
    "validate_character",
    "save_character",
    "delete_character",
    "validate_environment",
    "save_environment",
    "delete_environment",
    "add_reference_image",
    "dataset_folder",
    "remove_reference_image",
    "validate_settings",
    "save_settings",
    "available_backends",
    "resolve_asset",
    "job_runner",
    "job_status",
    "submit_generation",
    "cancel_generation",
    "wait_for_jobs",
    "recover_interrupted",
    "generating_elsewhere",
]

log = logging.getLogger(__name__)

OUTPUTS_ENV = "STORYGRAPH_OUTPUTS"
LAST_STORY_FILE = ".studio-last-story"
# A take that exists on disk: regenerating or reselecting upstream makes it stale.
# What "generate all pending" picks up.
# Reference images: what browsers and the encoders read, and a size that keeps
# the story folder portable.
REFERENCE_TYPES = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
MAX_REFERENCE_BYTES = 10 * 1024 * 1024
# 50 megapixels (e.g. 8,660 x 5,773): more is a decompression bomb, not a
# reference photo; Pillow itself only refuses beyond about 179 megapixels.
MAX_REFERENCE_PIXELS = 50_000_000
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CONFLICT_RETRIES = 3

T = TypeVar("T")
Problem = tuple[str, str]  # (field path, message)


# Stories on disk ----------------------------------------------------------------


@dataclass(frozen=True)
class StoryEntry:
    """One folder under the outputs root, readable or not."""

    slug: str
    path: Path
    title: str
    scenes: int
    generated: int
    revision: int
    error: str | None = None


def outputs_root() -> Path:
    """Where stories live: ``$STORYGRAPH_OUTPUTS`` or ``story_outputs/``."""
    return Path(os.environ.get(OUTPUTS_ENV, "story_outputs")).resolve()


def list_stories(root: Path | None = None) -> list[StoryEntry]:
    """Every story folder under the root, by name; unreadable ones say why."""
    root = root or outputs_root()
    out = []
    for folder in _story_folders(root):
        try:
            story = story_view(folder).story
        except (StoryError, OSError) as exc:
            message = str(exc) if len(str(exc)) <= 2_000 else str(exc)[:2_000] + "…"
            out.append(StoryEntry(folder.name, folder, folder.name, 0, 0, 0, message))
            continue
        generated = sum(1 for s in story.scenes if s.selected_take is not None)
        out.append(
            StoryEntry(
                folder.name,
                folder,
                story.title,
                len(story.scenes),
                generated,
                story.revision,
            )
        )
    return out


def _story_folders(root: Path) -> list[Path]:
    """Folders under ``root`` that hold a ``kg_state.json``, by name.

    One unreadable folder (permissions, a dangling link) is skipped with a log
    line; it never takes the listing down.
    """
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        log.warning("cannot list the stories in %s: %s", root, exc)
        return []
    folders = []
    for entry in entries:
        try:
            if entry.is_dir() and os.path.lexists(os.path.join(entry.path, STATE_FILE)):
                folders.append(Path(entry.path))
        except OSError as exc:
            log.warning("skipping %s: %s", entry.path, exc)
    return folders


def slugify(text: str) -> str:
    """A folder name from a title: ``"The Storm!"`` -> ``"the-storm"``."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return slug[:64] or "story"


def check_slug(slug: str, root: Path | None = None) -> str | None:
    """Why ``slug`` cannot be a new story folder, or None when it can."""
    if not _SLUG_RE.match(slug):
        return (
            f"Folder name {slug!r}: use lowercase letters, digits, '-' and '_' "
            "(at most 64), starting with a letter or digit"
        )
    if ((root or outputs_root()) / slug).exists():
        return f"Folder name {slug!r} is taken; choose another or delete that story"
    return None


def _new_folder(slug: str) -> Path:
    problem = check_slug(slug)
    if problem:
        raise StoryError(problem)
    return outputs_root() / slug


def create_story(slug: str, title: str, *, example: bool = False) -> Path:
    """A new story folder, blank or holding the example story."""
    from kg.example import blank_story, example_story

    folder = _new_folder(slug)
    title = title.strip()
    try:
        if example:
            story = example_story(title) if title else example_story()
        else:
            story = blank_story(title or slug)
    except ValidationError as exc:
        raise StoryValidationError("new story", problems_of(exc)) from None
    save_story(story, folder)
    return folder


def import_story(slug: str, data: bytes, source: str = "kg_state.json") -> Path:
    """Validate an uploaded ``kg_state.json`` and store it as a new story.

    Raises `StoryValidationError` naming every problem's JSON path. Takes
    whose files did not come along keep their records (the files read as
    missing) so nothing the file said is dropped.
    """
    story = parse_story_bytes(data, source)
    folder = _new_folder(slug)
    story.revision = 0
    save_story(story, folder)
    return folder


def duplicate_story(source: Path, slug: str) -> Path:
    """Copy a story folder with its takes; the copy starts at revision 0."""
    folder = _new_folder(slug)
    shutil.copytree(source, folder, symlinks=True, ignore=_not_copied)

    def reset(story: Story) -> None:
        story.title = f"{story.title} (copy)"[:200]

    edit_story(folder, reset)
    return folder


def _not_copied(directory: str, names: list[str]) -> set[str]:
    """What Duplicate leaves behind: locks, temporary files, backups and links.

    A link is not followed (its target may be outside the story) nor copied
    (the copy would refuse to use it anyway).
    """
    patterns = shutil.ignore_patterns(
        ".kg_state.lock", ".run.lock", f".*{TMP_MARK}-*", "*.bak"
    )
    skip = set(patterns(directory, names))
    skip.update(n for n in names if os.path.islink(os.path.join(directory, n)))
    return skip


def delete_story(folder: Path) -> None:
    """Remove a story folder; refuses anything outside the outputs root."""
    folder = folder.resolve()
    root = outputs_root()
    if folder.parent != root or not (folder / STATE_FILE).exists():
        raise StoryError(f"{folder} is not a story folder under {root}; not deleted")
    shutil.rmtree(folder)
    _VIEWS.clear()


def remember_last_story(folder: Path | None) -> None:
    """Record the open story so a reloaded page opens it again."""
    marker = outputs_root() / LAST_STORY_FILE
    try:
        if folder is None:
            marker.unlink(missing_ok=True)
        else:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(folder.name, encoding="utf-8")
    except OSError as exc:
        log.warning("could not remember the open story in %s: %s", marker, exc)


def last_story() -> Path | None:
    """The story open last, when it still exists."""
    marker = outputs_root() / LAST_STORY_FILE
    try:
        slug = marker.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    folder = outputs_root() / slug
    return folder if slug and (folder / STATE_FILE).exists() else None


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


# Writing ---------------------------------------------------------------------------


def problems_of(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Pydantic errors as ``(field, message)`` pairs a person can act on."""
    return validation_problems(exc, prefix)


def _revalidate(story: Story, source: str) -> None:
    """Cross-reference checks the field-level assignment checks do not run.

    Raises `StoryValidationError` naming each problem's JSON path.
    """
    parse_story(dump_story(story), source)


def edit_story(folder: Path, mutate: Callable[[Story], T]) -> T:
    """Apply ``mutate`` to the newest revision under the lock and save it.

    The worker may save in between a page's read and this write; the change
    is re-applied on the newest revision rather than lost. A mutation that
    breaks the story raises `StoryValidationError` and nothing is written.
    """
    from kg.store import update_story

    def checked(story: Story) -> T:
        result = mutate(story)
        _revalidate(story, str(Path(folder) / STATE_FILE))
        return result

    for attempt in range(_CONFLICT_RETRIES):
        try:
            return update_story(folder, checked)
        except StoryConflictError:
            if attempt == _CONFLICT_RETRIES - 1:
                raise
            log.info("story %s changed while saving; applying again", folder)
    raise AssertionError("unreachable")


# Scenes ----------------------------------------------------------------------------

EDITABLE_SCENE_FIELDS = (
    "title",
    "character_ids",
    "environment_id",
    "pose",
    "motion",
    "weather",
    "lighting",
    "camera",
    "duration_s",
    "seed",
    "prompt_override",
    "negative_prompt",
)


def validate_scene(
    scene: SceneNode, fields: dict[str, Any]
) -> tuple[SceneNode | None, list[Problem]]:
    """The scene with the editor's values, or the problems naming each field."""
    unknown = set(fields) - set(EDITABLE_SCENE_FIELDS)
    assert not unknown, f"not editable scene fields: {sorted(unknown)}"
    data = scene.model_dump()
    data.update(fields)
    if data.get("prompt_override") is not None and not data["prompt_override"].strip():
        data["prompt_override"] = None
    try:
        return SceneNode.model_validate(data), []
    except ValidationError as exc:
        return None, problems_of(exc)


def _scene_changed(old: SceneNode, new: SceneNode) -> bool:
    return any(getattr(old, f) != getattr(new, f) for f in EDITABLE_SCENE_FIELDS)


def save_scene(folder: Path, scene_id: str, fields: dict[str, Any]) -> list[str]:
    """Save the editor's values; returns scenes that became stale.

    A generated scene whose description changed no longer matches its takes:
    it and its continuous descendants become ``stale``.
    """

    def mutate(story: Story) -> list[str]:
        graph = DynamicSceneGraph(story)
        old = graph.scene(scene_id)
        new, problems = validate_scene(old, fields)
        if new is None:
            raise StoryValidationError(f"scene {scene_id}", problems)
        if not _scene_changed(old, new):
            return []
        stale: list[str] = []
        if new.status in GENERATED_STATUSES and new.takes:
            new.status = "stale"
            stale.append(scene_id)
        i = next(i for i, s in enumerate(story.scenes) if s.id == scene_id)
        story.scenes[i] = new
        graph = DynamicSceneGraph(story)
        if stale:
            stale += mark_stale_descendants(graph, scene_id)
        return stale

    return edit_story(folder, mutate)


def _new_scene_id(story: Story) -> str:
    taken = {s.id for s in story.scenes}
    n = len(story.scenes) + 1
    while f"scene-{n}" in taken:
        n += 1
    return f"scene-{n}"


def _blank_scene(story: Story, after: SceneNode | None) -> SceneNode:
    sid = _new_scene_id(story)
    if after is None:
        return SceneNode(id=sid, title=f"Scene {len(story.scenes) + 1}")
    return SceneNode(
        id=sid,
        title=f"After {after.title}"[:120],
        character_ids=list(after.character_ids),
        environment_id=after.environment_id,
        weather=after.weather,
        lighting=after.lighting,
        seed=after.seed + 1,
    )


def add_scene(folder: Path, after: str | None = None) -> str:
    """A new scene after ``after`` (taking over its successors), or a new root."""

    def mutate(story: Story) -> str:
        graph = DynamicSceneGraph(story)
        scene = _blank_scene(story, graph.scene(after) if after else None)
        if after is None:
            graph.add_scene(scene)
        else:
            graph.insert_after(scene, after)
        return scene.id

    return edit_story(folder, mutate)


def branch_scene(folder: Path, after: str, transition: str = "cut") -> str:
    """A new scene starting a branch from ``after``."""

    def mutate(story: Story) -> str:
        graph = DynamicSceneGraph(story)
        scene = _blank_scene(story, graph.scene(after))
        graph.add_scene(scene, after=after, transition=transition)
        return scene.id

    return edit_story(folder, mutate)


def connect_scenes(folder: Path, source: str, target: str, transition: str) -> None:
    edit_story(
        folder, lambda s: DynamicSceneGraph(s).connect(source, target, transition)
    )


def disconnect_scenes(folder: Path, source: str, target: str) -> None:
    edit_story(folder, lambda s: DynamicSceneGraph(s).disconnect(source, target))


def set_transition(folder: Path, source: str, target: str, transition: str) -> None:
    edit_story(
        folder,
        lambda s: DynamicSceneGraph(s).set_transition(source, target, transition),
    )


def delete_scene(folder: Path, scene_id: str) -> None:
    """Delete a scene (its predecessor joins its successors); files stay."""
    edit_story(folder, lambda s: DynamicSceneGraph(s).remove_scene(scene_id))


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
    """The prompt and the remembered entities of a scene, unsaved edits included."""
    from kg.memory import remembered
    from kg.prompt import build_prompt

    draft = draft or view.scene(scene_id)
    graph = DynamicSceneGraph(_path_story(view, scene_id, draft))
    return build_prompt(graph, scene_id), remembered(graph, scene_id)


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


def select_take(folder: Path, scene_id: str, index: int) -> list[str]:
    """Make take ``index`` the scene's selected take; returns stale scene ids."""
    engine_select = _engine_function("select_take")
    if engine_select is not None:
        stale = engine_select(folder, scene_id, index)
        return list(stale)

    def mutate(story: Story) -> list[str]:
        graph = DynamicSceneGraph(story)
        scene = graph.scene(scene_id)
        scene.take(index)  # KeyError names the scene when there is no such take
        if scene.selected_take == index:
            return []
        scene.selected_take = index
        if scene.take(index).status == "done":
            scene.status = "done"
        return mark_stale_descendants(graph, scene_id)

    return edit_story(folder, mutate)


def _engine_function(name: str) -> Callable[..., Any] | None:
    """An engine function by name from wherever the engine keeps it, or None."""
    import importlib

    for module in ("engine.takes", "engine.generate"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        if hasattr(mod, name):
            return getattr(mod, name)
    return None


# Cast ------------------------------------------------------------------------------


def validate_character(data: dict[str, Any]) -> tuple[Character | None, list[Problem]]:
    try:
        return Character.model_validate(data), []
    except ValidationError as exc:
        return None, problems_of(exc)


def validate_environment(
    data: dict[str, Any],
) -> tuple[Environment | None, list[Problem]]:
    try:
        return Environment.model_validate(data), []
    except ValidationError as exc:
        return None, problems_of(exc)


def _upsert(items: list[Any], item: Any) -> None:
    for i, existing in enumerate(items):
        if existing.id == item.id:
            items[i] = item
            return
    items.append(item)


def save_character(folder: Path, character: Character) -> None:
    edit_story(folder, lambda s: _upsert(s.characters, character))


def save_environment(folder: Path, environment: Environment) -> None:
    edit_story(folder, lambda s: _upsert(s.environments, environment))


def delete_character(folder: Path, character_id: str) -> None:
    """Remove a character and its appearances in scenes."""

    def mutate(story: Story) -> None:
        story.characters = [c for c in story.characters if c.id != character_id]
        for scene in story.scenes:
            if character_id in scene.character_ids:
                scene.character_ids = [
                    c for c in scene.character_ids if c != character_id
                ]

    edit_story(folder, mutate)


def delete_environment(folder: Path, environment_id: str) -> None:
    """Remove an environment; scenes set in it lose their environment."""

    def mutate(story: Story) -> None:
        story.environments = [e for e in story.environments if e.id != environment_id]
        for scene in story.scenes:
            if scene.environment_id == environment_id:
                scene.environment_id = None

    edit_story(folder, mutate)


def _check_reference(filename: str, data: bytes) -> tuple[str, str]:
    """(extension, PIL format) of an acceptable image, else `StoryError`.

    The image is decoded completely, so a file whose header is fine but whose
    body is not is refused here, not when the Cast page shows it.
    """
    shown = repr(filename if len(filename) <= 60 else filename[:57] + "...")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in REFERENCE_TYPES:
        raise StoryError(
            f"Reference image {shown}: type .{ext[:10] or '?'} is not accepted; "
            "upload a PNG, JPEG or WebP file"
        )
    if len(data) > MAX_REFERENCE_BYTES:
        raise StoryError(
            f"Reference image {shown}: {len(data) / 1e6:.1f} MB is over the "
            f"{MAX_REFERENCE_BYTES // (1024 * 1024)} MB limit; upload a smaller image"
        )
    fmt = _decode_image(shown, data)
    if fmt != REFERENCE_TYPES[ext]:
        raise StoryError(
            f"Reference image {shown}: the file is {fmt}, not "
            f"{REFERENCE_TYPES[ext]} as its name says; rename or re-export it"
        )
    return ext, fmt


def _decode_image(shown: str, data: bytes) -> str:
    """Decode every pixel of an uploaded image; its PIL format, else `StoryError`."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                width, height = img.size
                if width * height > MAX_REFERENCE_PIXELS:
                    raise StoryError(
                        f"Reference image {shown}: {width} x {height} pixels is "
                        f"over the {MAX_REFERENCE_PIXELS // 1_000_000} megapixel "
                        "limit; upload a smaller image"
                    )
                img.verify()  # checksums (PNG chunks) before decoding
            with Image.open(io.BytesIO(data)) as img:
                img.load()  # every pixel: a truncated or corrupt body fails here
    except StoryError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise StoryError(
            f"Reference image {shown}: too many pixels to decode safely; upload a "
            "smaller image"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means unreadable
        raise StoryError(
            f"Reference image {shown}: not a readable image "
            f"({type(exc).__name__}: {str(exc)[:120]}); upload a PNG, JPEG or "
            "WebP file"
        ) from None
    return fmt


def reference_thumbnail(path: Path, size: int = 240) -> Any | None:
    """A small RGB copy of a stored reference image; None when it cannot be read."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.size[0] * img.size[1] > MAX_REFERENCE_PIXELS:
                    return None
                img.thumbnail((size, size))
                return img.convert("RGB")
    except Exception:  # noqa: BLE001 - whatever is wrong with it, it is not shown
        log.warning("reference image %s cannot be decoded", path)
        return None


def add_reference_image(
    folder: Path, character_id: str, filename: str, data: bytes
) -> str:
    """Store an uploaded reference image; returns its path in the story folder."""
    ext, _ = _check_reference(filename, data)
    stem = slugify(filename.rsplit(".", 1)[0])
    rel_dir = references_dir(character_id)
    target_dir = make_folder(folder, rel_dir)
    name, n = f"{stem}.{ext}", 1
    while True:
        try:
            # "x": never overwrites, never writes through a planted link
            with open(target_dir / name, "xb") as fh:
                fh.write(data)
            break
        except FileExistsError:
            n += 1
            name = f"{stem}-{n}.{ext}"
    rel = f"{rel_dir}/{name}"

    def mutate(story: Story) -> None:
        c = story.character(character_id)
        c.reference_images = [*c.reference_images, rel]

    edit_story(folder, mutate)
    return rel


def remove_reference_image(folder: Path, character_id: str, rel: str) -> None:
    def mutate(story: Story) -> None:
        c = story.character(character_id)
        c.reference_images = [r for r in c.reference_images if r != rel]

    edit_story(folder, mutate)


def dataset_folder(folder: Path, rel: str) -> Path:
    """Where a dataset of the story goes; `UnsafePathError` through a link."""
    return inside(folder, rel)


def resolve_asset(folder: Path, rel: str | None) -> Path | None:
    """Absolute path of a stored asset when it exists, else None."""
    if not rel:
        return None
    try:
        path = _resolve_asset(folder, rel)
    except StoryError:
        return None
    return path if path.exists() else None


# Settings --------------------------------------------------------------------------


def validate_settings(values: dict[str, Any]) -> tuple[Settings | None, list[Problem]]:
    """Settings from the form's values, or the problems naming each field."""
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        return None, problems_of(exc)
    problems: list[Problem] = []
    if settings.backend not in available_backends():
        problems.append(
            (
                "backend",
                f"unknown backend {settings.backend!r}; choose one of "
                f"{available_backends()}",
            )
        )
    if settings.backend == "ltx":
        for name in ("width", "height"):
            value = getattr(settings, name)
            if value % 32:
                problems.append(
                    (
                        name,
                        f"LTX-Video needs a multiple of 32, got {value}; "
                        f"try {max(32, round(value / 32) * 32)}",
                    )
                )
    return (None, problems) if problems else (settings, [])


def save_settings(folder: Path, settings: Settings) -> None:
    def mutate(story: Story) -> None:
        story.settings = settings

    edit_story(folder, mutate)


def available_backends() -> list[str]:
    from engine.backend import available_backends as engine_backends

    return engine_backends()


# Generation ------------------------------------------------------------------------

_STARTED: set[str] = set()
SCORE_FIELDS = (
    "clip_score",
    "subject_consistency",
    "background_consistency",
    "temporal_flicker",
    "seam_dino_cosine",
    "seam_pixel_mae",
)


@dataclass(frozen=True)
class JobSnapshot:
    """What the story's worker is doing, as the pages show it."""

    running: bool
    current: str | None = None
    step: int = 0
    total_steps: int = 0
    eta_s: float | None = None
    queued: tuple[str, ...] = ()
    finished: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    last_error: str | None = None

    @property
    def busy(self) -> bool:
        return self.running or bool(self.queued)


def _first(status: Any, names: tuple[str, ...], default: Any) -> Any:
    for name in names:
        value = getattr(status, name, None)
        if value is not None:
            return value
    return default


def _snapshot(status: Any) -> JobSnapshot:
    """The runner's frozen status read into a `JobSnapshot`."""
    return JobSnapshot(
        running=bool(_first(status, ("running",), False)),
        current=_first(status, ("current_scene", "current"), None),
        step=int(_first(status, ("step",), 0)),
        total_steps=int(_first(status, ("total_steps", "total"), 0)),
        eta_s=_first(status, ("eta_s", "eta"), None),
        queued=tuple(_first(status, ("queued", "queued_ids"), ())),
        finished=tuple(_first(status, ("finished", "finished_ids", "done"), ())),
        failed=tuple(_first(status, ("failed", "failed_ids"), ())),
        last_error=_first(status, ("last_error", "error"), None),
    )


@st.cache_resource(show_spinner=False)
def _make_runner(story_dir: str) -> Any:
    """One runner per story folder and process, shared by every session."""
    from studio.wiring import make_runner  # imports torch: only when generating

    return make_runner(Path(story_dir))


def job_runner(folder: Path) -> Any:
    """The one `JobRunner` of this story in this process (created on first use)."""
    key = str(Path(folder).resolve())
    runner = _make_runner(key)
    _STARTED.add(key)
    return runner


def job_status(folder: Path) -> JobSnapshot | None:
    """The worker's status, or None when nothing ran for this story here."""
    key = str(Path(folder).resolve())
    if key not in _STARTED:
        return None
    return _snapshot(job_runner(folder).status())


def submit_generation(
    folder: Path, scene_ids: Iterable[str], *, force: bool = False
) -> list[str]:
    """Queue scenes on the story's worker; returns the ids queued."""
    ids = list(scene_ids)
    if not ids:
        return []
    job_runner(folder).submit(ids, force=force)
    return ids


def cancel_generation(folder: Path) -> None:
    key = str(Path(folder).resolve())
    if key in _STARTED:
        job_runner(folder).cancel()


def recover_interrupted(folder: Path) -> list[str]:
    """Scenes a stopped process left generating become ``interrupted``.

    Does nothing while a worker (here or in another process) holds the story.
    """
    from engine.runner import recover_interrupted as engine_recover

    try:
        return list(engine_recover(folder))
    except StoryError as exc:  # locked by a long save: try again next time
        log.warning("could not check %s for interrupted scenes: %s", folder, exc)
        return []


def generating_elsewhere(folder: Path) -> bool:
    """Whether another process (e.g. ``storygraph run``) is generating this story.

    It holds the story's run lock (``engine.runlock``) while it generates; the
    lock goes with the process, so a scene left ``generating`` by a process
    that died reads False here. The check takes the free lock for an instant.
    Light: imports no torch.
    """
    from engine.runlock import RunLockedError, held_here, hold_run

    if held_here(folder):
        return False
    try:
        with hold_run(folder):
            return False
    except RunLockedError:
        return True


def wait_for_jobs(folder: Path, timeout: float | None = None) -> bool:
    """Block until the worker is idle (for tests and the CLI, never pages)."""
    key = str(Path(folder).resolve())
    if key not in _STARTED:
        return True
    return bool(job_runner(folder).wait(timeout))
