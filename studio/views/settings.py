"""Settings page: generation and memory settings of the open story.

Every value is validated through ``kg.schema.Settings`` (and the backend's own
constraints) before it is saved; a rejected value is named with what to
change, and the form keeps everything the user typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import streamlit as st

from kg.literal import markdown_code as code
from kg.literal import markdown_literal as md
from kg.schema import MEMORY_MODE_NEEDS, MEMORY_MODES, ObjectiveMetric, Settings
from studio import services
from studio.session import flash, story_page

__all__ = ["settings_page", "settings_key"]

QUALITY_PRESETS = ("fast", "balanced", "high")
CONTINUITY_MODES = ("latent", "frame", "none")
_BASE_KEY = "settings.base"  # (story folder, saved values) the widgets began at
_DRAFT_KEY = "settings.draft"  # (story folder, rejected values) kept across pages


def settings_key(field: str) -> str:
    return f"settings.{field}"


def _values(settings: Settings) -> dict[str, Any]:
    return {
        "backend": settings.backend,
        "model": settings.model,
        "width": int(settings.width),
        "height": int(settings.height),
        "fps": int(settings.fps),
        "quality_preset": settings.quality_preset,
        "memory_mode": settings.memory_mode,
        "transformer_file": settings.transformer_file,
        "continuity_mode": settings.continuity_mode,
        "release_models": bool(settings.release_models),
        "decay_rate": float(settings.decay.rate),
        "decay_threshold": float(settings.decay.threshold),
        "window_frames": int(settings.windows.frames),
        "window_overlap_frames": int(settings.windows.overlap_frames),
        "window_strength": float(settings.windows.strength),
        "window_adain_factor": float(settings.windows.adain_factor),
        "reference_strength": float(settings.references.strength),
        "reference_strength_with_continuity": float(
            settings.references.strength_with_continuity
        ),
        "reference_max_images": int(settings.references.max_images),
        "hosted_budget": float(settings.hosted.budget_usd or 0.0),
        "hosted_timeout": int(settings.hosted.timeout_s),
        "hosted_retries": int(settings.hosted.max_retries),
        "hosted_prices_as_of": settings.hosted.prices.as_of,
        "hosted_prices": "\n".join(
            f"{model} = {usd:g}"
            for model, usd in settings.hosted.prices.usd_per_second.items()
        ),
        "ray_address": settings.ray.address,
        "ray_workers": int(settings.ray.workers),
        "best_of_candidates": int(settings.best_of.candidates),
        "best_of_objective": list(settings.best_of.objective),
    }


def _sync(folder: Path, settings: Settings) -> None:
    """Seed the widgets from the saved settings, keeping what the user typed."""
    saved = _values(settings)
    base_folder, base = st.session_state.get(_BASE_KEY, (None, {}))
    draft_folder, draft = st.session_state.get(_DRAFT_KEY, (None, {}))
    draft = draft if draft_folder == str(folder) else {}
    new_story = base_folder != str(folder)
    for field, value in saved.items():
        key = settings_key(field)
        if key not in st.session_state and field in draft:
            st.session_state[key] = draft[field]  # back on the page: still there
            continue
        typed = st.session_state.get(key, base.get(field))
        if new_story or key not in st.session_state or typed == base.get(field):
            st.session_state[key] = value
    st.session_state[_BASE_KEY] = (str(folder), saved)


def _form(backends: list[str]) -> dict[str, Any] | None:
    with st.form("settings.form"):
        st.subheader("Generation")
        a, b = st.columns(2)
        options = list(dict.fromkeys([*backends, st.session_state["settings.backend"]]))
        values: dict[str, Any] = {}
        values["backend"] = a.selectbox(
            "Backend",
            options,
            key=settings_key("backend"),
            help="animatic: a CPU storyboard preview, no weights needed. "
            "ltx: LTX-Video through diffusers (a GPU and its weights).",
        )
        values["model"] = b.text_input(
            "Model", key=settings_key("model"), help="Empty: the backend's default."
        )
        a, b, c = st.columns(3)
        values["width"] = a.number_input(
            "Width",
            step=32,
            key=settings_key("width"),
            help="Pixels; LTX: a multiple of 32.",
        )
        values["height"] = b.number_input(
            "Height",
            step=32,
            key=settings_key("height"),
            help="Pixels; LTX: a multiple of 32.",
        )
        values["fps"] = c.number_input(
            "FPS",
            step=1,
            key=settings_key("fps"),
            help="Frames per second of the clips.",
        )
        a, b, c = st.columns(3)
        values["quality_preset"] = a.selectbox(
            "Quality preset",
            QUALITY_PRESETS,
            key=settings_key("quality_preset"),
            help="Steps and guidance the backend uses: fast for drafts, high for "
            "finals.",
        )
        values["memory_mode"] = b.selectbox(
            "Memory mode",
            MEMORY_MODES,
            key=settings_key("memory_mode"),
            help="What to offload or shrink to fit the model in GPU memory "
            "(ltx and ltx2 backends); the table below says what each needs.",
        )
        values["continuity_mode"] = c.selectbox(
            "Continuity",
            CONTINUITY_MODES,
            key=settings_key("continuity_mode"),
            help="How a scene continues the one before it on a continuous edge: "
            "latent (its tail latents), frame (its last frame) or none.",
        )
        with st.expander("Memory modes and GGUF transformers"):
            st.table(
                {
                    "mode": list(MEMORY_MODE_NEEDS),
                    "what it needs": list(MEMORY_MODE_NEEDS.values()),
                }
            )
            values["transformer_file"] = st.text_input(
                "GGUF transformer file",
                key=settings_key("transformer_file"),
                placeholder="/models/ltx-2-19b-dev-Q8_0.gguf",
                help="A .gguf transformer (Q8_0, Q4_K...) used in place of the "
                "checkpoint's, by the ltx and ltx2 backends: a file made from the "
                "same model (LTX-Video for ltx, LTX-2 for ltx2); another "
                "architecture is refused. Combines with every mode but fp8. "
                "Empty: the checkpoint's own transformer.",
            )
        values["release_models"] = st.checkbox(
            "Release models between stages",
            key=settings_key("release_models"),
            help="Free the video model before scoring and the scoring models "
            "after, so one heavy model is in GPU memory at a time. Slower: the "
            "models load again for every scene.",
        )
        st.subheader("Long takes and joins")
        a, b, c, d = st.columns(4)
        values["window_frames"] = a.number_input(
            "Window (frames)",
            step=8,
            key=settings_key("window_frames"),
            help="Frames the model makes at once (8k + 1; LTX-Video: 121 is about "
            "5 s at 24 fps). A longer scene is made window by window, each "
            "continuing from the one before.",
        )
        values["window_overlap_frames"] = b.number_input(
            "Overlap (frames)",
            step=8,
            key=settings_key("window_overlap_frames"),
            help="Frames each window repeats from the one before, and a "
            "continuous scene from its predecessor (a multiple of 8, smaller "
            "than the window).",
        )
        values["window_strength"] = c.number_input(
            "Carry strength",
            min_value=0.05,
            max_value=1.0,
            step=0.05,
            format="%.2f",
            key=settings_key("window_strength"),
            help="How strongly the carried frames hold (times the transition's "
            "strength at a scene join). 1 pins them; 0.5 is LTX's default.",
        )
        values["window_adain_factor"] = d.number_input(
            "Colour lock",
            min_value=0.0,
            max_value=1.0,
            step=0.05,
            format="%.2f",
            key=settings_key("window_adain_factor"),
            help="How far later windows' colours are pulled toward the first "
            "window's (AdaIN on the latents); 0 turns it off.",
        )
        st.subheader("Reference images")
        a, b, c = st.columns(3)
        values["reference_strength"] = a.number_input(
            "Strength after a cut",
            min_value=0.0,
            max_value=1.0,
            step=0.05,
            format="%.2f",
            key=settings_key("reference_strength"),
            help="How strongly the characters' and environment's reference "
            "images hold where nothing is carried (a first scene, after a cut). "
            "They are keyframes before the clip, never its first frame; 0 "
            "turns them off.",
        )
        values["reference_strength_with_continuity"] = b.number_input(
            "Strength with continuity",
            min_value=0.0,
            max_value=1.0,
            step=0.05,
            format="%.2f",
            key=settings_key("reference_strength_with_continuity"),
            help="Where the previous scene's tail is carried: lower, so the "
            "reference does not pull against it.",
        )
        values["reference_max_images"] = c.number_input(
            "Images per scene",
            min_value=1,
            max_value=8,
            step=1,
            key=settings_key("reference_max_images"),
            help="Each image adds a frame of tokens to every window.",
        )
        st.subheader("Hosted APIs (replicate, fal)")
        st.caption(
            "The API key comes from the environment (REPLICATE_API_TOKEN, "
            "FAL_KEY) and is never stored. Continuity is by the last frame."
        )
        a, b, c = st.columns(3)
        values["hosted_budget"] = a.number_input(
            "Budget (USD, 0 = none)",
            min_value=0.0,
            step=1.0,
            format="%.2f",
            key=settings_key("hosted_budget"),
            help="A job whose estimate would take the story's spending past this "
            "is refused before it is submitted.",
        )
        values["hosted_timeout"] = b.number_input(
            "Timeout (s)",
            step=60,
            key=settings_key("hosted_timeout"),
            help="A job still running after this long is cancelled.",
        )
        values["hosted_retries"] = c.number_input(
            "Retries",
            step=1,
            key=settings_key("hosted_retries"),
            help="Of a 429 or 5xx answer, with exponential backoff (0 to 10).",
        )
        a, b = st.columns([1, 3])
        values["hosted_prices_as_of"] = a.text_input(
            "Prices as of (YYYY-MM-DD)",
            key=settings_key("hosted_prices_as_of"),
            help="When you read the prices on the provider's pricing page.",
        )
        values["hosted_prices"] = b.text_area(
            "Prices (model = USD per second of video)",
            key=settings_key("hosted_prices"),
            height=110,
            help="One model per line. Used for estimates, the budget check and "
            "the cost of takes the provider does not price itself.",
        )
        st.subheader("Ray cluster")
        a, b = st.columns([3, 1])
        values["ray_address"] = a.text_input(
            "Address",
            key=settings_key("ray_address"),
            placeholder="empty: a local cluster",
            help="Used by `storygraph run/batch --ray story`: a running cluster "
            "(host:6379 or ray://host:10001), or empty to start one locally.",
        )
        values["ray_workers"] = b.number_input(
            "Workers",
            step=1,
            key=settings_key("ray_workers"),
            help="Backend actors, one GPU each for GPU backends (1 to 256).",
        )
        st.subheader("Best of N")
        a, b = st.columns([1, 3])
        values["best_of_candidates"] = a.number_input(
            "Candidates",
            step=1,
            key=settings_key("best_of_candidates"),
            help="Takes the Storyboard's Generate best of N makes at once "
            "(2 to 16), each with the next seed.",
        )
        values["best_of_objective"] = b.multiselect(
            "Objective, in order",
            list(get_args(ObjectiveMetric)),
            key=settings_key("best_of_objective"),
            help="The first metric decides unless the best takes are within its "
            "tolerance; then the next one does. Metrics a take lacks (no seam "
            "on a first scene, no CLIP weights) are passed over. seam_flow "
            "ranks by closeness to 1, seam_pixel_mae lowest first, the others "
            "highest first.",
        )
        st.subheader("Story memory")
        a, b = st.columns(2)
        values["decay_rate"] = a.number_input(
            "Decay rate per scene",
            step=0.05,
            format="%.3f",
            key=settings_key("decay_rate"),
            help="Salience is multiplied by this for each scene an entity is absent.",
        )
        values["decay_threshold"] = b.number_input(
            "Memory threshold",
            step=0.05,
            format="%.3f",
            key=settings_key("decay_threshold"),
            help="Entities below this salience leave the story memory.",
        )
        go = st.form_submit_button("Save settings", type="primary")
    return values if go else None


def _to_settings_input(current: Settings, values: dict[str, Any]) -> dict[str, Any]:
    data = current.model_dump()
    for field in (
        "backend",
        "model",
        "width",
        "height",
        "fps",
        "quality_preset",
        "memory_mode",
        "transformer_file",
        "continuity_mode",
        "release_models",
    ):
        data[field] = values[field]
    data["decay"] = {
        **data["decay"],
        "rate": values["decay_rate"],
        "threshold": values["decay_threshold"],
    }
    data["windows"] = {
        "frames": values["window_frames"],
        "overlap_frames": values["window_overlap_frames"],
        "strength": values["window_strength"],
        "adain_factor": values["window_adain_factor"],
    }
    data["references"] = {
        "strength": values["reference_strength"],
        "strength_with_continuity": values["reference_strength_with_continuity"],
        "max_images": values["reference_max_images"],
    }
    data["hosted"] = {
        "budget_usd": values["hosted_budget"] or None,
        "timeout_s": values["hosted_timeout"],
        "max_retries": values["hosted_retries"],
        "prices": {
            "as_of": values["hosted_prices_as_of"].strip(),
            "usd_per_second": _prices(values["hosted_prices"]),
        },
    }
    data["ray"] = {
        "address": values["ray_address"].strip(),
        "workers": values["ray_workers"],
    }
    data["best_of"] = {
        "candidates": values["best_of_candidates"],
        "objective": list(values["best_of_objective"]),
    }
    return data


def _prices(text: str) -> dict[str, Any]:
    """``model = usd`` lines; a line that does not parse stays as text, so
    validation names it (``hosted.prices.usd_per_second.<model>``)."""
    prices: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        model, _, usd = line.partition("=")
        try:
            prices[model.strip()] = float(usd)
        except ValueError:
            prices[model.strip() or line.strip()] = usd.strip() or line.strip()
    return prices


def _label(field: str) -> str:
    return {
        "decay.rate": "decay rate",
        "decay.threshold": "memory threshold",
        "windows": "long takes",
        "best_of.candidates": "candidates",
        "hosted.budget_usd": "budget",
        "hosted.timeout_s": "timeout",
        "hosted.max_retries": "retries",
        "hosted.prices.as_of": "prices as of",
        "best_of.objective": "objective",
        "ray.address": "Ray address",
        "ray.workers": "Ray workers",
    }.get(field, field.replace("_", " "))


def settings_page() -> None:
    """The open story's settings, validated field by field."""
    folder = story_page("Settings")
    if folder is None:
        return
    current = services.story_view(folder).story.settings
    _sync(folder, current)
    values = _form(services.available_backends())
    if values is None:
        return
    settings, problems = services.validate_settings(_to_settings_input(current, values))
    if settings is None:
        st.session_state[_DRAFT_KEY] = (str(folder), values)
        st.error(
            "Settings not saved; your values are kept. Change:\n"
            + "\n".join(f"- **{_label(f)}** ({code(f)}): {md(m)}" for f, m in problems)
        )
        return
    try:
        services.save_settings(folder, settings)
    except services.StoryError as exc:
        st.error(f"Settings not saved; your values are kept: {md(exc)}")
        return
    st.session_state.pop(_DRAFT_KEY, None)
    flash("Settings saved.")
    st.rerun()
