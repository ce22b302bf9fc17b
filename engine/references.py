"""Which reference images condition a scene, read and fitted to its size.

A scene is conditioned on the reference images of its characters (in the
scene's order) and of its environment, first image of each before anyone's
second, up to ``settings.references.max_images``. The backend places them as
keyframes *before* the clip, never as its first frame (a first frame is a
starting image, not an identity; see `engine.backends.ltx.extend`). Their strength is
``settings.references.strength`` where nothing is carried into the scene (a
first scene, after a cut) and the lower ``strength_with_continuity`` where a
predecessor's tail is carried. A scene can switch them off
(``use_references``).

Every file is checked before generation starts: one missing, linked out of
the story, too large or not an image is refused with the file and what to
do, and no take is begun.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.backend import ReferenceImage
from engine.errors import ReferenceFileError
from kg.errors import StoryError
from kg.files import read_image
from kg.paths import read_regular_file, resolve_asset
from kg.schema import SceneNode, Story, UsedReference

__all__ = [
    "MAX_REFERENCE_FILE_BYTES",
    "ReferenceFileError",
    "chosen_references",
    "read_references",
    "used",
]

MAX_REFERENCE_FILE_BYTES = 20 * 1024 * 1024  # a still image, not a video


def chosen_references(
    story: Story, scene_id: str, *, continuous: bool, scene: SceneNode | None = None
) -> list[tuple[str, str, float]]:
    """``(path, entity, strength)`` of the references that condition the scene
    (``scene``, when given, stands for it: an editor's unsaved values)."""
    scene = scene or story.scene(scene_id)
    settings = story.settings.references
    strength = settings.strength_with_continuity if continuous else settings.strength
    if not scene.use_references or strength <= 0:
        return []
    per_entity: list[tuple[str, list[str]]] = []
    characters = {c.id: c for c in story.characters}
    for cid in scene.character_ids:
        if cid in characters and characters[cid].reference_images:
            per_entity.append((cid, list(characters[cid].reference_images)))
    environments = {e.id: e for e in story.environments}
    env = environments.get(scene.environment_id or "")
    if env is not None and env.reference_images:
        per_entity.append((env.id, list(env.reference_images)))
    chosen: list[tuple[str, str, float]] = []
    depth = max((len(paths) for _, paths in per_entity), default=0)
    for i in range(depth):  # round robin: everyone's first image first
        for entity, paths in per_entity:
            if i < len(paths) and len(chosen) < settings.max_images:
                chosen.append((paths[i], entity, strength))
    return chosen


def _fit(data: bytes, width: int, height: int) -> np.ndarray:
    """Decode (its pixel count checked first: `kg.files.read_image`) and crop."""
    from PIL import ImageOps

    fitted = ImageOps.fit(read_image(data, what="the image"), (width, height))
    return np.asarray(fitted, dtype=np.uint8).copy()


def read_references(
    story_dir: str | os.PathLike[str],
    chosen: list[tuple[str, str, float]],
    width: int,
    height: int,
) -> tuple[ReferenceImage, ...]:
    """The chosen images, each cropped to fill ``width`` x ``height``.

    Raises `ReferenceFileError` naming every file that cannot be used.
    """
    root = Path(story_dir)
    images: list[ReferenceImage] = []
    problems: list[str] = []
    for path, entity, strength in chosen:
        where = f"{path} ({entity})"
        try:
            data = read_regular_file(
                resolve_asset(root, path), MAX_REFERENCE_FILE_BYTES
            )
            if len(data) > MAX_REFERENCE_FILE_BYTES:
                problems.append(f"{where}: larger than 20 MB; upload a smaller image")
                continue
            frame = _fit(data, width, height)
        except FileNotFoundError:
            problems.append(f"{where}: the file is missing; upload it again on Cast")
            continue
        except StoryError as exc:
            problems.append(f"{where}: {exc}")
            continue
        except OSError as exc:  # PIL's "cannot identify image file" included
            problems.append(f"{where}: not a readable image ({exc}); replace it")
            continue
        images.append(ReferenceImage(path, entity, frame, strength))
    if problems:
        raise ReferenceFileError(
            f"{len(problems)} reference image(s) cannot be used, so nothing was "
            "generated; fix them on the Cast page or switch references off for "
            "the scene:\n" + "\n".join(f"  {p}" for p in problems)
        )
    return tuple(images)


def used(references: tuple[ReferenceImage, ...]) -> list[UsedReference]:
    """What a take records of its references."""
    return [
        UsedReference(path=r.path, entity=r.entity, strength=r.strength)
        for r in references
    ]
