"""The studio's service layer: stories on disk, edits, previews, caches."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.graph import DynamicSceneGraph
from kg.prompt import build_prompt
from kg.store import load_story
from studio import services


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def example(outputs: Path) -> Path:
    return services.create_story("ex", "", example=True)


def test_check_slug_names_the_problem(outputs: Path) -> None:
    assert services.check_slug("ok-name_1") is None
    assert "lowercase" in services.check_slug("Bad Name")
    assert "lowercase" in services.check_slug("../escape")
    services.create_story("taken", "T")
    assert "is taken" in services.check_slug("taken")
    assert services.slugify("The Storm!") == "the-storm"


def test_list_stories_reports_unreadable_folders(example: Path, outputs: Path) -> None:
    broken = outputs / "broken"
    broken.mkdir()
    (broken / "kg_state.json").write_text('{"schema_version": 1}')
    entries = {e.slug: e for e in services.list_stories()}
    assert entries["ex"].scenes == 6 and entries["ex"].error is None
    assert "title" in entries["broken"].error


def test_import_rejects_non_utf8_and_keeps_nothing(outputs: Path) -> None:
    with pytest.raises(services.StoryValidationError) as exc:
        services.import_story("bin", b"\xff\xfe\x00", "x.json")
    assert exc.value.problems[0][0] == "$"
    assert not (outputs / "bin").exists()


def test_delete_refuses_folders_outside_the_root(
    example: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "kg_state.json").write_text("{}")
    with pytest.raises(services.StoryError, match="not a story folder"):
        services.delete_story(elsewhere)
    assert elsewhere.exists()
    services.delete_story(example)
    assert not example.exists()


def test_last_story_survives_a_new_session(example: Path) -> None:
    assert services.last_story() is None
    services.remember_last_story(example)
    assert services.last_story() == example
    services.delete_story(example)
    assert services.last_story() is None


def test_view_is_cached_until_the_file_changes(example: Path) -> None:
    first = services.story_view(example)
    assert services.story_view(example) is first
    services.save_scene(example, "arrival", {"pose": "waving"})
    second = services.story_view(example)
    assert second is not first and second.scene("arrival").pose == "waving"
    # salience depends on the story's shape, not wording: reused
    assert second.salience is first.salience


def test_preview_matches_the_prompt_of_the_saved_scene(example: Path) -> None:
    view = services.story_view(example)
    graph = DynamicSceneGraph(load_story(example))
    for sid in view.order:
        prompt, _ = services.preview_prompt(view, sid)
        assert prompt.text == build_prompt(graph, sid).text, sid


def test_preview_follows_an_unsaved_draft(example: Path) -> None:
    view = services.story_view(example)
    draft, problems = services.validate_scene(
        view.scene("dawn"), {"motion": "gulls circle the mast"}
    )
    assert not problems
    prompt, memory = services.preview_prompt(view, "dawn", draft)
    assert prompt.text.startswith("Gulls circle the mast")
    assert load_story(example).scene("dawn").motion != "gulls circle the mast"


def test_validate_scene_names_each_field(example: Path) -> None:
    scene = services.story_view(example).scene("arrival")
    model, problems = services.validate_scene(
        scene, {"title": "", "duration_s": 0.0, "seed": -1}
    )
    assert model is None
    assert {field for field, _ in problems} == {"title", "duration_s", "seed"}


def test_editing_a_generated_scene_marks_it_and_descendants_stale(
    example: Path,
) -> None:
    from kg.schema import GenerationParams, Take

    params = GenerationParams(
        backend="animatic",
        prompt="p",
        seed=1,
        steps=1,
        guidance=1.0,
        width=64,
        height=64,
        num_frames=9,
        fps=8,
    )

    def generated(story) -> None:  # noqa: ANN001 - Story
        for sid in ("arrival", "meeting"):
            s = story.scene(sid)
            s.takes, s.selected_take, s.status = (
                [Take(index=1, params=params)],
                1,
                "done",
            )

    services.edit_story(example, generated)
    stale = services.save_scene(example, "arrival", {"motion": "a new beginning"})
    assert stale == ["arrival", "meeting"]
    story = load_story(example)
    assert story.scene("meeting").status == "stale"
    assert services.save_scene(example, "arrival", {"motion": "a new beginning"}) == []


def test_edit_story_refuses_a_broken_story(example: Path) -> None:
    def dangling(story) -> None:  # noqa: ANN001 - Story
        story.scene("arrival").character_ids.append("ghost")

    with pytest.raises(services.StoryValidationError) as exc:
        services.edit_story(example, dangling)
    assert any("ghost" in msg for _, msg in exc.value.problems)
    assert "ghost" not in load_story(example).scene("arrival").character_ids


def test_validate_settings(example: Path) -> None:
    ok, problems = services.validate_settings({"backend": "animatic", "width": 320})
    assert ok is not None and not problems
    bad, problems = services.validate_settings({"backend": "nope", "fps": 0})
    assert bad is None and {f for f, _ in problems} == {"fps"}
    bad, problems = services.validate_settings({"backend": "nope"})
    assert problems[0][0] == "backend" and "animatic" in problems[0][1]


def test_job_status_is_none_before_any_generation(example: Path) -> None:
    assert services.job_status(example) is None
    assert services.wait_for_jobs(example, timeout=0.1)
