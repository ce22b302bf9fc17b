"""Links inside a story folder never reach outside it.

Every entry point that reads, writes, deletes or copies story files gets a
story with a link planted where it looks, pointing at a folder outside the
story that holds canary files. The entry point refuses (a `StoryError` or a
clean exit with a message) and the canaries are untouched afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.dataset import ExportOptions, export_dataset
from engine.generate import generate_scene
from engine.recovery import recover_interrupted
from engine.runlock import hold_run
from kg.errors import StoryError, UnsafePathError
from kg.example import example_story
from kg.paths import inside, read_regular_file, walk_files
from kg.store import load_story, save_story, story_lock
from studio.cli import app
from tests.conftest import generate_small_example

runner = CliRunner()

CANARIES = {
    ".secret.partial-dead.mp4": b"looks like a temporary take",
    "notes.txt": b"keep me",
    "kg_state.json": b'{"not": "this story"}',
}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    for name, data in CANARIES.items():
        (folder / name).write_bytes(data)
    return folder


def _canaries_intact(outside: Path) -> None:
    names = sorted(p.name for p in outside.iterdir())
    assert names == sorted(CANARIES), f"files appeared or vanished: {names}"
    for name, data in CANARIES.items():
        assert (outside / name).read_bytes() == data, f"{name} was changed"


def _story(tmp_path: Path) -> Path:
    story = example_story()
    story.settings.width, story.settings.height, story.settings.fps = 96, 64, 8
    story_dir = tmp_path / "story"
    save_story(story, story_dir)
    return story_dir


def test_inside_refuses_links_at_any_depth(tmp_path: Path, outside: Path) -> None:
    story_dir = _story(tmp_path)
    (story_dir / "scenes" / "a").mkdir(parents=True)
    os.symlink(outside, story_dir / "scenes" / "a" / "b")
    with pytest.raises(UnsafePathError, match="scenes/a/b .*symbolic link"):
        inside(story_dir, "scenes/a/b/take-1.mp4")
    assert inside(story_dir, "scenes/a/new/take-1.mp4").name == "take-1.mp4"
    assert list(walk_files(story_dir, "scenes")) == []


def test_state_file_link_is_neither_read_nor_written(
    tmp_path: Path, outside: Path
) -> None:
    story_dir = tmp_path / "story"
    story_dir.mkdir()
    os.symlink(outside / "kg_state.json", story_dir / "kg_state.json")
    with pytest.raises(StoryError, match="symbolic link"):
        load_story(story_dir)
    with pytest.raises(StoryError, match="symbolic link"):
        save_story(example_story(), story_dir)
    assert runner.invoke(app, ["validate", str(story_dir)]).exit_code == 2
    _canaries_intact(outside)


def test_lock_file_links_are_refused(tmp_path: Path, outside: Path) -> None:
    story_dir = _story(tmp_path)
    os.unlink(story_dir / ".kg_state.lock")
    os.symlink(outside / "notes.txt", story_dir / ".kg_state.lock")
    with pytest.raises(UnsafePathError), story_lock(story_dir):
        pass
    os.unlink(story_dir / ".kg_state.lock")
    os.symlink(outside / "notes.txt", story_dir / ".run.lock")
    with pytest.raises(UnsafePathError), hold_run(story_dir):
        pass
    _canaries_intact(outside)  # FileLock would have truncated notes.txt


def test_scenes_link_run_and_recovery_delete_nothing_outside(
    tmp_path: Path, outside: Path
) -> None:
    story_dir = _story(tmp_path)
    os.symlink(outside, story_dir / "scenes")
    with pytest.raises(UnsafePathError):
        recover_interrupted(story_dir)
    result = runner.invoke(app, ["run", str(story_dir), "--no-score"])
    assert result.exit_code == 2, result.output
    assert "symbolic link" in result.output
    take = generate_scene(story_dir, "arrival", backend="animatic")
    assert take.status == "failed" and "symbolic link" in (take.error or "")
    _canaries_intact(outside)


def test_dataset_link_makes_export_refuse(tmp_path: Path, outside: Path) -> None:
    story_dir = generate_small_example(tmp_path / "story")
    os.symlink(outside, story_dir / "dataset")
    with pytest.raises(UnsafePathError):
        export_dataset(story_dir, story_dir / "dataset" / "ltx2", ExportOptions())
    result = runner.invoke(app, ["export", str(story_dir), "--format", "ltx2"])
    assert result.exit_code == 2, result.output
    _canaries_intact(outside)


def test_linked_take_files_are_not_read(tmp_path: Path, outside: Path) -> None:
    story_dir = generate_small_example(tmp_path / "story")
    story = load_story(story_dir)
    rel = story.scene("arrival").selected.files.last_frame
    os.unlink(story_dir / rel)
    os.symlink(outside / "notes.txt", story_dir / rel)
    # the next scene's continuity source is a link: it is not read
    take = generate_scene(story_dir, "meeting", backend="animatic", force=True)
    assert take.status == "done"
    assert "link" in take.params.continuity_note or take.params.continuity_used in (
        "none",
        "latent",
    )
    with pytest.raises(UnsafePathError):
        read_regular_file(story_dir / rel, 100)
    _canaries_intact(outside)


def test_duplicate_copies_no_link_and_no_link_target(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio import services

    root = tmp_path / "outputs"
    monkeypatch.setenv(services.OUTPUTS_ENV, str(root))
    story_dir = _story(root)
    os.symlink(outside, story_dir / "scenes")
    os.symlink(outside / "notes.txt", story_dir / "notes.txt")
    copy = services.duplicate_story(story_dir, "copy").folder
    copied = {p.relative_to(copy).as_posix() for p in copy.rglob("*")}
    assert "scenes" not in copied and "notes.txt" not in copied
    assert not any(p.is_symlink() for p in copy.rglob("*"))
    assert load_story(copy).title.endswith("(copy)")
    _canaries_intact(outside)


def test_reference_upload_and_cache_stay_inside(tmp_path: Path, outside: Path) -> None:
    import io

    from PIL import Image

    from studio import services

    story_dir = _story(tmp_path)
    os.symlink(outside, story_dir / "references")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="PNG")
    with pytest.raises(StoryError, match="symbolic link"):
        services.add_reference_image(story_dir, "mara", "face.png", buf.getvalue())
    _canaries_intact(outside)


def test_graph_png_link_is_replaced_not_followed(tmp_path: Path, outside: Path) -> None:
    story_dir = _story(tmp_path)
    os.symlink(outside / "notes.txt", story_dir / "graph.png")
    os.symlink(outside / "notes.txt", story_dir / ".graph.partial-000000.png")
    out = story_dir / "graph.png"
    result = runner.invoke(app, ["graph", str(story_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not out.is_symlink() and out.read_bytes()[:4] == b"\x89PNG"
    _canaries_intact(outside)


def test_stories_page_lists_around_a_broken_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside: Path
) -> None:
    from studio import services

    root = tmp_path / "outputs"
    monkeypatch.setenv(services.OUTPUTS_ENV, str(root))
    _story(root)
    (root / "dangling").mkdir()
    os.symlink(root / "nowhere" / "kg_state.json", root / "dangling" / "kg_state.json")
    (root / "linked").mkdir()
    os.symlink(outside / "kg_state.json", root / "linked" / "kg_state.json")
    entries = {e.slug: e for e in services.list_stories()}
    assert entries["story"].error is None
    assert entries["linked"].error and "symbolic link" in entries["linked"].error
    assert entries["dangling"].error
    _canaries_intact(outside)
