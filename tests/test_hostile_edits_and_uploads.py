"""Edits while a scene generates, hostile uploads, and two runs racing."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from engine.backend import VideoBackend, get_backend
from engine.generate import generate_scene
from kg.errors import StoryError
from kg.example import example_story
from kg.store import load_story, save_story, update_story
from studio import services

ROOT = Path(__file__).resolve().parents[1]


def _small_story(story_dir: Path) -> Path:
    story = example_story()
    story.settings.width, story.settings.height, story.settings.fps = 96, 64, 8
    save_story(story, story_dir)
    return story_dir


class EditingBackend(VideoBackend):
    """The animatic, with a user saving an edit of the scene mid-generation."""

    def __init__(self, story_dir: Path, edit) -> None:  # noqa: ANN001
        self.inner = get_backend("animatic")
        self.story_dir = story_dir
        self.edit = edit

    def generate(self, request, progress, cancel):  # noqa: ANN001, ANN201
        update_story(self.story_dir, self.edit)
        return self.inner.generate(request, progress, cancel)


def test_an_edit_saved_while_generating_leaves_the_scene_stale(tmp_path: Path) -> None:
    story_dir = _small_story(tmp_path)

    def retitle(story) -> None:  # noqa: ANN001
        story.scene("arrival").motion = "Mara runs along the quay instead"

    backend = EditingBackend(story_dir, retitle)
    take = generate_scene(story_dir, "arrival", backend=backend)
    assert take.status == "done"
    assert "steps off a ferry" in take.params.prompt  # made from the old text
    scene = load_story(story_dir).scene("arrival")
    assert scene.status == "stale", "the take no longer matches the saved scene"
    assert scene.selected_take == take.index


def test_an_unrelated_save_while_generating_keeps_the_scene_done(
    tmp_path: Path,
) -> None:
    story_dir = _small_story(tmp_path)

    def other_scene(story) -> None:  # noqa: ANN001
        story.scene("dawn").pose = "Mara sits on the quay"

    take = generate_scene(
        story_dir, "arrival", backend=EditingBackend(story_dir, other_scene)
    )
    assert load_story(story_dir).scene("arrival").status == "done"
    assert take.status == "done"


def _png(size: tuple[int, int] = (16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "teal").save(buf, format="PNG")
    return buf.getvalue()


def test_corrupt_png_body_is_refused_before_it_is_stored(tmp_path: Path) -> None:
    story_dir = _small_story(tmp_path)
    good = _png((64, 64))
    # header and IHDR intact, image data scrambled (verify() alone passes some)
    idat = good.index(b"IDAT") + 8
    broken = good[:idat] + bytes(64) + good[idat + 64 :]
    truncated = good[: len(good) // 2]
    for data in (broken, truncated):
        with pytest.raises(StoryError, match="not a readable image"):
            services.add_reference_image(story_dir, "mara", "face.png", data)
    assert load_story(story_dir).character("mara").reference_images == []
    assert not (story_dir / "references" / "mara").exists() or not any(
        (story_dir / "references" / "mara").iterdir()
    )


def test_decompression_bomb_is_refused_with_a_message(tmp_path: Path) -> None:
    story_dir = _small_story(tmp_path)
    buf = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buf, format="PNG")  # 400 MP, ~50 KB
    with pytest.raises(StoryError, match="megapixel|too many pixels"):
        services.add_reference_image(story_dir, "mara", "bomb.png", buf.getvalue())


def test_a_stored_unreadable_reference_does_not_break_the_cast_page(
    tmp_path: Path,
) -> None:
    story_dir = _small_story(tmp_path)
    rel = services.add_reference_image(story_dir, "mara", "face.png", _png())
    (story_dir / rel).write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    assert services.reference_thumbnail(story_dir / rel) is None


def test_two_runs_racing_one_gets_the_run_lock_message(tmp_path: Path) -> None:
    """Started together, each run either generates or says another one does."""
    story_dir = _small_story(tmp_path)
    command = [
        sys.executable,
        "-m",
        "studio.cli",
        "run",
        str(story_dir),
        "--no-score",
        "--scenes",
        "arrival,meeting",
        "--force",
    ]
    for _ in range(2):
        procs = [
            subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [(p.communicate(timeout=300)[0], p.returncode) for p in procs]
        for output, code in outputs:
            assert "Traceback" not in output, output
            assert code == 0 or (
                code == 1 and "another process is generating" in output
            ), output
        assert load_story(story_dir).scene("meeting").status == "done"
