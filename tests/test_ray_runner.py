"""The Ray runner on a local cluster with a fixed CPU count and the animatic:
the same takes as the local runner, stories of a batch in flight together, a
worker killed mid-scene retried, and cancel leaving every story consistent."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from engine.ray_runner import RayRunner  # noqa: E402
from engine.runner import JobRunner  # noqa: E402
from engine.video import read_video  # noqa: E402
from kg.example import example_story  # noqa: E402
from kg.paths import resolve_asset  # noqa: E402
from kg.store import load_story, save_story  # noqa: E402


@pytest.fixture(scope="module")
def cluster():  # noqa: ANN201
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _story(folder: Path, title: str = "") -> Path:
    story = example_story()
    if title:
        story.title = title
    story.settings.width, story.settings.height, story.settings.fps = 96, 64, 8
    save_story(story, folder)
    return folder


def _frames(folder: Path) -> dict[str, np.ndarray]:
    story = load_story(folder)
    return {
        s.id: read_video(resolve_asset(folder, s.selected.files.video))
        for s in story.scenes
    }


def test_the_branching_story_renders_the_same_takes_as_the_local_runner(
    cluster: None, tmp_path: Path
) -> None:
    local = _story(tmp_path / "local")
    remote = tmp_path / "remote"
    shutil.copytree(local, remote)
    runner = JobRunner(local)
    runner.submit([s.id for s in load_story(local).scenes], backend="animatic")
    assert runner.wait(120)
    status = RayRunner(workers=2).run([remote])
    (story,) = status.stories
    assert sorted(story.finished) == sorted(s.id for s in load_story(remote).scenes)
    assert not story.failed and not story.cancelled
    a, b = _frames(local), _frames(remote)
    assert a.keys() == b.keys()
    for sid in a:
        assert np.array_equal(a[sid], b[sid]), sid
    # continuity went the same way: each take continues the same source take
    for sa, sb in zip(load_story(local).scenes, load_story(remote).scenes, strict=True):
        assert (
            sa.selected.params.continuity_source == sb.selected.params.continuity_source
        )
        assert sa.selected.overlap_frames == sb.selected.overlap_frames


def test_two_stories_of_a_batch_are_in_flight_together(
    cluster: None, tmp_path: Path
) -> None:
    one, two = _story(tmp_path / "one", "One"), _story(tmp_path / "two", "Two")
    status = RayRunner(workers=2).run([one, two])
    assert all(s.done and not s.failed for s in status.stories)
    assert status.max_in_flight == 2
    assert {i for i, _ in status.busiest} == {0, 1}  # one scene of each at once
    assert all(load_story(f).scene("dawn").status == "done" for f in (one, two))


def test_a_worker_killed_mid_scene_is_replaced_and_the_scene_retried(
    cluster: None, tmp_path: Path
) -> None:
    folder = _story(tmp_path / "story")
    killed: list[str] = []

    def kill_first(story_dir: Path, scene: str, worker: Any, attempt: int) -> None:
        if not killed:
            killed.append(scene)
            ray.kill(worker)  # the task it was just given dies with it

    status = RayRunner(workers=2, on_submit=kill_first).run([folder])
    assert status.retries == 1
    (story,) = status.stories
    assert story.done and not story.failed
    st = load_story(folder)  # a valid story: every scene done, no generating take
    assert {s.status for s in st.scenes} == {"done"}
    assert all(t.status == "done" for s in st.scenes for t in s.takes)


def test_after_too_many_deaths_the_take_fails_with_the_workers_error(
    cluster: None, tmp_path: Path
) -> None:
    folder = _story(tmp_path / "story")

    def kill_arrival(story_dir: Path, scene: str, worker: Any, attempt: int) -> None:
        if scene == "arrival":
            ray.kill(worker)

    status = RayRunner(workers=1, max_retries=1, on_submit=kill_arrival).run(
        [folder], scenes={folder: ["arrival"]}
    )
    (story,) = status.stories
    assert (
        story.failed == ["arrival"]
        and "worker died 2 time(s)" in story.errors["arrival"]
    )
    take = load_story(folder).scene("arrival").takes[-1]
    assert take.status == "failed" and "Ray worker died" in take.error


def test_cancel_leaves_every_story_consistent(cluster: None, tmp_path: Path) -> None:
    one, two = _story(tmp_path / "one"), _story(tmp_path / "two")
    runner = RayRunner(workers=2)

    def stop(story_dir: Path, scene: str, worker: Any, attempt: int) -> None:
        runner.cancel()

    runner.on_submit = stop
    status = runner.run([one, two])
    assert not any(s.finished for s in status.stories)
    assert sum(len(s.cancelled) for s in status.stories) == 12
    for folder in (one, two):
        st = load_story(folder)  # loads, so it is valid
        assert all(s.status in ("draft",) for s in st.scenes), [
            (s.id, s.status) for s in st.scenes
        ]
        assert all(t.status != "generating" for s in st.scenes for t in s.takes)


def test_cli_run_and_batch_on_ray(cluster: None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from studio.cli import app

    cli = CliRunner()
    one, two = _story(tmp_path / "one"), _story(tmp_path / "two")
    ran = cli.invoke(app, ["run", str(one), "--ray", "local", "--no-score",
                           "--scenes", "arrival,meeting"])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "arrival: done" in ran.output and "2 done, 0" in ran.output
    both = cli.invoke(app, ["batch", str(one), str(two), "--ray", "local",
                            "--workers", "2", "--no-score"])  # fmt: skip
    assert both.exit_code == 0, both.output
    assert "2 stories in" in both.output
    assert {s.status for f in (one, two) for s in load_story(f).scenes} == {"done"}
    refused = cli.invoke(app, ["run", str(one), "--ray", "local", "--candidates", "2"])
    assert refused.exit_code == 2 and "drop --ray" in refused.output


def test_cli_batch_without_ray_renders_one_story_after_another(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from studio.cli import app

    one, two = _story(tmp_path / "one"), _story(tmp_path / "two")
    done = CliRunner().invoke(app, ["batch", str(one), str(two), "--no-score"])
    assert done.exit_code == 0, done.output
    assert {s.status for f in (one, two) for s in load_story(f).scenes} == {"done"}
    bad = CliRunner().invoke(app, ["batch", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2


def test_settings_name_a_bad_ray_address(outputs: Path) -> None:
    from studio import services
    from studio.testing import page_test, shown_text

    folder = services.create_story("rayset", "", example=True)
    at = page_test("settings", folder).run()
    at.text_input(key="settings.ray_address").input("my cluster")
    at.number_input(key="settings.ray_workers").set_value(4)
    at.button[0].click().run()
    text = shown_text(at)
    assert "Ray address" in text and "is not a cluster address" in text
    at.text_input(key="settings.ray_address").input("ray://gpu-box:10001")
    at.button[0].click().run()
    ray_settings = load_story(folder).settings.ray
    assert (ray_settings.address, ray_settings.workers) == ("ray://gpu-box:10001", 4)
