"""Cached features of the characters' reference images.

Reference images rarely change while a story grows, so their features are kept
in ``<story>/.cache/references.safetensors``, keyed by the encoder and the
SHA-256 of each image file: an edited image gets a new key and is encoded
again, an unchanged one never is. Entries no longer referenced by the story are
dropped on the next write.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kg.errors import StoryError, UnsafePathError
from kg.files import (
    MAX_IMAGE_BYTES,
    MAX_TENSOR_BYTES,
    read_image,
    read_story_file,
)
from kg.layout import REFERENCE_CACHE
from kg.paths import atomic_path, make_folder, resolve_asset

if TYPE_CHECKING:
    from scoring.encoders import ImageEncoder

__all__ = ["CACHE_FILE", "ReferenceCache", "load_image", "file_digest"]

log = logging.getLogger(__name__)

CACHE_FILE = REFERENCE_CACHE


def file_digest(path: Path) -> str:
    """SHA-256 of an image file's bytes (a regular file: never blocks)."""
    data = read_story_file(path, max_bytes=MAX_IMAGE_BYTES, what="reference image")
    return hashlib.sha256(data).hexdigest()


def load_image(path: Path) -> np.ndarray:
    """An image file as ``[H, W, 3]`` uint8 RGB (`kg.files.read_image`: a bomb
    is refused before decoding, a FIFO never blocks)."""
    image = read_image(path, what="reference image")
    return np.asarray(image, dtype=np.uint8)


def _key(encoder: ImageEncoder, digest: str) -> str:
    return hashlib.sha256(f"{encoder.fingerprint}\0{digest}".encode()).hexdigest()[:40]


class ReferenceCache:
    """Features of reference images for one story folder.

    ``computed`` counts the images encoded (not found in the cache) so far.
    """

    def __init__(self, story_dir: str | os.PathLike[str]) -> None:
        self.story_dir = Path(story_dir)
        self.file = self.story_dir / CACHE_FILE
        self.computed = 0

    def _read(self) -> dict[str, np.ndarray]:
        try:
            if not resolve_asset(self.story_dir, CACHE_FILE).is_file():
                return {}
        except UnsafePathError as exc:  # a linked .cache: not read, not written
            log.warning("ignoring the reference cache: %s", exc)
            return {}
        from safetensors.numpy import load

        try:
            data = read_story_file(self.file, max_bytes=MAX_TENSOR_BYTES)
            return dict(load(data))
        except Exception as exc:  # a damaged cache is rebuilt, never fatal
            log.warning("ignoring unreadable reference cache %s: %s", self.file, exc)
            return {}

    def _write(self, entries: dict[str, np.ndarray]) -> None:
        from safetensors.numpy import save_file

        try:
            make_folder(self.story_dir, CACHE_FILE.rsplit("/", 1)[0])
        except UnsafePathError as exc:
            log.warning("not caching reference features: %s", exc)
            return
        with atomic_path(self.file) as tmp:
            save_file(entries, str(tmp))

    def features(
        self,
        references: Mapping[str, tuple[str, ...]],
        character_ids: list[str],
        encoder: ImageEncoder,
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """Reference features ``[M, D]`` per character, and problems per character.

        ``references`` holds every character's reference images (the cache
        keeps those and drops the rest). A character without reference
        images, or with a missing one, is listed in the problems with what to
        do about it.
        """
        digests: dict[str, str] = {}  # relative path -> digest, whole story
        problems: dict[str, str] = {}
        for character_id, images in references.items():
            for rel in images:
                try:
                    digests[rel] = file_digest(resolve_asset(self.story_dir, rel))
                except (OSError, ValueError, StoryError) as exc:
                    if character_id in character_ids:
                        problems[character_id] = (
                            f"reference image {rel!r} of character {character_id!r} "
                            f"cannot be read ({exc}); fix or remove it in "
                            "reference_images"
                        )
        cached = self._read()
        keep = {_key(encoder, d) for d in digests.values()}
        entries = {k: v for k, v in cached.items() if k in keep}
        out: dict[str, np.ndarray] = {}
        for cid in character_ids:
            images = references.get(cid, ())
            if not images:
                problems.setdefault(
                    cid,
                    f"character {cid!r} has no reference images; add some to "
                    "its reference_images",
                )
                continue
            feats = []
            for rel in images:
                if rel not in digests:
                    continue
                key = _key(encoder, digests[rel])
                if key not in entries:
                    try:
                        image = load_image(resolve_asset(self.story_dir, rel))
                    except (OSError, ValueError, StoryError) as exc:  # not an image
                        problems[cid] = (
                            f"reference image {rel!r} of character {cid!r} is not "
                            f"a readable image ({exc}); replace or remove it"
                        )
                        log.warning("%s", problems[cid])
                        continue
                    entries[key] = encoder.encode_images(image[None])[0].numpy()
                    self.computed += 1
                feats.append(entries[key])
            if feats:
                out[cid] = np.stack(feats)
        if entries.keys() != cached.keys():
            self._write(entries)
        return out, problems
