"""Where a story's files live inside its folder (one home for every path).

::

    <story>/kg_state.json                         the story (kg.store)
    <story>/scenes/<scene>/take-<n>.mp4            a take's clip (H.264, yuv420p)
    <story>/scenes/<scene>/take-<n>.first.png      its first frame, lossless
    <story>/scenes/<scene>/take-<n>.last.png       its last frame, lossless
    <story>/scenes/<scene>/take-<n>.latents.safetensors     tail latents (video, audio)
    <story>/scenes/<scene>/take-<n>.wav                     sound (backends with it)
    <story>/scenes/<scene>/take-<n>.embeddings.safetensors  observer features
    <story>/references/<character>/<image>         reference images
    <story>/dataset/<name>/                        exported datasets
    <story>/films/<leaf>-<key>.mp4                 a story line as one film
    <story>/films/<leaf>.<otio|fcpxml|xml|edl>     its edit timelines
    <story>/.cache/references.safetensors          reference features

Every path here is relative to the story folder; `kg.paths` opens them.
"""

from __future__ import annotations

from kg.schema import TakeFiles

__all__ = [
    "SCENES_DIR",
    "REFERENCES_DIR",
    "DATASETS_DIR",
    "REFERENCE_CACHE",
    "take_stem",
    "take_files",
    "references_dir",
    "dataset_dir",
    "FILMS_DIR",
    "film_file",
    "timeline_file",
]

SCENES_DIR = "scenes"
REFERENCES_DIR = "references"
DATASETS_DIR = "dataset"
FILMS_DIR = "films"
REFERENCE_CACHE = ".cache/references.safetensors"


def take_stem(scene_id: str, index: int) -> str:
    """``scenes/<scene_id>/take-<n>``, relative to the story folder."""
    return f"{SCENES_DIR}/{scene_id}/take-{index}"


def take_files(scene_id: str, index: int) -> TakeFiles:
    """Every file path a take may have (relative); not all of them get written.

    Examples
    --------
    >>> take_files("arrival", 2).video
    'scenes/arrival/take-2.mp4'
    >>> take_files("arrival", 2).embeddings
    'scenes/arrival/take-2.embeddings.safetensors'
    """
    stem = take_stem(scene_id, index)
    return TakeFiles(
        video=f"{stem}.mp4",
        audio=f"{stem}.wav",
        first_frame=f"{stem}.first.png",
        last_frame=f"{stem}.last.png",
        tail_latents=f"{stem}.latents.safetensors",
        embeddings=f"{stem}.embeddings.safetensors",
    )


def references_dir(character_id: str) -> str:
    """``references/<character_id>``: where a character's uploads are stored."""
    return f"{REFERENCES_DIR}/{character_id}"


def dataset_dir(name: str) -> str:
    """``dataset/<name>``: the default folder of an exported dataset."""
    return f"{DATASETS_DIR}/{name}"


def film_file(leaf: str, key: str) -> str:
    """``films/<leaf>-<key>.mp4``: the film of the line ending at ``leaf``.

    ``key`` is the content key of its takes, so an unchanged line finds its
    film again and a changed one never overwrites a film being played.

    >>> film_file("dawn", "1a2b3c4d5e6f")
    'films/dawn-1a2b3c4d5e6f.mp4'
    """
    return f"{FILMS_DIR}/{leaf}-{key}.mp4"


def timeline_file(leaf: str, suffix: str) -> str:
    """``films/<leaf><suffix>``: a timeline of that line (``.otio``, ``.edl``...)."""
    return f"{FILMS_DIR}/{leaf}{suffix}"
