"""The Ray runner on a local cluster with a fixed CPU count and the animatic:
the same takes as the local runner, stories of a batch in flight together, a
worker killed mid-scene retried, cancel leaving every story consistent, every
error ending a scene as it does locally, a hosted budget held with takes in
flight (a fake hosted API), and best of N."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import engine.generate  # noqa: E402
import engine.runner  # noqa: E402
import engine.scheduler  # noqa: E402
from engine.backend import get_backend  # noqa: E402
from engine.budget import spent  # noqa: E402
from engine.ray_runner import RayRunner  # noqa: E402
from engine.runner import JobRunner  # noqa: E402
from engine.scheduler import ERROR_RULES, outcome_of_error  # noqa: E402
from engine.video import read_video, write_video  # noqa: E402
from kg.example import example_story  # noqa: E402
from kg.paths import resolve_asset  # noqa: E402
from kg.store import load_story, save_story  # noqa: E402
from tests.hosted_fakes import FakeReplicate, Script  # noqa: E402
from tests.test_best_of import SeedObserver  # noqa: E402

KEY = "r8_secret_test_token_123"


@pytest.fixture(scope="module")
def cluster():  # noqa: ANN201
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REPLICATE_API_TOKEN", KEY)  # the workers start with it
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
    refused = cli.invoke(app, ["run", str(one), "--ray", "local", "--candidates",
                               "2", "--no-score"])  # fmt: skip
    assert refused.exit_code == 2 and "drop --no-score" in refused.output
    best = cli.invoke(app, ["run", str(one), "--ray", "local", "--candidates", "2",
                            "--scenes", "dawn"])  # fmt: skip
    assert best.exit_code == 0, best.output
    dawn = load_story(one).scene("dawn")
    assert len(dawn.takes) == 3 and dawn.selected.best_of.candidates == [2, 3]


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


def _table_errors() -> dict[str, BaseException]:
    """One error of every type the scheduler's table names, by story name."""
    return {
        kind.__name__.lower(): kind(f"{kind.__name__}: change this")
        for rule in ERROR_RULES
        for kind in rule.errors
    }


