"""AppTest of every studio page: create, open, edit, validate, settings, cast."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from kg.metrics import metric
from kg.store import load_story, save_story, update_story
from studio import services
from studio.testing import app_test, page_test, shown_text
from studio.views.cast import NEW, cast_key
from studio.views.storyboard import SELECTED_KEY, editor_key


@pytest.fixture
def example(outputs: Path) -> Path:
    return services.create_story("lighthouse", "", example=True)


def _cells(at) -> str:  # noqa: ANN001 - AppTest
    """Every cell of every table on the page (grids and static), one per line."""
    frames = [df.value for df in at.dataframe] + [t.value for t in at.table]
    return "\n".join(str(v) for df in frames for v in df.astype(str).to_numpy().ravel())


def _texts(at) -> str:  # noqa: ANN001 - AppTest
    return shown_text(at)


def test_no_pages_folder_beside_the_entry_script() -> None:
    # Streamlit treats it as an old-style multipage app: links straight to a
    # page (/storyboard) show a blank page on a freshly started server.
    from studio.testing import APP_FILE

    assert not (APP_FILE.parent / "pages").exists()


# Stories -------------------------------------------------------------------------


def test_app_creates_example_story_and_opens_storyboard(outputs: Path) -> None:
    at = app_test().run()
    assert not at.exception
    assert at.title[0].value == "StoryGraph Studio"
    at.text_input(key="stories.create.title").input("Storm")
    at.radio(key="stories.create.kind").set_value("Example story")
    at.button(key="FormSubmitter:stories.create-Create story").click().run()
    assert not at.exception
    assert (outputs / "storm" / "kg_state.json").exists()
    assert at.title[0].value == "Storm"  # the storyboard of the new story
    assert at.selectbox(key=SELECTED_KEY).value == "arrival"


def test_stories_lists_opens_and_reopens_after_reload(example: Path) -> None:
    at = page_test("stories").run()
    assert "The Lighthouse Keeper's Daughter" in _texts(at)
    app = app_test().run()
    app.button(key="stories.open.lighthouse").click().run()
    assert not app.exception
    assert app.title[0].value == "The Lighthouse Keeper's Daughter"
    # a new session (a reloaded page) opens the same story again
    fresh = page_test("storyboard").run()
    assert fresh.title[0].value == "The Lighthouse Keeper's Daughter"


def test_import_reports_every_problem_by_path(outputs: Path) -> None:
    bad = {"schema_version": 1, "title": "", "scenes": [{"id": "Bad Id"}]}
    at = page_test("stories").run()
    at.text_input(key="stories.import.slug").input("imported")
    at.session_state["stories.import.file"]  # noqa: B018 - widget exists
    at.file_uploader(key="stories.import.file").upload(
        "broken.json", json.dumps(bad).encode(), "application/json"
    )
    at.button(key="FormSubmitter:stories.import-Import").click().run()
    text = _texts(at)
    assert "broken.json is not a valid story" in text
    assert "`title`" in text and "`scenes[0].id`" in text
    assert not (outputs / "imported").exists()


def test_import_valid_story(outputs: Path, tmp_path: Path) -> None:
    from kg.example import example_story
    from kg.store import dump_story

    at = page_test("stories").run()
    at.file_uploader(key="stories.import.file").upload(
        "kg_state.json", dump_story(example_story()).encode(), "application/json"
    )
    at.text_input(key="stories.import.slug").input("copy-in")
    at.button(key="FormSubmitter:stories.import-Import").click().run()
    assert not at.exception
    assert load_story(outputs / "copy-in").title == example_story().title


def test_duplicate_and_delete_with_confirmation(example: Path, outputs: Path) -> None:
    at = page_test("stories").run()
    at.button(key="stories.dup.lighthouse").click().run()
    at.text_input(key="stories.duplicate.lighthouse.slug").input("second")
    at.button(key="FormSubmitter:stories.duplicate.lighthouse-Duplicate").click().run()
    assert not at.exception
    assert load_story(outputs / "second").title.endswith("(copy)")
    at.button(key="stories.del.second").click().run()
    assert (outputs / "second").exists()  # asks first
    assert "cannot be undone" in _texts(at)
    at.button(key="stories.del_yes.second").click().run()
    assert not (outputs / "second").exists()
    assert (outputs / "lighthouse").exists()


def test_create_rejects_taken_folder(example: Path) -> None:
    at = page_test("stories").run()
    at.text_input(key="stories.create.slug").input("lighthouse")
    at.button(key="FormSubmitter:stories.create-Create story").click().run()
    assert "is taken" in _texts(at)


# Storyboard ------------------------------------------------------------------------


def test_storyboard_edit_preview_and_save(example: Path) -> None:
    at = page_test("storyboard", example).run()
    assert not at.exception
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    at.text_input(key=editor_key("meeting", "motion")).input(
        "the keeper waves a red flag"
    ).run()
    # live preview follows the typed value before saving
    assert any("keeper waves a red flag" in c.value for c in at.code)
    assert load_story(example).scene("meeting").motion != "the keeper waves a red flag"
    at.button(key="storyboard.save").click().run()
    assert not at.exception
    assert load_story(example).scene("meeting").motion == "the keeper waves a red flag"
    assert "Saved meeting" in _texts(at)
    # typing and clicking Save at once (the browser sends both in one rerun)
    at.text_input(key=editor_key("meeting", "pose")).input("arms raised")
    at.button(key="storyboard.save").click().run()
    assert load_story(example).scene("meeting").pose == "arms raised"


def test_optional_choices_show_their_label_and_save_as_none(example: Path) -> None:
    at = page_test("storyboard", example).run()
    weather = at.selectbox(key=editor_key("arrival", "weather"))
    assert weather.index == 0 and weather.options[0] == "environment default"
    env = at.selectbox(key=editor_key("arrival", "environment_id"))
    assert env.options[env.index] == "the harbour"
    env.set_value("")
    weather.set_value("rain")
    at.button(key="storyboard.save").click().run()
    assert not at.exception
    scene = load_story(example).scene("arrival")
    assert (scene.environment_id, scene.weather) == (None, "rain")
    env = at.selectbox(key=editor_key("arrival", "environment_id"))
    assert env.options[env.index] == "— none —"


def test_storyboard_shows_remembered_entities(example: Path) -> None:
    at = page_test("storyboard", example).run()
    at.selectbox(key=SELECTED_KEY).set_value("lamp-room").run()
    assert "Remembered" in _texts(at) and "Mara" in _texts(at)


def test_validation_error_names_field_and_keeps_input(example: Path) -> None:
    at = page_test("storyboard", example).run()
    at.text_input(key=editor_key("arrival", "title")).input("").run()
    at.number_input(key=editor_key("arrival", "seed")).set_value(-5).run()
    at.text_input(key=editor_key("arrival", "motion")).input("a gull lands").run()
    text = _texts(at)
    assert "**title**" in text and "**seed**" in text
    assert at.button(key="storyboard.save").disabled is False
    at.button(key="storyboard.save").click().run()
    assert load_story(example).scene("arrival").title == "Arrival at the harbour"
    # the typed values are all still there
    assert at.text_input(key=editor_key("arrival", "motion")).value == "a gull lands"
    assert at.number_input(key=editor_key("arrival", "seed")).value == -5
    # switching scenes and back keeps the unsaved draft
    at.selectbox(key=SELECTED_KEY).set_value("dawn").run()
    at.selectbox(key=SELECTED_KEY).set_value("arrival").run()
    assert at.text_input(key=editor_key("arrival", "motion")).value == "a gull lands"
    at.text_input(key=editor_key("arrival", "title")).input("Back home").run()
    at.number_input(key=editor_key("arrival", "seed")).set_value(3).run()
    at.button(key="storyboard.save").click().run()
    saved = load_story(example).scene("arrival")
    assert (saved.title, saved.seed, saved.motion) == ("Back home", 3, "a gull lands")


def test_drafts_stay_with_their_story(example: Path, outputs: Path) -> None:
    from studio.session import STORY_KEY

    other = services.create_story("second", "", example=True)
    saved_motion = load_story(other).scene("arrival").motion
    at = page_test("storyboard", example).run()
    motion = editor_key("arrival", "motion")
    at.text_input(key=motion).input("only in the first story").run()
    at.session_state[STORY_KEY] = str(other)  # open the other story, same ids
    at.run()
    assert at.text_input(key=motion).value == saved_motion
    assert "Unsaved edits" not in _texts(at)
    at.session_state[STORY_KEY] = str(example)
    at.run()
    assert at.text_input(key=motion).value == "only in the first story"


def test_edit_survives_a_concurrent_save(example: Path) -> None:
    at = page_test("storyboard", example).run()
    at.text_input(key=editor_key("arrival", "pose")).input("waving").run()

    def worker_change(story) -> None:  # noqa: ANN001 - Story
        story.scene("dawn").status = "failed"

    services.edit_story(example, worker_change)  # the worker saves in between
    at.button(key="storyboard.save").click().run()
    story = load_story(example)
    assert story.scene("arrival").pose == "waving"
    assert story.scene("dawn").status == "failed"


def test_structure_add_branch_connect_delete(example: Path) -> None:
    at = page_test("storyboard", example)
    at.session_state["storyboard.structure_open"] = True  # the panel opened
    at.run()
    at.selectbox(key=SELECTED_KEY).set_value("dawn").run()
    at.button(key="storyboard.add_after").click().run()
    story = load_story(example)
    assert len(story.scenes) == 7
    new_id = at.selectbox(key=SELECTED_KEY).value
    assert any(e.source == "dawn" and e.target == new_id for e in story.edges)
    at.button(key="storyboard.branch").click().run()
    branch_id = at.selectbox(key=SELECTED_KEY).value
    edge = next(e for e in load_story(example).edges if e.target == branch_id)
    assert (edge.source, edge.transition) == (new_id, "cut")
    # a loop is refused with a message
    at.selectbox(key="storyboard.connect_target").set_value("arrival")
    at.button(key="storyboard.connect").click().run()
    assert "loop back" in _texts(at)
    at.button(key="storyboard.delete").click().run()
    assert len(load_story(example).scenes) == 8
    at.button(key="storyboard.delete_yes").click().run()
    assert branch_id not in {s.id for s in load_story(example).scenes}


def test_blank_story_gets_a_first_scene(outputs: Path) -> None:
    folder = services.create_story("blank", "Blank")
    at = page_test("storyboard", folder).run()
    at.button(key="storyboard.add_first").click().run()
    assert not at.exception
    assert [s.id for s in load_story(folder).scenes] == ["scene-1"]


def test_graph_click_selects_a_scene(example: Path) -> None:
    from studio.components import graph

    at = page_test("storyboard", example).run()
    # the component's return value is what a click sends back
    at.session_state["storyboard.graph"] = "climb"
    at.run()
    assert at.selectbox(key=SELECTED_KEY).value == "climb"
    data = graph.graph_data(services.story_view(example), "climb")
    assert {n["id"] for n in data["nodes"]} == {
        s.id for s in load_story(example).scenes
    }
    cut = next(e for e in data["edges"] if e["to"] == "cliff-edge")
    assert cut["dashes"] is True


def _with_takes(folder: Path) -> None:
    """Two done takes on 'climb' and generated descendants (no engine needed)."""
    from kg.schema import GenerationParams, Scores, Take

    def mutate(story) -> None:  # noqa: ANN001
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
        for sid in ("arrival", "meeting", "climb", "lamp-room"):
            s = story.scene(sid)
            s.takes = [
                Take(
                    index=1,
                    params=params,
                    scores=Scores(
                        temporal_flicker=0.9,
                        unavailable={
                            "clip_score": "no CLIP weights; run storygraph models fetch"
                        },
                    ),
                )
            ]
            s.selected_take, s.status = 1, "done"
        story.scene("climb").takes.append(Take(index=2, params=params))

    services.edit_story(folder, mutate)


def test_select_take_shows_stale_descendants(example: Path) -> None:
    _with_takes(example)
    at = page_test("storyboard", example).run()
    at.selectbox(key=SELECTED_KEY).set_value("climb").run()
    text = _texts(at)
    assert "makes stale: lamp-room" in text
    assert f"Unavailable ({metric('clip_score').short}" in text
    cells = _cells(at)
    assert "0.900" in cells  # temporal flicker, the one computed metric
    assert "no CLIP weights" in text  # why the others are missing, under the table
    at.button(key="storyboard.select_take.2").click().run()
    story = load_story(example)
    assert story.scene("climb").selected_take == 2
    assert story.scene("lamp-room").status == "stale"
    assert "stale" in _texts(at) and "lamp-room" in _texts(at)


# Cast ------------------------------------------------------------------------------


def _png(size: tuple[int, int] = (8, 8), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


def test_cast_add_character_and_reference_image(example: Path) -> None:
    at = page_test("cast", example).run()
    assert not at.exception
    at.text_input(key="cast.character.__new__.id").input("gull")
    at.text_input(key="cast.character.__new__.name").input("")
    at.button(key="cast.save.character.__new__").click().run()
    assert "**name**" in _texts(at)
    assert at.text_input(key="cast.character.__new__.id").value == "gull"
    at.text_input(key="cast.character.__new__.name").input("The gull")
    at.button(key="cast.save.character.__new__").click().run()
    assert load_story(example).character("gull").name == "The gull"

    at.file_uploader(key="cast.ref.upload.gull").upload("gull.png", _png(), "image/png")
    at.run()
    at.button(key="cast.ref.store.gull").click().run()
    refs = load_story(example).character("gull").reference_images
    assert refs == ["references/gull/gull.png"]
    assert (example / refs[0]).exists()
    assert len(at.get("image")) == 1  # the thumbnail


def _back_on_page(at, page: str, folder: Path, namespace: str):  # noqa: ANN001, ANN202
    """A later run of ``page`` after visiting another page: the widgets' state
    is gone, the session's other state (the drafts under ``namespace``) kept."""
    back = page_test(page, folder)
    for key in at.session_state:
        if str(key).startswith(namespace):
            back.session_state[key] = at.session_state[key]
    return back.run()


