"""The backend catalog is the one home of a backend's facts; the model cache the
one owner of loaded models.

Every reader is checked against the catalog itself, never against a copied
list: Ray's GPU request, Settings validation and generation (same refusal,
same words), the registry, and what a backend instance says of itself.
"""

from __future__ import annotations

import pytest

from engine.backend import BackendError, available_backends, get_backend
from engine.catalog import CATALOG, check_settings, settings_problems, spec
from engine.model_cache import ModelCache
from engine.ray_runner import worker_gpus
from kg.schema import Settings, WindowSettings
from studio.services import validate_settings


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_ray_gives_a_gpu_to_every_backend_whose_spec_needs_one(name: str) -> None:
    expected = 1.0 if CATALOG[name].needs_gpu else 0.0
    assert worker_gpus(name, cluster_gpus=4, workers=2) == expected
    assert worker_gpus(name, cluster_gpus=1, workers=2) == 0.0  # not one each
    assert worker_gpus("not-a-backend", 4, 2) == 0.0


def test_both_ltx_families_need_a_gpu() -> None:
    assert {n for n, s in CATALOG.items() if s.needs_gpu} == {"ltx", "ltx2"}


def test_every_catalog_backend_registers_and_agrees_with_its_spec() -> None:
    assert set(CATALOG) <= set(available_backends())
    for name, entry in CATALOG.items():
        backend = get_backend(name)
        assert backend.name == name
        assert backend.makes_audio == entry.makes_audio, name
        assert backend.charges == entry.hosted, name


def test_settings_refuse_a_500_square_ltx2_story_as_generation_would() -> None:
    values = Settings(backend="ltx2", model="tiny-random").model_dump(mode="json")
    values["width"] = values["height"] = 500
    settings, problems = validate_settings(values)
    assert settings is None
    fields = {f for f, _ in problems}
    assert {"width", "height"} <= fields
    message = dict(problems)["width"]
    assert "settings.width" in message and "settings.height" in message
    assert "512 x 512" in message  # the nearest valid size
    # generation refuses the same story with the same words
    story_settings = Settings.model_validate({**values, "width": 500, "height": 500})
    with pytest.raises(BackendError) as err:
        check_settings(story_settings)
    assert message in str(err.value)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_size_rule_follows_each_spec(name: str) -> None:
    multiple = spec(name).size_multiple
    settings = Settings(backend=name, width=16 * 31, height=512)
    problems = settings_problems(settings)
    assert bool(problems) == bool((16 * 31) % multiple), problems


def test_window_rules_follow_the_chosen_backend() -> None:
    # a window of 120 frames is no 8k + 1: valid in the story file, named when
    # the story's backend makes long takes on an 8x causal VAE
    odd = WindowSettings(frames=120, overlap_frames=24)
    animatic = Settings(backend="animatic", windows=odd)
    assert settings_problems(animatic) == []
    ltx = Settings(backend="ltx", windows=odd)
    (field, text), *_ = settings_problems(ltx)
    assert field == "windows.frames"
    assert "nearest valid: 113 or 121" in text


def test_releasing_one_family_keeps_the_other() -> None:
    cache = ModelCache()
    ltx = cache.get("ltx", ("tiny",), object)
    ltx2 = cache.get("ltx2", ("tiny",), object)
    clip = cache.get("clip", ("b32",), object)
    cache.release("ltx")
    assert cache.held("ltx") is None
    assert cache.held("ltx2") is ltx2 and cache.held("clip") is clip
    ltx = cache.get("ltx", ("tiny",), object)
    cache.release("ltx2")
    assert cache.held("ltx") is ltx and cache.held("ltx2") is None
    with cache:
        pass
    assert cache.families() == []


def test_a_family_holds_one_model_and_reloads_on_a_new_key() -> None:
    cache = ModelCache()
    loads: list[str] = []

    def load(tag: str) -> object:
        loads.append(tag)
        return object()

    first = cache.get("ltx", "a", lambda: load("a"))
    assert cache.get("ltx", "a", lambda: load("again")) is first
    cache.get("ltx", "b", lambda: load("b"))
    assert loads == ["a", "b"]


def test_exclusive_families_share_a_gpu_one_at_a_time() -> None:
    cache = ModelCache()
    cache.get("ltx", "a", object, device="cuda:0", exclusive=True)
    cache.get("clip", "b32", object, device="cuda:0")
    cache.get("ltx2", "a", object, device="cuda:0", exclusive=True)
    assert cache.families() == ["clip", "ltx2"]


def test_releasing_the_ltx_backend_keeps_a_loaded_ltx2_model() -> None:
    from engine.backends.ltx.backend import LTXBackend
    from engine.backends.ltx.backend import loaded_model as ltx_model
    from engine.backends.ltx2.backend import LTX2Backend
    from engine.backends.ltx2.backend import loaded_model as ltx2_model

    with ModelCache() as cache:
        ltx, ltx2 = LTXBackend(models=cache), LTX2Backend(models=cache)
        ltx_pipe = ltx_model("tiny-random", "cpu", cache=cache).pipe
        ltx2_pipe = ltx2_model("tiny-random", "cpu", cache=cache).pipe
        ltx.release()
        assert cache.held("ltx") is None
        assert cache.held("ltx2").pipe is ltx2_pipe
        assert ltx_model("tiny-random", "cpu", cache=cache).pipe is not ltx_pipe
        ltx2.release()
        assert cache.held("ltx2") is None and cache.held("ltx") is not None
    assert cache.families() == []


def test_memory_modes_are_the_stored_ones_and_bind_only_model_backends() -> None:
    from engine.catalog import MEMORY_MODE_NEEDS
    from kg.schema import MEMORY_MODES

    assert tuple(MEMORY_MODE_NEEDS) == MEMORY_MODES  # one entry per stored mode
    offload = Settings(backend="ltx", memory_mode="model_offload")
    for name, entry in CATALOG.items():
        problems = dict(settings_problems(offload, name))
        # a backend that loads no weights has nothing to place: any mode goes
        assert ("memory_mode" in problems) == (
            entry.holds_models and "model_offload" not in entry.memory_modes
        ), name


def test_the_ltx_vae_ratios_are_the_catalog_s() -> None:
    from engine.backends.diffusers.latents import LTX_RATIOS

    for name in ("ltx", "ltx2"):
        assert spec(name).temporal_ratio == LTX_RATIOS.temporal
        assert spec(name).size_multiple == LTX_RATIOS.spatial


def test_a_carried_overlap_on_ltx2_must_be_whole_latent_frames() -> None:
    settings = Settings(backend="ltx2", windows=WindowSettings(overlap_frames=20))
    assert [f for f, _ in settings_problems(settings)] == ["windows.overlap_frames"]


def test_validate_names_what_the_story_s_backend_cannot_make(tmp_path) -> None:
    from typer.testing import CliRunner

    from kg.example import example_story
    from kg.store import save_story
    from studio.cli import app

    story = example_story()
    story.settings.backend = "ltx2"
    story.settings.width = 500
    save_story(story, tmp_path)
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2
    assert "settings.width" in result.output and "512 x 512" in result.output
    story.settings.backend = "animatic"  # no size rule: the same file is valid
    save_story(story, tmp_path)
    assert CliRunner().invoke(app, ["validate", str(tmp_path)]).exit_code == 0
