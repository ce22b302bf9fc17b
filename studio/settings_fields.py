"""The Settings page's fields, each declared once (``SettingField``).

The form (``studio.views.settings``), its save path and the names problems
are reported under are all built from :data:`FIELDS`: a new setting is one
entry here. Bounds, choices and number types come from ``kg.schema.Settings``
(see ``studio.setting_declaration``). Data only: no Streamlit, no torch.

Examples
--------
>>> from kg.schema import Settings
>>> from studio.setting_declaration import problem_label, settings_input
>>> from studio.setting_declaration import widget_values
>>> values = widget_values(Settings(), FIELDS)
>>> values["width"], values["decay_rate"], values["hosted_budget"]
(768, 0.8, 0.0)
>>> settings_input(Settings(), values, FIELDS) == Settings().model_dump()
True
>>> problem_label("hosted.timeout_s", FIELDS), problem_label("windows", FIELDS)
('timeout', 'long takes')
"""

from __future__ import annotations

from typing import Any

from engine.catalog import CATALOG, MEMORY_MODE_NEEDS
from studio.lora_text import LORA_HELP, lora_lines, parse_lora_lines
from studio.setting_declaration import Group, Section, SettingField

__all__ = [
    "FIELDS",
    "GENERATION",
    "LONG_TAKES",
    "REFERENCES",
    "LORAS",
    "HOSTED",
    "RAY",
    "BEST_OF",
    "COLOR",
    "MEMORY",
    "MEMORY_GUIDE",
    "parse_prices",
]

# Conversions between saved values and widgets ----------------------------------------


def parse_prices(text: str) -> dict[str, Any]:
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


def _price_lines(prices: dict[str, float]) -> str:
    return "\n".join(f"{model} = {usd:g}" for model, usd in prices.items())


def _none_as_zero(usd: float | None) -> float:
    return float(usd or 0.0)


def _zero_as_none(usd: float) -> float | None:
    return usd or None


def _strip(text: str) -> str:
    return text.strip()


def parse_token_prices(text: str) -> dict[str, Any]:
    """``model = input / output`` lines (USD per million tokens); a line that
    does not parse stays as text, so validation names it."""
    prices: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        model, _, usd = line.partition("=")
        inp, _, out = usd.partition("/")
        try:
            prices[model.strip()] = {"input": float(inp), "output": float(out or 0)}
        except ValueError:
            prices[model.strip() or line.strip()] = usd.strip() or line.strip()
    return prices


def _token_price_lines(prices: dict[str, Any]) -> str:
    return "\n".join(
        f"{model} = {p['input']:g} / {p['output']:g}" for model, p in prices.items()
    )


def _memory_mode_table() -> dict[str, list[str]]:
    """What each memory mode needs: the page's one reference to those facts."""
    needs = MEMORY_MODE_NEEDS
    return {"mode": list(needs), "what it needs": list(needs.values())}


# The table ---------------------------------------------------------------------------

GENERATION = Section("Generation")
LONG_TAKES = Section("Long takes and joins", path="windows", problem_label="long takes")
REFERENCES = Section("Reference images")
LORAS = Section(
    "LoRAs",
    caption="The story's LoRAs, in every scene; characters add theirs (Cast). "
    "A LoRA trained on this story's exported dataset belongs here or on the "
    "character it shows.",
)
HOSTED = Section(
    "Hosted APIs (replicate, fal)",
    caption="The API key comes from the environment (REPLICATE_API_TOKEN, "
    "FAL_KEY) and is never stored. Continuity is by the last frame.",
)
RAY = Section("Ray cluster")
DRAFTING = Section(
    "Drafting model",
    caption="An OpenAI-compatible chat endpoint that proposes scenes (llama.cpp, "
    "Ollama, vLLM, LM Studio or a provider). The key comes from OPENAI_API_KEY "
    "and is never stored; calls count against the budget above.",
)
BEST_OF = Section("Best of N")
COLOR = Section(
    "Colour drift",
    path="color",
    problem_label="colour drift",
    caption="Every continuous join and every story line is measured in "
    "CIEDE2000 (Insights charts it, Screening flags joins over the "
    "threshold). Correction pulls each new take toward its anchor: the "
    "latents on ltx, the pixels' colours on the other backends (the "
    "original clip is kept; storygraph undo-color restores it).",
)
MEMORY = Section("Story memory")
MEMORY_GUIDE = Group("Memory modes and GGUF transformers", table=_memory_mode_table)
# A 0-to-1 number in steps of 0.05, the widget held to the model's bounds.
_UNIT: dict[str, Any] = {
    "widget": "number", "step": 0.05, "format": "%.2f", "bounds": "both"
}  # fmt: skip