def test_cast_edits_survive_leaving_the_page(example: Path) -> None:
    at = page_test("cast", example).run()
    at.text_input(key=cast_key("character", "mara", "attributes")).input(
        "short grey hair, green coat"
    ).run()
    at.text_input(key=cast_key("character", NEW, "id")).input("gull").run()
    at.text_input(key=cast_key("environment", "harbour", "lighting")).input(
        "neon"
    ).run()
    assert at.button(key="cast.save.character.mara").disabled is False
    at = _back_on_page(at, "cast", example, "cast.")
    assert not at.exception
    assert at.text_input(key=cast_key("character", "mara", "attributes")).value == (
        "short grey hair, green coat"
    )
    assert at.text_input(key=cast_key("character", NEW, "id")).value == "gull"
    assert at.text_input(key=cast_key("environment", "harbour", "lighting")).value == (
        "neon"
    )
    assert load_story(example).character("mara").visual_attributes != [
        "short grey hair",
        "green coat",
    ]
    at.button(key="cast.save.character.mara").click().run()
    assert load_story(example).character("mara").visual_attributes == [
        "short grey hair",
        "green coat",
    ]
    assert "Saved character Mara" in _texts(at)
    assert at.button(key="cast.revert.character.mara").disabled is True
    at.button(key="cast.revert.environment.harbour").click().run()
    lighting = load_story(example).environment("harbour").lighting
    assert at.text_input(key=cast_key("environment", "harbour", "lighting")).value == (
        lighting
    )


