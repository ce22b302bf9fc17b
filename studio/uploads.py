"""An uploaded file stored under a new name in a story folder.

The name is the upload's own, made safe (`studio.library.slugify`), with
``-2``, ``-3`` ... when taken: the file is opened with ``"x"``, so nothing
is ever overwritten and nothing is written through a planted link. Used by
reference images (Cast) and dialogue tracks (the scene editor).
"""

from __future__ import annotations

from pathlib import Path

from kg.paths import make_folder
from studio.library import slugify

__all__ = ["store_new_file"]


def store_new_file(
    folder: Path, rel_dir: str, filename: str, ext: str, data: bytes
) -> tuple[str, Path]:
    """Write ``data`` as a new file in ``rel_dir`` of the story ``folder``;
    its path relative to the story and on disk."""
    stem = slugify(filename.rsplit(".", 1)[0])
    target_dir = make_folder(folder, rel_dir)
    name, n = f"{stem}.{ext}", 1
    while True:
        try:
            with open(target_dir / name, "xb") as fh:
                fh.write(data)
            break
        except FileExistsError:
            n += 1
            name = f"{stem}-{n}.{ext}"
    return f"{rel_dir}/{name}", target_dir / name
