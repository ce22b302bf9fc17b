"""A story's settings: backend and model, size, memory, decay, windows, budgets.

Each field is bounded and typed; the rules that depend on the chosen backend
(size multiples, window frame rules, memory modes it runs) are the backend
catalog's (`engine.catalog`), checked when settings are saved and before
generation, so a story file stays valid whichever backend it names.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)

from kg.fields import (
    MAX_PATH,
    GgufPath,
    ModelId,
    Unit,
    Word,
    bounded_text,
    check_relative_path,
)
from kg.vocabulary import (
    MAX_CANDIDATES,
    METRIC_NAMES,
    ContinuityMode,
    MemoryMode,
    ObjectiveMetric,
    QualityPreset,
    StrictModel,
)
from kg.windows import MAX_WINDOW_FRAMES, MIN_WINDOW_FRAMES

__all__ = [
    "LoraRef",
    "MAX_LORAS",
    "lora_is_outside",
    "WindowSettings",
    "DecaySettings",
    "ReferenceSettings",
    "PriceTable",
    "HostedSettings",
    "RaySettings",
    "BestOfSettings",
    "ColorSettings",
    "DraftingSettings",
    "TokenPrice",
    "Settings",
    "NewTakeSeed",
]

# What "Generate a new take" does with the seed (ComfyUI's "control after
# generate"): one past the highest seed the scene used, a random one, or the
# scene's own (an identical take is then found again, not made twice).
NewTakeSeed = Literal["increment", "random", "fixed"]


def lora_is_outside(file: str) -> bool:
    """Whether a LoRA file is named by an absolute path (a model file outside
    the story) rather than by one relative to the story folder.

    >>> lora_is_outside("/loras/fox.safetensors"), lora_is_outside("loras/x.st")
    (True, False)
    """
    return file.startswith(("/", "~")) or file[1:3] in (":/", ":\\")


def _check_lora_file(value: str) -> str:
    value = value.strip()
    if not value.lower().endswith(".safetensors"):
        raise ValueError(
            f"{value!r} is not a .safetensors file; a LoRA is read from a "
            ".safetensors file (never a pickle): give its path"
        )
    if not lora_is_outside(value):
        check_relative_path(value)  # inside the story folder, never out of it
    return value


# Per stack layer (story, character, scene): each LoRA is a pass's extra work
# when unfused, and stacks beyond a few rarely help.
MAX_LORAS = 8


class LoraRef(StrictModel):
    """A LoRA attached to a story, a character or a scene (backends that take
    LoRAs: ltx2). ``file``: a ``.safetensors`` LoRA, an absolute path (a
    model file outside the story) or a path inside the story folder;
    ``weight``: its strength (negative subtracts it); ``in_context``: an
    IC-LoRA that reads the scene's reference images as in-context
    references (Lightricks' Ingredients LoRA), not as keyframes."""

    file: Annotated[
        str, bounded_text(MAX_PATH, 1), AfterValidator(_check_lora_file)
    ]
    weight: Annotated[float, Field(ge=-10.0, le=10.0)] = 1.0
    in_context: bool = False


class WindowSettings(StrictModel):
    """How a scene longer than the model's window is made (`kg.windows`).

    ``frames``: the window (``t*k + 1`` pixel frames for the backend's VAE
    ratio ``t``, 8 on LTX); ``overlap_frames``: frames each window repeats
    from the one before, and a continuous scene from its predecessor (a
    multiple of ``t``, smaller than the window); ``strength``: how
    strongly the carried frames hold (times the transition's strength at a
    scene join; the default is LTX's own extension default); ``adain_factor``:
    how far later windows' colour statistics are pulled toward the first
    window's (0 = not at all).
    """

    frames: Annotated[int, Field(ge=MIN_WINDOW_FRAMES, le=MAX_WINDOW_FRAMES)] = 121
    overlap_frames: Annotated[int, Field(ge=0, le=MAX_WINDOW_FRAMES)] = 24
    strength: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    adain_factor: Unit = 0.25
    # How strongly a carried tail holds at a continuous scene join (times the
    # transition's strength). 1, the makers' in-place context (LTX-2's
    # ``VideoConditionByLatentIndex`` at strength 1, ComfyUI's
    # ``LTXVSetAudioVideoMaskByTime``): the film skips the repeated frames,
    # so a half-held context would make the first played frame jump.
    join_strength: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0


class DecaySettings(StrictModel):
    # 0.8 per scene: an entity unseen for 7 scenes falls under 0.2 of its weight.
    rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    threshold: Annotated[float, Field(ge=0.0, le=10.0)] = 0.3
    # Added to an entity's importance each time it appears again.
    reinforcement: Annotated[float, Field(ge=0.0, le=10.0)] = 0.25
    max_importance: Annotated[float, Field(gt=0.0, le=10.0)] = 3.0


class ReferenceSettings(StrictModel):
    # How strongly reference images hold where nothing is carried (a first
    # scene, after a cut): 1 pins the keyframe, 0 turns references off.
    strength: Unit = 0.8
    # Alongside carried latents, lower: the carried tail already holds the
    # look, and a strong reference would pull against it.
    strength_with_continuity: Unit = 0.3
    # Images per scene (each adds a frame of tokens to every window).
    max_images: Annotated[int, Field(ge=1, le=8)] = 2


class PriceTable(StrictModel):
    """USD per second of output video, per hosted model, as read on a date.

    Providers change prices: the date says when these were copied from the
    provider's pricing page.
    """

    # fal's published 1080p prices for LTX-2 (engine.backends.hosted.fal); Replicate
    # bills by hardware time, so its models need an entry of your own.
    as_of: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] = "2026-01-07"
    usd_per_second: dict[ModelId, Annotated[float, Field(ge=0.0, le=1_000.0)]] = Field(
        default_factory=lambda: {
            "fal-ai/ltx-2/text-to-video": 0.06,
            "fal-ai/ltx-2/image-to-video": 0.06,
            "fal-ai/ltx-2/text-to-video/fast": 0.04,
            "fal-ai/ltx-2/image-to-video/fast": 0.04,
        },
        max_length=64,
    )