def test_every_error_of_the_table_ends_a_scene_the_same_way_on_both_runners(
    cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors = _table_errors()
    assert "storyerror" in errors and "budgetexceedederror" in errors

    def refuse(story_dir: Path, scene_id: str, **options: Any) -> None:
        raise errors[Path(story_dir).parent.name]

    monkeypatch.setattr(engine.generate, "prepare_take", refuse)  # local
    monkeypatch.setattr(engine.runner, "prepare_take", refuse)  # its runner
    monkeypatch.setattr(engine.scheduler, "prepare_take", refuse)  # Ray
    local: dict[str, tuple[str, str | None]] = {}
    for name in errors:
        folder = _story(tmp_path / name / "local")
        ended: list[str] = []
        runner = JobRunner(
            folder, on_scene_end=lambda sid, kind, ended=ended: ended.append(kind)
        )
        runner.submit(["arrival"], backend="animatic")
        assert runner.wait(60)
        st = runner.status()
        local[name] = (ended[0], st.last_error if st.failed else None)
    remote_dirs = [_story(tmp_path / name / "ray") for name in errors]
    kinds: dict[str, str] = {}
    status = RayRunner(
        workers=1, on_scene_end=lambda d, sid, kind: kinds.update({d.parent.name: kind})
    ).run(remote_dirs, scenes={d: ["arrival"] for d in remote_dirs})
    remote = {
        d.parent.name: (kinds[d.parent.name], s.errors.get("arrival"))
        for d, s in zip(remote_dirs, status.stories, strict=True)
    }
    expected = {}
    for name, error in errors.items():
        outcome = outcome_of_error("arrival", error)
        expected[name] = (outcome.kind, outcome.message)
    assert local == remote == expected
    assert {kind for kind, _ in expected.values()} == {r.kind for r in ERROR_RULES}
    for name in errors:  # nothing begun: the scene is back as it was
        for where in ("local", "ray"):
            scene = load_story(tmp_path / name / where).scene("arrival")
            assert scene.status == "draft" and scene.takes == [], (name, where)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("out") / "out.mp4"
    frames = np.zeros((30, 96, 160, 3), np.uint8)
    frames[..., 0] = np.arange(30)[:, None, None] * 8
    write_video(path, frames, 24)
    return path.read_bytes()


def test_the_budget_counts_takes_in_flight_on_ray(
    cluster: None, clip: bytes, tmp_path: Path
) -> None:
    story = example_story()
    s = story.settings
    s.backend, s.model, s.width, s.height, s.fps = (
        "replicate", "lightricks/ltx-video", 64, 64, 24
    )  # fmt: skip
    s.hosted.budget_usd = 0.25
    s.hosted.prices.usd_per_second["lightricks/ltx-video"] = 0.10 * 24 / 17
    for scene in story.scenes:
        scene.duration_s = 17 / 24  # $0.10 a scene
    for edge in story.edges:
        edge.transition = "cut"  # every scene ready at once
    save_story(story, tmp_path / "story")
    folder = tmp_path / "story"
    script = Script(output=clip)
    with FakeReplicate(script) as fake:
        backend = get_backend("replicate", base_url=fake.url)
        backend.poll_s = 0.0
        status = RayRunner(workers=3).run([folder], backend=backend)
    (progress,) = status.stories
    # two takes in flight hold $0.20: a third would make $0.30 of $0.25
    assert len(progress.finished) == 2 and len(progress.failed) == 4
    assert status.max_in_flight == 2
    assert len([c for c in script.calls if c[0] == "POST"]) == 2
    refused = progress.failed[0]
    assert "held by jobs in flight" in progress.errors[refused]
    assert all("budget" in progress.errors[sid] for sid in progress.failed)
    saved = load_story(folder)
    assert spent(saved) == pytest.approx(0.20) and spent(saved) <= 0.25
    assert all(saved.scene(sid).takes == [] for sid in progress.failed)


def test_best_of_n_on_ray_picks_and_records_the_choice_the_local_runner_does(
    cluster: None, tmp_path: Path
) -> None:
    local = _story(tmp_path / "local")
    story = load_story(local)
    story.settings.best_of.objective = ["clip_score"]
    save_story(story, local)
    remote = tmp_path / "remote"
    shutil.copytree(local, remote)
    seed = story.scene("meeting").seed
    wanted = ["arrival", "meeting"]
    runner = JobRunner(local, SeedObserver({seed + 1: 0.9}))
    runner.submit(wanted, backend="animatic", candidates=2)
    assert runner.wait(120) and runner.status().finished == tuple(wanted)
    status = RayRunner(workers=2, observer=SeedObserver({seed + 1: 0.9})).run(
        [remote], scenes={remote: wanted}, backend="animatic", candidates=2
    )
    (progress,) = status.stories
    assert progress.finished == wanted and not progress.failed
    assert status.max_in_flight == 2  # a scene's candidates made together
    a, b = load_story(local), load_story(remote)
    for sid in wanted:
        assert [t.status for t in b.scene(sid).takes] == ["done", "done"]
        assert b.scene(sid).selected_take == a.scene(sid).selected_take
        got, want = b.scene(sid).selected.best_of, a.scene(sid).selected.best_of
        assert got == want, (got.model_dump(), want.model_dump())
        assert b.scene(sid).status == "done"
    assert b.scene("meeting").selected_take == 2  # its second candidate won
    assert b.scene("meeting").selected.best_of.candidates == [1, 2]
    # meeting's candidates continue from arrival's chosen take
    chosen = b.scene("arrival").selected_take
    for take in b.scene("meeting").takes:
        assert take.params.continuity_source.take == chosen


def test_a_bad_reference_fails_only_its_scenes_on_ray(
    cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.backend as registry
    from engine.backends.animatic.backend import AnimaticBackend

    class WithReferences(AnimaticBackend):  # reads them here, as LTX does
        supports_references = True

    monkeypatch.setitem(registry._REGISTRY, "animatic", WithReferences)
    bad = _story(tmp_path / "bad", "Bad")
    story = load_story(bad)
    (bad / "refs").mkdir()
    (bad / "refs" / "lighthouse.png").write_bytes(b"\x89PNG not really")
    story.environments[1].reference_images = ["refs/lighthouse.png"]
    save_story(story, bad)
    good = _story(tmp_path / "good", "Good")
    status = RayRunner(workers=2).run([bad, good], backend="animatic")
    first, second = status.stories
    assert first.finished == ["arrival", "meeting"] and len(first.failed) == 4
    assert "lighthouse.png" in first.errors["climb"]
    assert len(second.finished) == 6 and not second.failed  # the batch went on