# What the backends ask of these settings, from their catalog specs.
_BACKEND_HELP = " ".join(f"{name}: {spec.summary}." for name, spec in CATALOG.items())
_SIZED = {s.size_multiple for s in CATALOG.values() if s.size_multiple > 1}
_SIZE_STEP = max(_SIZED) if len(_SIZED) == 1 else 1
_SIZE_HELP = "Pixels; " + "; ".join(
    f"{name}: a multiple of {spec.size_multiple}"
    for name, spec in CATALOG.items()
    if spec.size_multiple > 1
) + "."
_RATIOS = {s.temporal_ratio for s in CATALOG.values() if s.temporal_ratio}
_RATIO = max(_RATIOS) if len(_RATIOS) == 1 else 1


FIELDS: tuple[SettingField, ...] = (
    # Generation
    SettingField(
        key="backend", path="backend", label="Backend", widget="select",
        help=_BACKEND_HELP,
        section=GENERATION, row="model", choices="backends",
    ),
    SettingField(
        key="model", path="model", label="Model", widget="text",
        help="Empty: the backend's default.",
        section=GENERATION, row="model",
    ),
    SettingField(
        key="width", path="width", label="Width", widget="number", step=_SIZE_STEP,
        help=_SIZE_HELP,
        section=GENERATION, row="size",
    ),
    SettingField(
        key="height", path="height", label="Height", widget="number",
        step=_SIZE_STEP, help=_SIZE_HELP,
        section=GENERATION, row="size",
    ),
    SettingField(
        key="fps", path="fps", label="FPS", widget="number", step=1,
        help="Frames per second of the clips.",
        section=GENERATION, row="size",
    ),
    SettingField(
        key="quality_preset", path="quality_preset", label="Quality preset",
        widget="select",
        help="Steps and guidance the backend uses: fast for drafts, high for "
        "finals.",
        section=GENERATION, row="modes",
    ),
    SettingField(
        key="memory_mode", path="memory_mode", label="Memory mode", widget="select",
        help="What to offload or shrink to fit the model in GPU memory "
        "(ltx and ltx2 backends); the table below says what each needs.",
        section=GENERATION, row="modes",
    ),
    SettingField(
        key="continuity_mode", path="continuity_mode", label="Continuity",
        widget="select",
        help="How a scene continues the one before it on a continuous edge: "
        "latent (its tail latents), frame (its last frame) or none.",
        section=GENERATION, row="modes",
    ),
    SettingField(
        key="new_take_seed", path="new_take_seed", label="New take seed",
        widget="select",
        help="What Generate a new take does with the seed: increment (one past "
        "the highest seed the scene used), random, or fixed (the scene's "
        "seed: an identical take is selected again, not made twice). Best "
        "of N continues after the seeds a scene used.",
        section=GENERATION, row="seeds",
    ),
    SettingField(
        key="transformer_file", path="transformer_file",
        label="GGUF transformer file", widget="text",
        placeholder="/models/ltx-2-19b-dev-Q8_0.gguf",
        help="A .gguf transformer (Q8_0, Q4_K...) used in place of the "
        "checkpoint's, by the ltx and ltx2 backends: a file made from the "
        "same model (LTX-Video for ltx, LTX-2 for ltx2); another "
        "architecture is refused. Combines with every mode but fp8. "
        "Empty: the checkpoint's own transformer.",
        section=GENERATION, group=MEMORY_GUIDE,
    ),
    SettingField(
        key="release_models", path="release_models",
        label="Release models between stages", widget="checkbox",
        help="Free the video model before scoring and the scoring models "
        "after, so one heavy model is in GPU memory at a time. Slower: the "
        "models load again for every scene.",
        section=GENERATION,
    ),
    # Long takes and joins
    SettingField(
        key="window_frames", path="windows.frames", label="Window (frames)",
        widget="number", step=_RATIO,
        help=f"Frames the model makes at once ({_RATIO}k + 1; LTX-Video: 121 is "
        "about 5 s at 24 fps). A longer scene is made window by window, each "
        "continuing from the one before.",
        section=LONG_TAKES, row="windows",
    ),
    SettingField(
        key="window_overlap_frames", path="windows.overlap_frames",
        label="Overlap (frames)", widget="number", step=_RATIO,
        help="Frames each window repeats from the one before, and a "
        f"continuous scene from its predecessor (a multiple of {_RATIO}, "
        "smaller than the window).",
        section=LONG_TAKES, row="windows",
    ),
    SettingField(
        key="window_strength", path="windows.strength", label="Carry strength",
        help="How strongly the previous window's frames hold inside a long "
        "take. 1 pins them; 0.5 is LTX's default.",
        section=LONG_TAKES, row="windows", **_UNIT,
    ),
    SettingField(
        key="window_join_strength", path="windows.join_strength",
        label="Join strength",
        help="How strongly a continuous scene holds its predecessor's frames "
        "(times the transition's strength). 1, the makers' in-place context: "
        "the film skips those frames, so a weaker hold shows as a jump.",
        section=LONG_TAKES, row="windows", **_UNIT,
    ),
    SettingField(
        key="window_adain_factor", path="windows.adain_factor", label="Colour lock",
        help="How far later windows' colours are pulled toward the first "
        "window's (AdaIN on the latents); 0 turns it off.",
        section=LONG_TAKES, row="windows", **_UNIT,
    ),
    # Reference images
    SettingField(
        key="reference_strength", path="references.strength",
        label="Strength after a cut",
        help="How strongly the characters' and environment's reference "
        "images hold where nothing is carried (a first scene, after a cut). "
        "They are keyframes before the clip, never its first frame; 0 "
        "turns them off.",
        section=REFERENCES, row="references", **_UNIT,
    ),
    SettingField(
        key="reference_strength_with_continuity",
        path="references.strength_with_continuity",
        label="Strength with continuity",
        help="Where the previous scene's tail is carried: lower, so the "
        "reference does not pull against it.",
        section=REFERENCES, row="references", **_UNIT,
    ),
    SettingField(
        key="reference_max_images", path="references.max_images",
        label="Images per scene", widget="number", step=1, bounds="both",
        help="Each image adds a frame of tokens to every window.",
        section=REFERENCES, row="references",
    ),
    # LoRAs
    SettingField(
        key="loras", path="loras", named="LoRAs",
        label="LoRAs (file = weight, one per line)", widget="text_area",
        height=90, to_widget=lora_lines, to_setting=parse_lora_lines,
        placeholder="/models/loras/ltx-2-camera-dolly-in.safetensors = 0.8",
        help=LORA_HELP,
        section=LORAS, width=3,
    ),
    # Hosted APIs
    SettingField(
        key="hosted_budget", path="hosted.budget_usd", named="budget",
        label="Budget (USD, 0 = none)", widget="number", step=1.0, format="%.2f",
        bounds="lower", to_widget=_none_as_zero, to_setting=_zero_as_none,
        help="A job whose estimate would take the story's spending past this "
        "is refused before it is submitted.",
        section=HOSTED, row="limits",
    ),
    SettingField(
        key="hosted_timeout", path="hosted.timeout_s", named="timeout",
        label="Timeout (s)", widget="number", step=60,
        help="A job still running after this long is cancelled.",
        section=HOSTED, row="limits",
    ),
    SettingField(
        key="hosted_retries", path="hosted.max_retries", named="retries",
        label="Retries", widget="number", step=1,
        help="Of a 429 or 5xx answer, with exponential backoff ({range}).",
        section=HOSTED, row="limits",
    ),
    SettingField(
        key="hosted_prices_as_of", path="hosted.prices.as_of", named="prices as of",
        label="Prices as of (YYYY-MM-DD)", widget="text", to_setting=_strip,
        help="When you read the prices on the provider's pricing page.",
        section=HOSTED, row="prices",
    ),
    SettingField(
        key="hosted_prices", path="hosted.prices.usd_per_second",
        label="Prices (model = USD per second of video)", widget="text_area",
        height=110, to_widget=_price_lines, to_setting=parse_prices,
        help="One model per line. Used for estimates, the budget check and "
        "the cost of takes the provider does not price itself.",
        section=HOSTED, row="prices", width=3,
    ),
    # Drafting model
    SettingField(
        key="drafting_endpoint", path="drafting.endpoint", named="drafting endpoint",
        label="Endpoint", widget="text", to_setting=_strip,
        help="The server's OpenAI-compatible base URL: llama.cpp "
        "http://127.0.0.1:8080/v1, Ollama http://127.0.0.1:11434/v1.",
        section=DRAFTING, row="drafting", width=2,
    ),
    SettingField(
        key="drafting_model", path="drafting.model", named="drafting model",
        label="Model", widget="text", to_setting=_strip,
        help="The model the server serves (e.g. llama3.1 for Ollama).",
        section=DRAFTING, row="drafting",
    ),
    SettingField(
        key="drafting_prices", path="drafting.prices", named="drafting prices",
        label="Prices (model = USD per million input / output tokens)",
        widget="text_area", height=80, to_widget=_token_price_lines,
        to_setting=parse_token_prices,
        help="For hosted models; a model on this machine without a price "
        "costs nothing.",
        section=DRAFTING, row="drafting_prices", width=3,
    ),
    # Ray cluster
    SettingField(
        key="ray_address", path="ray.address", named="Ray address",
        label="Address", widget="text", placeholder="empty: a local cluster",
        to_setting=_strip,
        help="Used by `storygraph run/batch --ray story`: a running cluster "
        "(host:6379 or ray://host:10001), or empty to start one locally.",
        section=RAY, row="ray", width=3,
    ),
    SettingField(
        key="ray_workers", path="ray.workers", named="Ray workers",
        label="Workers", widget="number", step=1,
        help="Backend actors, one GPU each for GPU backends ({range}).",
        section=RAY, row="ray",
    ),
    # Best of N
    SettingField(
        key="best_of_candidates", path="best_of.candidates", named="candidates",
        label="Candidates", widget="number", step=1,
        help="Takes the Storyboard's Generate best of N makes at once "
        "({range}), each with the next seed.",
        section=BEST_OF, row="best_of",
    ),
    SettingField(
        key="best_of_objective", path="best_of.objective", named="objective",
        label="Objective, in order", widget="multiselect",
        help="The first metric decides unless the best takes are within its "
        "tolerance; then the next one does. Metrics a take lacks (no seam "
        "on a first scene, no CLIP weights) are passed over. seam_flow "
        "ranks by closeness to 1, seam_pixel_mae lowest first, the others "
        "highest first.",
        section=BEST_OF, row="best_of", width=3,
    ),
    # Colour drift
    SettingField(
        key="color_correction", path="color.correction", label="Correction",
        widget="select",
        help="off; line: toward the line's anchor (the environment's "
        "reference image, else the line's first scene); scene: toward the "
        "take it continues from (nothing after a cut).",
        section=COLOR, row="color",
    ),
    SettingField(
        key="color_method", path="color.method", label="Pixel method",
        widget="select",
        help="Frame and hosted backends: reinhard matches each CIELAB "
        "channel's mean and spread, mkl the whole colour covariance.",
        section=COLOR, row="color",
    ),
    SettingField(
        key="color_strength", path="color.strength", label="Strength",
        help="How far toward the anchor (1: all the way; also the latent "
        "AdaIN factor).",
        section=COLOR, row="color", **_UNIT,
    ),
    SettingField(
        key="color_threshold", path="color.threshold",
        label="Flag joins over (ΔE00)", widget="number", step=0.5,
        format="%.1f",
        help="A join whose colour shift is over this is marked in Insights "
        "and flagged on Screening's filmstrip; about 3 is visible at a "
        "glance.",
        section=COLOR, row="color",
    ),
    # Story memory
    SettingField(
        key="decay_rate", path="decay.rate", named="decay rate",
        label="Decay rate per scene", widget="number", step=0.05, format="%.3f",
        help="Salience is multiplied by this for each scene an entity is absent.",
        section=MEMORY, row="decay",
    ),
    SettingField(
        key="decay_threshold", path="decay.threshold", named="memory threshold",
        label="Memory threshold", widget="number", step=0.05, format="%.3f",
        help="Entities below this salience leave the story memory.",
        section=MEMORY, row="decay",
    ),
)  # fmt: skip