class HostedSettings(StrictModel):
    # Spending limit of the whole story in USD (None: no limit): a job whose
    # estimate would go over it is refused before it is submitted.
    budget_usd: Annotated[float, Field(ge=0.0, le=1_000_000.0)] | None = None
    # A job still running after this long is cancelled at the provider.
    timeout_s: Annotated[int, Field(ge=10, le=24 * 3600)] = 900
    # Retries of a 429 or 5xx answer, with exponential backoff.
    max_retries: Annotated[int, Field(ge=0, le=10)] = 4
    prices: PriceTable = Field(default_factory=PriceTable)


class RaySettings(StrictModel):
    # Where `storygraph run/batch --ray story` renders: "" starts a local
    # cluster; else a running cluster's address (host:6379 or ray://host:10001).
    address: Annotated[str, Field(max_length=200)] = ""
    # Backend actors (one GPU each for GPU backends).
    workers: Annotated[int, Field(ge=1, le=256)] = 2

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"(ray://)?[A-Za-z0-9.\-]+:\d{1,5}", value):
            raise ValueError(
                f"{value!r} is not a cluster address; use host:6379 or "
                "ray://host:10001, or leave it empty for a local cluster"
            )
        return value


class BestOfSettings(StrictModel):
    # Candidates the studio offers to make at once (Generate N).
    candidates: Annotated[int, Field(ge=2, le=MAX_CANDIDATES)] = 3
    # Ranked in order: a metric decides unless the best candidates are within
    # its tolerance, then the next one does. Seam continuity first (DINO cosine
    # with weights, pixel difference without), then subject consistency, then
    # CLIPScore, then the pixel-only flicker score.
    objective: list[ObjectiveMetric] = Field(
        default_factory=lambda: [
            "seam_dino_cosine",
            "seam_pixel_mae",
            "subject_consistency",
            "clip_score",
            "temporal_flicker",
        ],
        min_length=1,
        max_length=len(METRIC_NAMES),
    )

    @model_validator(mode="after")
    def _unique(self) -> BestOfSettings:
        repeated = sorted({m for m in self.objective if self.objective.count(m) > 1})
        if repeated:
            raise ValueError(
                f"objective lists {', '.join(repeated)} more than once; "
                "name each metric once"
            )
        return self


