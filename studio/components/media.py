"""Story files on a page: checked before Streamlit reads them.

Streamlit reads a clip, a sound or an image whole when a page shows it: a
FIFO in its place would block the page for good, a bomb PNG would take the
server's memory. Every story file a page shows goes through here
(`studio.library.media_file` and `frame_image`, built on `kg.files`); one
that fails is replaced by a warning that names it, says what is wrong and
what to do, and the rest of the page is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio import services
from studio.literal import markdown_literal as md

__all__ = ["show_video", "show_audio", "show_image"]


def _problem(container: Any, what: str, exc: Exception) -> None:
    container.warning(f"The {md(what)} cannot be shown: {md(exc)}")


def show_video(container: Any, folder: Path, rel: str | None, what: str) -> bool:
    """Play the clip at ``rel``; False when there is none on disk."""
    try:
        path = services.media_file(folder, rel, what)
    except (services.StoryError, OSError) as exc:
        _problem(container, what, exc)
        return True
    if path is None:
        return False
    container.video(str(path))
    return True


def show_audio(container: Any, folder: Path, rel: str | None, what: str) -> None:
    """Play the sound at ``rel`` (nothing when there is none on disk)."""
    try:
        path = services.media_file(folder, rel, what)
    except (services.StoryError, OSError) as exc:
        _problem(container, what, exc)
        return
    if path is not None:
        container.audio(str(path))


def show_image(
    container: Any, folder: Path, rel: str | None, what: str, caption: str
) -> bool:
    """Show the image at ``rel`` as a thumbnail; False when there is none."""
    try:
        image = services.frame_image(folder, rel, what, 480)
    except (services.StoryError, OSError) as exc:
        _problem(container, what, exc)
        return True
    if image is None:
        return False
    container.image(image, caption=caption)
    return True
