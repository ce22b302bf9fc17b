"""``storygraph run --live`` redraws the story graph after every scene."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from kg.example import example_story
from kg.store import load_story, save_story
from studio.cli import app
from studio.cli.live_graph import LiveGraph


def test_run_live_redraws_graph_after_each_scene(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    story = example_story()
    story.settings.width, story.settings.height, story.settings.fps = 96, 64, 8
    for scene in story.scenes:
        scene.duration_s = 1.0
    save_story(story, tmp_path)

    drawn: list[tuple[str, ...]] = []
    real_update = LiveGraph.update

    def counting_update(self: LiveGraph, *args: object) -> Path:
        statuses = tuple(s.status for s in load_story(self.story_dir).scenes)
        drawn.append(statuses)
        return real_update(self, *args)

    monkeypatch.setattr(LiveGraph, "update", counting_update)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = CliRunner().invoke(
        app, ["run", str(tmp_path), "--backend", "animatic", "--no-score", "--live"]
    )
    assert result.exit_code == 0, result.output
    png = tmp_path / "graph.png"
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width > 200
    # one drawing before the run, one after each scene, one at the end
    assert len(drawn) == len(story.scenes) + 2
    assert [d.count("done") for d in drawn[1:-1]] == list(
        range(1, len(story.scenes) + 1)
    )
    assert drawn[0].count("done") == 0
    assert drawn[-1] == ("done",) * len(story.scenes)
    done_counts = [d.count("done") for d in drawn]
    assert done_counts == sorted(done_counts)  # the picture follows the run