class ColorSettings(StrictModel):
    """Colour drift: where it is corrected and when a join counts as slipped.

    ``correction``: ``off``; ``line``: each take is pulled toward its line's
    anchor (its environment's reference image, else the line's first
    scene); ``scene``: toward the take it continues from (nothing after a
    cut). Latent backends that support it pull the latents' statistics
    (AdaIN, `engine.backends.diffusers.adain`), the others
    transfer the pixels' colours with ``method`` (Reinhard's mean and spread,
    or MKL's full covariance, in CIELAB) and keep the original clip.
    ``strength``: how far (1: all the way). ``threshold``: a join or a line
    drifting more than this many CIEDE2000 units is flagged.
    """

    # Off by default: pulling every take toward one look suits a line that
    # keeps its look, not a storyboard whose scenes change palette.
    correction: Literal["off", "line", "scene"] = "off"
    method: Literal["reinhard", "mkl"] = "reinhard"
    # Most of the way: a full pull also flattens colour changes the story asks for.
    strength: Unit = 0.8
    # About 3 ΔE00 is visible at a glance between two frames side by side.
    threshold: Annotated[float, Field(gt=0.0, le=100.0)] = 3.0


class TokenPrice(StrictModel):
    """USD per million tokens a language model reads and writes."""

    input: Annotated[float, Field(ge=0.0, le=10_000.0)] = 0.0
    output: Annotated[float, Field(ge=0.0, le=10_000.0)] = 0.0


class DraftingSettings(StrictModel):
    """The language model that drafts scenes (`engine.drafting`): any
    OpenAI-compatible chat endpoint (llama.cpp, Ollama, vLLM, LM Studio, a
    hosted provider). The API key is read from the environment variable
    ``api_key_env`` and never stored."""

    # llama.cpp's server; Ollama is http://127.0.0.1:11434/v1, LM Studio :1234/v1
    endpoint: Annotated[str, Field(max_length=500)] = "http://127.0.0.1:8080/v1"
    model: ModelId = ""
    api_key_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")] = (
        "OPENAI_API_KEY"
    )
    # Per model; a model without a price on a local endpoint costs nothing, on
    # another one it is refused while the story has a budget.
    prices: dict[ModelId, TokenPrice] = Field(default_factory=dict, max_length=64)
    # An answer longer than this is cut by the server (and refused here).
    max_tokens: Annotated[int, Field(ge=64, le=32_768)] = 2_048
    timeout_s: Annotated[int, Field(ge=5, le=3_600)] = 120

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip()
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                f"{value!r} is not an http(s) URL; give the server's OpenAI-"
                "compatible base URL, such as http://127.0.0.1:8080/v1"
            )
        return value.rstrip("/")


class Settings(StrictModel):
    backend: Word = "animatic"
    model: ModelId = ""
    width: Annotated[int, Field(ge=64, le=4096)] = 768
    height: Annotated[int, Field(ge=64, le=4096)] = 512
    fps: Annotated[int, Field(ge=1, le=120)] = 24
    quality_preset: QualityPreset = "balanced"
    memory_mode: MemoryMode = "none"
    # A GGUF transformer file (a local path) used in place of the checkpoint's
    # transformer by the ltx and ltx2 backends; "" for the checkpoint's own.
    transformer_file: GgufPath = ""
    continuity_mode: ContinuityMode = "latent"
    # increment by default: a new take is a new take, and reproducible
    new_take_seed: NewTakeSeed = "increment"
    # Free the video model before scoring and the encoders after each scene so
    # one heavy model is in memory at a time (slower: models reload per scene).
    release_models: bool = False
    # Text tokens the prompt generator stays within; None: the text encoder's
    # own (128 T5 tokens for LTX-Video, 1024 Gemma tokens for LTX-2; 128 as an
    # estimate for backends without a tokenizer).
    prompt_token_budget: Annotated[int, Field(ge=16, le=1024)] | None = None
    windows: WindowSettings = Field(default_factory=WindowSettings)
    # The story's LoRAs, under its characters' and scenes' (kg.schema).
    loras: list[LoraRef] = Field(default_factory=list, max_length=MAX_LORAS)
    best_of: BestOfSettings = Field(default_factory=BestOfSettings)
    references: ReferenceSettings = Field(default_factory=ReferenceSettings)
    hosted: HostedSettings = Field(default_factory=HostedSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    decay: DecaySettings = Field(default_factory=DecaySettings)
    drafting: DraftingSettings = Field(default_factory=DraftingSettings)
    color: ColorSettings = Field(default_factory=ColorSettings)
