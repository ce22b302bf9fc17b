"""Persistence: round trips, validation paths, locking, conflicts, path safety."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import pytest

from kg.errors import StoryConflictError, StoryValidationError, UnsafePathError
from kg.example import example_story
from kg.paths import resolve_asset
from kg.schema import SceneNode, Take
from kg.store import (
    BACKUP_FILE,
    MIGRATIONS,
    STATE_FILE,
    dump_story,
    load_story,
    parse_story,
    save_story,
    update_story,
)


def test_example_round_trip_is_byte_stable(tmp_path: Path) -> None:
    story = example_story()
    assert save_story(story, tmp_path) is True
    first = (tmp_path / STATE_FILE).read_bytes()
    loaded = load_story(tmp_path)
    assert loaded == story
    # Re-saving an unchanged story writes nothing and keeps the same bytes.
    assert save_story(loaded, tmp_path) is False
    assert (tmp_path / STATE_FILE).read_bytes() == first
    assert dump_story(load_story(tmp_path)).encode() == first


def test_save_keeps_previous_version_as_backup(tmp_path: Path) -> None:
    story = example_story()
    save_story(story, tmp_path)
    story.title = "Second"
    save_story(story, tmp_path)
    assert load_story(tmp_path / BACKUP_FILE).title == example_story().title
    assert load_story(tmp_path).title == "Second"
    assert story.revision == 2


def test_save_over_newer_revision_is_refused(tmp_path: Path) -> None:
    save_story(example_story(), tmp_path)
    mine = load_story(tmp_path)
    theirs = load_story(tmp_path)
    theirs.title = "Theirs"
    save_story(theirs, tmp_path)
    mine.title = "Mine"
    with pytest.raises(StoryConflictError, match="changed since it was loaded"):
        save_story(mine, tmp_path)
    assert load_story(tmp_path).title == "Theirs"


def test_update_story_merges_onto_newest_revision(tmp_path: Path) -> None:
    save_story(example_story(), tmp_path)
    stale = load_story(tmp_path)
    update_story(tmp_path, lambda s: setattr(s, "description", "edited"))
    update_story(tmp_path, lambda s: setattr(s, "title", "Retitled"))
    result = load_story(tmp_path)
    assert (result.title, result.description) == ("Retitled", "edited")
    assert result.revision == stale.revision + 2


def _hammer(path: str, n: int) -> None:
    def bump(story):  # noqa: ANN001, ANN202
        story.description = str(int(story.description or "0") + 1)

    for _ in range(n):
        update_story(path, bump)


def test_two_processes_lose_no_update(tmp_path: Path) -> None:
    story = example_story()
    story.description = "0"
    save_story(story, tmp_path)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), 40)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert load_story(tmp_path).description == "80"


def test_validation_errors_name_json_paths() -> None:
    doc = json.loads(dump_story(example_story()))
    doc["scenes"][2]["camera"] = "spin"
    doc["scenes"][0]["colour"] = "red"
    del doc["characters"][1]["name"]
    doc["settings"]["fps"] = "fast"
    with pytest.raises(StoryValidationError) as info:
        parse_story(json.dumps(doc))
    paths = {p for p, _ in info.value.problems}
    assert {
        "scenes[2].camera",
        "scenes[0].colour",
        "characters[1].name",
        "settings.fps",
    } <= paths
    messages = dict(info.value.problems)
    assert "unknown field" in messages["scenes[0].colour"]
    assert "required" in messages["characters[1].name"]


def test_reference_problems_name_paths() -> None:
    doc = json.loads(dump_story(example_story()))
    doc["scenes"][1]["character_ids"].append("ghost")
    doc["edges"].append({"source": "dawn", "target": "arrival"})
    with pytest.raises(StoryValidationError) as info:
        parse_story(json.dumps(doc))
    paths = [p for p, _ in info.value.problems]
    assert "scenes[1].character_ids" in paths
    doc["scenes"][1]["character_ids"].remove("ghost")
    with pytest.raises(StoryValidationError) as info:
        parse_story(json.dumps(doc))
    assert info.value.problems[0][0] == "edges"
    assert "loops back" in info.value.problems[0][1]


def test_invalid_json_and_wrong_root() -> None:
    with pytest.raises(StoryValidationError, match="not valid JSON"):
        parse_story('{"title": ')
    with pytest.raises(StoryValidationError, match="JSON object"):
        parse_story("[1, 2]")


def test_schema_version_newer_and_migration_hook() -> None:
    doc = json.loads(dump_story(example_story()))
    doc["schema_version"] = 99
    with pytest.raises(StoryValidationError, match="newer"):
        parse_story(json.dumps(doc))
    doc["schema_version"] = 0
    doc["name"] = doc.pop("title")  # the imaginary version 0 called it "name"
    MIGRATIONS[0] = lambda d: {
        **{k: v for k, v in d.items() if k != "name"},
        "title": d["name"],
    }
    try:
        assert parse_story(json.dumps(doc)).title == example_story().title
    finally:
        del MIGRATIONS[0]


@pytest.mark.parametrize(
    "bad",
    ["/etc/passwd", "../outside.png", "scenes/../../x.mp4", "C:/x.png", "a\\b.png"],
)
def test_path_traversal_refused_in_state(bad: str) -> None:
    doc = json.loads(dump_story(example_story()))
    doc["characters"][0]["reference_images"] = [bad]
    with pytest.raises(StoryValidationError) as info:
        parse_story(json.dumps(doc))
    assert info.value.problems[0][0] == "characters[0].reference_images[0]"


def test_resolve_asset_refuses_symlink_escape(tmp_path: Path) -> None:
    story_dir = tmp_path / "story"
    story_dir.mkdir()
    (tmp_path / "secret.txt").write_text("x")
    os.symlink(tmp_path / "secret.txt", story_dir / "link.txt")
    assert (
        resolve_asset(story_dir, "scenes/a.mp4") == story_dir.resolve() / "scenes/a.mp4"
    )
    with pytest.raises(UnsafePathError, match="symbolic link"):
        resolve_asset(story_dir, "link.txt")
    with pytest.raises(UnsafePathError):
        resolve_asset(story_dir, "../secret.txt")


def test_take_and_selection_validated() -> None:
    scene = SceneNode(id="s", title="S")
    with pytest.raises(ValueError, match="selected_take"):
        SceneNode(id="s", title="S", selected_take=2)
    assert scene.selected is None
    take = Take.model_validate(
        {
            "index": 1,
            "params": {
                "backend": "animatic",
                "prompt": "p",
                "seed": 1,
                "steps": 1,
                "guidance": 1.0,
                "width": 64,
                "height": 64,
                "num_frames": 9,
                "fps": 8,
            },
        }
    )
    scene = SceneNode(id="s", title="S", takes=[take], selected_take=1)
    assert scene.selected is take


def test_missing_story_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="storygraph new"):
        load_story(tmp_path / "nothing")


def test_unreadable_current_file_is_kept_aside(tmp_path: Path) -> None:
    story = example_story()
    save_story(story, tmp_path)
    story.title = "Second"
    save_story(story, tmp_path)
    (tmp_path / STATE_FILE).write_text("{ garbage")
    with pytest.raises(StoryValidationError, match="previous version is kept"):
        load_story(tmp_path)
    fresh = example_story()
    save_story(fresh, tmp_path)
    assert (tmp_path / f"{STATE_FILE}.unreadable").read_text() == "{ garbage"
    assert load_story(tmp_path).title == fresh.title