def test_cast_environment_save_names_the_field(example: Path) -> None:
    at = page_test("cast", example).run()
    at.text_input(key=cast_key("environment", NEW, "id")).input("harbour").run()
    at.text_input(key=cast_key("environment", NEW, "name")).input("Harbour 2").run()
    at.button(key="cast.save.environment.__new__").click().run()
    assert "**id**: 'harbour' is taken by another environment" in _texts(at)
    at.text_input(key=cast_key("environment", NEW, "id")).input("Bad Id").run()
    at.button(key="cast.save.environment.__new__").click().run()
    assert "**id**" in _texts(at) and "Bad Id" in _texts(at)
    at.text_input(key=cast_key("environment", NEW, "id")).input("quay").run()
    at.button(key="cast.save.environment.__new__").click().run()
    assert load_story(example).environment("quay").name == "Harbour 2"
    # the "new" editor is empty again
    assert at.text_input(key=cast_key("environment", NEW, "id")).value == ""


def test_cast_rejects_mislabelled_image(example: Path) -> None:
    with pytest.raises(services.StoryError, match="not PNG"):
        services.add_reference_image(example, "mara", "x.png", _png(fmt="JPEG"))
    with pytest.raises(services.StoryError, match="not accepted"):
        services.add_reference_image(example, "mara", "x.gif", b"GIF89a")
    with pytest.raises(services.StoryError, match="MB limit"):
        services.add_reference_image(
            example, "mara", "x.png", b"0" * (services.MAX_REFERENCE_BYTES + 1)
        )
    assert load_story(example).character("mara").reference_images == []


