"""Crash safety: a writer killed with SIGKILL at random moments never leaves a
file that fails to load, and never a partial write in place of the state."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from kg.example import example_story
from kg.paths import TMP_MARK
from kg.schema import SceneNode
from kg.store import BACKUP_FILE, STATE_FILE, load_story, save_story, update_story

KILLS = 200


def _big_story():  # noqa: ANN202
    story = example_story()
    story.description = "0"
    # ~250 KB so a kill often lands inside a write
    story.scenes.extend(
        SceneNode(id=f"extra-{i}", title=f"Extra {i}", motion="x" * 400)
        for i in range(400)
    )
    return story


def _save_forever(path: str) -> None:
    def bump(story):  # noqa: ANN001, ANN202
        story.description = str(int(story.description) + 1)

    while True:
        update_story(path, bump)


def test_sigkill_during_saves_never_corrupts(tmp_path: Path) -> None:
    save_story(_big_story(), tmp_path)
    # Kill moments are drawn relative to how long one save takes on this
    # machine right now, so they cover every phase of a save under any load.
    t0 = time.perf_counter()
    for i in range(4):
        update_story(tmp_path, lambda s, i=i: setattr(s, "title", f"Calibration {i}"))
    one_save = (time.perf_counter() - t0) / 4
    rng = random.Random(1234)
    last_seen = 0
    mid_write_kills = 0
    for _ in range(KILLS):
        pid = os.fork()
        if pid == 0:  # child: save until killed
            try:
                _save_forever(str(tmp_path))
            finally:
                os._exit(1)
        # A random moment inside the child's save loop (this picks when to
        # kill, it does not wait for anything).
        time.sleep(rng.uniform(0.0, 4 * one_save))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        mid_write_kills += any(TMP_MARK in p.name for p in tmp_path.iterdir())
        story = load_story(tmp_path)  # never raises: the state is whole
        counter = int(story.description)
        assert counter >= last_seen, "a save went backwards"
        last_seen = counter
        assert len(story.scenes) == 406
        if (tmp_path / BACKUP_FILE).exists():
            backup = load_story(tmp_path / BACKUP_FILE)
            assert int(backup.description) <= counter
    assert last_seen > 0, "the child never completed a save"
    # The kills really landed inside writes (a temp file was left behind).
    assert mid_write_kills > 0
    # Whatever temp files a kill left behind, the next save cleans them up.
    update_story(tmp_path, lambda s: None)
    assert sorted(p.name for p in tmp_path.iterdir() if TMP_MARK in p.name) == []
    assert (tmp_path / STATE_FILE).exists()
