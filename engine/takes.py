"""Takes: every generation of a scene, where its files live, and which is selected.

A take's files sit beside each other in the story folder (`kg.layout`).
Paths stored in a `Take` are relative to the story folder. Selecting another
take of a scene changes what its continuous successors start from, so they are
marked ``stale``, unless the two takes hold the same content (the clip and
tail latents hash alike): then nothing downstream changes. All state changes
go through `kg.store.update_story`.

A new take of a scene gets a new seed by the story's ``new_take_seed``
setting, as ComfyUI's "control after generate": ``increment`` (one past the
highest seed the scene's takes used), ``random`` (a fresh 32-bit seed none of
them used) or ``fixed`` (the scene's own seed; an identical take is then
found again, not made twice).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from pathlib import Path

from kg.graph import DynamicSceneGraph, mark_stale_descendants
from kg.paths import resolve_asset
from kg.schema import SceneNode, Story, Take
from kg.store import update_story

__all__ = [
    "SEED_SPACE",
    "next_take_index",
    "used_seeds",
    "new_take_seed",
    "candidate_seeds",
    "seed_note",
    "find_cached_take",
    "take_is_complete",
    "content_digest",
    "select_take",
    "apply_selection",
]

SEED_SPACE = 2**32  # seeds are 32-bit, as torch.Generator.manual_seed wraps them


def used_seeds(scene: SceneNode) -> set[int]:
    """Every seed a take of ``scene`` was made with (failed takes included)."""
    return {t.params.seed for t in scene.takes}


def _random_seed(taken: set[int]) -> int:
    while (seed := secrets.randbelow(SEED_SPACE)) in taken:
        pass
    return seed


def new_take_seed(scene: SceneNode, policy: str) -> int:
    """The seed of a new take of ``scene`` under ``policy`` (see the module).

    >>> from kg.schema import SceneNode
    >>> s = SceneNode(id="a", title="A", seed=7)
    >>> new_take_seed(s, "increment"), new_take_seed(s, "fixed")
    (7, 7)
    """
    taken = used_seeds(scene)
    if policy == "fixed" or not taken:
        return scene.seed
    if policy == "random":
        return _random_seed(taken)
    if policy != "increment":
        raise ValueError(
            f"new_take_seed must be increment, random or fixed, got {policy!r}"
        )
    return (max(taken | {scene.seed}) + 1) % SEED_SPACE


def candidate_seeds(scene: SceneNode, n: int, policy: str) -> list[int]:
    """Seeds of ``n`` best-of-N candidates: after the seeds the scene used
    (random ones with ``random``), never one it used already.

    >>> from kg.schema import SceneNode
    >>> candidate_seeds(SceneNode(id="a", title="A", seed=7), 3, "increment")
    [7, 8, 9]
    """
    taken = used_seeds(scene)
    seeds: list[int] = []
    if policy == "random" and taken:
        for _ in range(n):
            seeds.append(_random_seed(taken | set(seeds)))
        return seeds
    start = (max(taken | {scene.seed}) + 1) if taken else scene.seed
    return [(start + i) % SEED_SPACE for i in range(n)]


def seed_note(scene: SceneNode, policy: str) -> str:
    """What a new take of ``scene`` does with the seed, for a button label.

    >>> from kg.schema import SceneNode
    >>> seed_note(SceneNode(id="a", title="A", seed=7), "random")
    'seed 7'
    """
    if not scene.takes or policy == "fixed":
        return f"seed {scene.seed}"
    if policy == "random":
        return "random seed"
    return f"seed {new_take_seed(scene, policy)}"


def next_take_index(scene: SceneNode) -> int:
    """One more than the highest take index (takes are never renumbered)."""
    return max((t.index for t in scene.takes), default=0) + 1


def take_is_complete(story_dir: str | os.PathLike[str], take: Take) -> bool:
    """A done take whose clip and last frame exist on disk."""
    if take.status != "done" or not take.files.video or not take.files.last_frame:
        return False
    return all(
        resolve_asset(story_dir, rel).is_file()
        for rel in (take.files.video, take.files.last_frame)
    )


def find_cached_take(
    story_dir: str | os.PathLike[str], scene: SceneNode, cache_key: str
) -> Take | None:
    """The newest complete take of ``scene`` made from the same content hash."""
    if not cache_key:
        return None
    for take in sorted(scene.takes, key=lambda t: t.index, reverse=True):
        if take.params.cache_key == cache_key and take_is_complete(story_dir, take):
            return take
    return None


_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256
_DIGESTS_LOCK = threading.Lock()


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _DIGESTS_LOCK:
        known = _DIGESTS.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    with _DIGESTS_LOCK:
        if len(_DIGESTS) > 4096:
            _DIGESTS.clear()
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def content_digest(story_dir: str | os.PathLike[str], take: Take) -> str | None:
    """A sha256 of what successors continue from: the take's clip (picture and
    sound) and its tail latents. None when the clip cannot be read."""
    if not take.files.video:
        return None
    parts = []
    for rel in (take.files.video, take.files.tail_latents):
        if not rel:
            parts.append("-")
            continue
        try:
            parts.append(_file_digest(resolve_asset(story_dir, rel)))
        except (OSError, ValueError):
            if rel == take.files.video:
                return None
            parts.append("?")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _same_content(
    story_dir: str | os.PathLike[str] | None, scene: SceneNode, a: int, b: int
) -> bool:
    if story_dir is None:
        return False
    try:
        first, second = scene.take(a), scene.take(b)
    except KeyError:
        return False
    digest = content_digest(story_dir, first)
    return digest is not None and digest == content_digest(story_dir, second)


def apply_selection(
    story: Story,
    scene_id: str,
    index: int,
    story_dir: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Select a done take in an in-memory story; returns the ids marked stale.

    The scene becomes ``done``. When the selection changes, generated scenes
    that continue from this one are marked ``stale``; given ``story_dir``,
    only when the newly selected take's content differs from the previous
    one's (`content_digest`): a take with the same pixels changes nothing
    downstream.
    """
    scene = story.scene(scene_id)
    take = scene.take(index)
    if take.status != "done":
        raise ValueError(
            f"take {index} of scene {scene_id!r} is {take.status}, not done; "
            "select a take that finished"
        )
    before = scene.selected_take
    changed = before != index
    scene.selected_take = index
    scene.status = "done"
    if not changed:
        return []
    if before is not None and _same_content(story_dir, scene, before, index):
        return []
    return mark_stale_descendants(DynamicSceneGraph(story), scene_id)


def select_take(
    story_dir: str | os.PathLike[str], scene_id: str, index: int
) -> list[str]:
    """Select take ``index`` of a scene and save; returns the ids marked stale.

    Raises ``KeyError`` for an unknown scene or take and ``ValueError`` for a
    take that did not finish.
    """
    return update_story(
        Path(story_dir),
        lambda story: apply_selection(story, scene_id, index, story_dir),
    )
