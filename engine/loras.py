"""Which LoRAs a scene is made with, each checked before any take begins.

A scene's stack is the story's LoRAs (Settings), then those of its
characters (Cast, in the scene's order), then its own; a file named twice
keeps its first place and the most specific weight (the scene's over a
character's over the story's). A file is either an absolute path (a model
file outside the story, like a GGUF transformer) or a path relative to the
story folder, which must stay inside it (`kg.paths`: no ``..``, no links).

Every file is checked before generation starts, reading its safetensors
header only (`engine.models.read_safetensors_header`; a LoRA is never read
with pickle): one missing, not a regular file, not a safetensors file or
without LoRA tensors (``lora_A``/``lora_B``, ``lora_down``/``lora_up``) is
refused with the file and what to do, and no take is begun. Whether the
LoRA fits the model's architecture is the backend's check
(`engine.backend.VideoBackend.check_loras`), also before the take begins.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from engine.backend import LoraFile
from engine.errors import CheckpointMismatchError
from engine.models import read_safetensors_header
from kg.errors import StoryError
from kg.files import check_story_file
from kg.paths import file_kind, resolve_asset
from kg.schema import SceneNode, Story
from kg.settings import LoraRef, lora_is_outside

__all__ = ["LoraFileError", "MAX_LORA_BYTES", "chosen_loras", "read_loras", "lora_key"]

# The makers' distilled LoRA for the 19B model (rank 384) is about 7 GB.
MAX_LORA_BYTES = 32 * 1024**3


class LoraFileError(StoryError):
    """A LoRA of the stack cannot be used; the message names every such file."""


def chosen_loras(
    story: Story, scene_id: str, scene: SceneNode | None = None
) -> list[tuple[LoraRef, str]]:
    """``(LoRA, where it comes from)`` of the scene's stack, in order (see the
    module docstring); ``scene`` stands for it when given (unsaved values)."""
    scene = scene or story.scene(scene_id)
    layers: list[tuple[list[LoraRef], str]] = [(story.settings.loras, "story")]
    characters = {c.id: c for c in story.characters}
    for cid in scene.character_ids:
        if cid in characters:
            layers.append((characters[cid].loras, f"character {cid}"))
    layers.append((scene.loras, f"scene {scene.id}"))
    stack: dict[str, tuple[LoraRef, str]] = {}
    for loras, scope in layers:
        for lora in loras:
            # a file named again keeps its place and takes the later weight
            stack[lora.file] = (lora, scope)
    return list(stack.values())


def _found(story_dir: Path, lora: LoraRef) -> tuple[Path, os.stat_result]:
    """Where the file is and its ``stat``: a file outside the story may be a
    link (the Hugging Face cache links its files); inside, links are refused
    (`kg.files.check_story_file`)."""
    if not lora_is_outside(lora.file):
        path = resolve_asset(story_dir, lora.file)
        return path, check_story_file(path, max_bytes=MAX_LORA_BYTES, what="LoRA")
    path = Path(lora.file).expanduser()
    info = path.stat()  # FileNotFoundError passes through
    if not stat.S_ISREG(info.st_mode):
        raise StoryError(f"{file_kind(info.st_mode)}, not a regular file")
    if info.st_size > MAX_LORA_BYTES:
        raise StoryError(f"{info.st_size / 1024**3:.0f} GB: too large for a LoRA")
    return path, info


def _header_digest(path: Path, info: os.stat_result) -> tuple[dict, str]:
    shapes, metadata = read_safetensors_header(path)
    text = json.dumps([shapes, metadata], sort_keys=True)
    stamp = f"{info.st_size}:{info.st_mtime_ns}:"
    return shapes, hashlib.sha256((stamp + text).encode()).hexdigest()


def _is_lora_key(key: str) -> bool:
    return any(
        part in key for part in ("lora_A", "lora_B", "lora_down", "lora_up", "lora.")
    )


def read_loras(
    story_dir: str | os.PathLike[str], chosen: list[tuple[LoraRef, str]]
) -> tuple[LoraFile, ...]:
    """The chosen LoRAs found and checked (header only).

    Raises `LoraFileError` naming every file that cannot be used.
    """
    root = Path(story_dir)
    found: list[LoraFile] = []
    problems: list[str] = []
    for lora, scope in chosen:
        where = f"{lora.file} ({scope})"
        try:
            path, info = _found(root, lora)
            shapes, digest = _header_digest(path, info)
        except FileNotFoundError:
            problems.append(
                f"{where}: the file is missing; put it there or remove the LoRA"
            )
            continue
        except StoryError as exc:
            problems.append(f"{where}: {exc}")
            continue
        except (CheckpointMismatchError, ValueError, KeyError, TypeError) as exc:
            problems.append(
                f"{where}: not a safetensors file ({exc}); a LoRA is read from "
                ".safetensors only: convert it or remove it"
            )
            continue
        except OSError as exc:
            problems.append(f"{where}: cannot be read ({exc.strerror or exc})")
            continue
        if not any(_is_lora_key(k) for k in shapes):
            problems.append(
                f"{where}: holds no LoRA weights (no lora_A/lora_B tensors): a "
                "full checkpoint or another kind of file; remove it from the stack"
            )
            continue
        found.append(
            LoraFile(
                path=lora.file,
                file=str(path),
                weight=lora.weight,
                scope=scope,
                in_context=lora.in_context,
                digest=digest,
            )
        )
    if problems:
        raise LoraFileError(
            f"{len(problems)} LoRA file(s) cannot be used, so nothing was "
            "generated; fix them on the Cast or Settings page:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    return tuple(found)


def lora_key(loras: tuple[LoraFile, ...]) -> list[list[object]]:
    """What the take cache key holds of a stack: file, weight, in-context
    use and the file's digest (its header, size and modification time)."""
    return [[x.path, x.weight, x.in_context, x.digest] for x in loras]