def test_cast_environment_delete_clears_scenes(example: Path) -> None:
    at = page_test("cast", example).run()
    at.button(key="cast.delete.environment.harbour").click().run()
    at.button(key="cast.delete_yes.environment.harbour").click().run()
    story = load_story(example)
    assert "harbour" not in {e.id for e in story.environments}
    assert story.scene("arrival").environment_id is None


# Insights --------------------------------------------------------------------------


def test_insights_charts_and_problem_scenes(example: Path) -> None:
    _with_takes(example)
    services.select_take(example, "climb", 2)
    at = page_test("insights", example).run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 2  # scores, memory decay
    assert "Story: **The Lighthouse Keeper's Daughter**" in _texts(at)
    text = _texts(at)
    assert "stale" in _cells(at)
    assert metric("clip_score").label in _cells(at)  # unavailable, by its label
    assert "Memory decay" in "\n".join(h.value for h in at.subheader) and text


def _chart_data(chart) -> tuple[str, set[str]]:  # noqa: ANN001 - AppTest element
    """(the chart's spec as JSON text, the metrics its data holds)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    metrics: set[str] = set()
    for dataset in chart.proto.datasets:
        df = convert_arrow_bytes_to_pandas_df(dataset.data.data)
        if "metric" in df:
            metrics |= set(df["metric"])
    return chart.proto.spec, metrics


def test_insights_pixel_mae_has_its_own_axis(example: Path) -> None:
    _with_takes(example)

    def seam(story) -> None:  # noqa: ANN001 - Story
        story.scene("meeting").takes[0].scores.seam_pixel_mae = 41.5

    services.edit_story(example, seam)
    at = page_test("insights", example).run()
    charts = [_chart_data(c) for c in at.get("vega_lite_chart")]
    assert len(charts) == 3  # scores, seam pixel difference, memory decay
    axis = metric("seam_pixel_mae").axis_title  # e.g. "... (pixel values, 0 to 255)"
    (scores,) = [m for spec, m in charts if m and axis not in spec]
    (mae,) = [m for spec, m in charts if axis in spec]
    assert scores == {"temporal_flicker"}
    assert mae == {"seam_pixel_mae"}


# Settings --------------------------------------------------------------------------


def test_settings_rejected_with_message_and_values_kept(example: Path) -> None:
    at = page_test("settings", example).run()
    assert not at.exception
    at.number_input(key="settings.width").set_value(10)
    at.number_input(key="settings.decay_rate").set_value(1.5)
    at.text_input(key="settings.model").input("my-model")
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    text = _texts(at)
    assert "`width`" in text and "greater than or equal to 64" in text
    assert "`decay.rate`" in text
    assert at.number_input(key="settings.width").value == 10
    assert at.text_input(key="settings.model").value == "my-model"
    assert load_story(example).settings.width == 768
    at.number_input(key="settings.width").set_value(512)
    at.number_input(key="settings.decay_rate").set_value(0.7)
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    settings = load_story(example).settings
    assert (settings.width, settings.decay.rate, settings.model) == (
        512,
        0.7,
        "my-model",
    )


def test_settings_release_models_saved(example: Path) -> None:
    at = page_test("settings", example).run()
    assert at.checkbox(key="settings.release_models").value is False
    at.checkbox(key="settings.release_models").check()
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    assert not at.exception
    assert load_story(example).settings.release_models is True
    assert at.checkbox(key="settings.release_models").value is True


def test_settings_ltx_needs_multiple_of_32(example: Path) -> None:
    at = page_test("settings", example).run()
    at.selectbox(key="settings.backend").set_value("ltx")
    at.number_input(key="settings.width").set_value(500)
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    shown = _texts(at)
    assert "multiples of 32 for the ltx backend, got 500 x 512" in shown
    assert "nearest valid: 512 x 512" in shown


def test_pages_without_story_say_what_to_do(outputs: Path) -> None:
    for page in ("storyboard", "cast", "insights", "settings"):
        at = page_test(page).run()
        assert not at.exception, page
        assert "Stories page" in _texts(at), page


def test_save_story_round_trip_keeps_takes(example: Path) -> None:
    _with_takes(example)
    story = load_story(example)
    save_story(story, example)
    at = page_test("storyboard", example).run()
    at.selectbox(key=SELECTED_KEY).set_value("climb").run()
    assert "Take 2" in _texts(at) and "Take 1" in _texts(at)


def test_rejected_settings_survive_leaving_the_page(example: Path) -> None:
    at = page_test("settings", example).run()
    at.number_input(key="settings.fps").set_value(500)
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    assert "`fps`" in _texts(at)
    draft = at.session_state["settings.draft"]
    # coming back to the page later: a new run without the widget's state
    back = page_test("settings", example)
    back.session_state["settings.draft"] = draft
    back.run()
    assert back.number_input(key="settings.fps").value == 500


def test_unsaved_edits_warn_before_generating(example: Path) -> None:
    at = page_test("storyboard", example).run()
    assert "Unsaved edits" not in _texts(at)
    at.text_input(key=editor_key("arrival", "pose")).input("kneeling").run()
    assert "Unsaved edits: generation uses the saved scene" in _texts(at)


def test_long_take_duration_and_window_prompts_save(example: Path) -> None:
    update_story(example, lambda s: setattr(s.settings, "backend", "ltx"))
    at = page_test("storyboard", example).run()
    at.selectbox(key=SELECTED_KEY).set_value("meeting").run()
    at.number_input(key=editor_key("meeting", "duration_s")).set_value(12.0).run()
    box = at.text_area(key=editor_key("meeting", "window_prompts"))
    assert "(3 windows)" in box.label  # 289 frames in windows of 121, overlap 24
    box.input("the keeper climbs\n\nthe keeper lights the lamp").run()
    at.button(key="storyboard.save").click().run()
    assert not at.exception
    scene = load_story(example).scene("meeting")
    assert scene.duration_s == 12.0
    assert scene.window_prompts == [
        "the keeper climbs",
        "",
        "the keeper lights the lamp",
    ]
    # the prompt of a window leads with its own motion
    from engine.continuity import ContinuityPlan
    from engine.request import build_request

    story = load_story(example)
    request = build_request(story, "meeting", "", ContinuityPlan("none", "none"))
    first, second, third = request.windows.prompts
    assert "climbs" in first and second == first and "lights the lamp" in third


def test_window_settings_refused_with_the_nearest_valid_values(example: Path) -> None:
    update_story(example, lambda s: setattr(s.settings, "backend", "ltx"))
    at = page_test("settings", example).run()
    assert not at.exception
    at.number_input(key="settings.window_overlap_frames").set_value(130)
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    assert not at.exception
    shown = _texts(at)
    assert "windows.overlap_frames" in shown and "nearest valid: 112" in shown
    assert at.number_input(key="settings.window_overlap_frames").value == 130
    assert load_story(example).settings.windows.overlap_frames == 24
    at.number_input(key="settings.window_overlap_frames").set_value(16)
    at.number_input(key="settings.window_frames").set_value(97)
    at.button(key="FormSubmitter:settings.form-Save settings").click().run()
    windows = load_story(example).settings.windows
    assert (windows.frames, windows.overlap_frames) == (97, 16)
