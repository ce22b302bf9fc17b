"""A new take is a new take: seeds by the story's setting, no take made twice,
and no stale cascade when the selected take's pixels did not change."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.best_of import generate_best_of
from engine.takes import content_digest
from kg.store import load_story
from studio import services, wiring
from studio.testing import page_test, shown_text
from tests.everyday_fakes import example_story

pytest.importorskip("engine.runner")


class _Observer:
    """Scores every take alike (best of N needs an observer)."""

    def observe(self, request):  # noqa: ANN001, ANN201
        from kg.observation import Observation
        from kg.schema import Scores

        return Observation(Scores(temporal_flicker=0.9))

    def release(self) -> None:
        pass


@pytest.fixture
def story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example story on the animatic, its first two scenes generated."""
    monkeypatch.setenv(services.OUTPUTS_ENV, str(tmp_path))
    monkeypatch.setattr(wiring, "default_observer", lambda: None)
    folder = example_story("seeds", backend="animatic")
    services.submit_generation(folder, ["arrival", "meeting"])
    assert services.wait_for_jobs(folder, timeout=240)
    return folder


def _policy(folder: Path, policy: str) -> None:
    services.edit_story(folder, lambda s: setattr(s.settings, "new_take_seed", policy))


def test_new_take_gets_the_next_seed_and_equal_pixels_stale_nothing(
    story: Path,
) -> None:
    at = page_test("storyboard", story).run()
    button = at.button(key="storyboard.generate")
    assert button.label == "Generate a new take (seed 12)"  # arrival's seed is 11
    button.click().run()
    assert services.wait_for_jobs(story, timeout=240)
    at.run()
    saved = load_story(story)
    arrival = saved.scene("arrival")
    first, second = arrival.take(1), arrival.take(2)
    assert (first.params.seed, second.params.seed) == (11, 12)
    assert first.params.cache_key != second.params.cache_key
    assert arrival.selected_take == 2
    # the animatic draws a clear harbour the same whatever the seed: the same
    # clip, so what continues from it is still up to date
    assert content_digest(story, first) == content_digest(story, second)
    assert saved.scene("meeting").status == "done"
    assert at.button(key="storyboard.generate").label == (
        "Generate a new take (seed 13)"
    )
    # selecting the first take back changes nothing downstream either
    at.button(key="storyboard.select_take.1").click().run()
    saved = load_story(story)
    assert saved.scene("arrival").selected_take == 1
    assert saved.scene("meeting").status == "done"


def test_fixed_seed_selects_the_identical_take_instead_of_making_it(
    story: Path,
) -> None:
    _policy(story, "fixed")
    at = page_test("storyboard", story).run()
    button = at.button(key="storyboard.generate")
    assert button.label == "Generate a new take (seed 11)"
    button.click().run()
    assert services.wait_for_jobs(story, timeout=240)
    at.run()
    arrival = load_story(story).scene("arrival")
    assert [t.index for t in arrival.takes] == [1]  # not made twice
    assert arrival.selected_take == 1 and arrival.status == "done"
    assert "take 1 is identical" in shown_text(at)


def test_random_seed_is_one_the_scene_never_used(story: Path) -> None:
    _policy(story, "random")
    at = page_test("storyboard", story).run()
    assert at.button(key="storyboard.generate").label == (
        "Generate a new take (random seed)"
    )
    at.button(key="storyboard.generate").click().run()
    assert services.wait_for_jobs(story, timeout=240)
    takes = load_story(story).scene("arrival").takes
    assert len(takes) == 2 and takes[1].params.seed != takes[0].params.seed


def test_best_of_continues_after_the_seeds_the_scene_used(story: Path) -> None:
    generate_best_of(story, "arrival", 2, observer=_Observer())
    takes = load_story(story).scene("arrival").takes
    assert [t.params.seed for t in takes] == [11, 12, 13]
    generate_best_of(story, "arrival", 2, observer=_Observer())
    seeds = [t.params.seed for t in load_story(story).scene("arrival").takes]
    assert seeds == [11, 12, 13, 14, 15] and len(set(seeds)) == len(seeds)


def test_the_setting_is_on_the_settings_page(story: Path) -> None:
    at = page_test("settings", story).run()
    box = at.selectbox(key="settings.new_take_seed")
    assert box.value == "increment"
    assert box.options == ["increment", "random", "fixed"]
