"""A take as the story records it: how it was made, its files, scores and cost.

`Take` is one generation of a scene; `GenerationParams` what was asked and
what the backend did (continuity, windows, references); `Scores` one field
per metric of the table (`kg.metrics`) plus why any is missing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    create_model,
)

from kg.fields import (
    EntityId,
    Key,
    Message,
    ModelId,
    Prompt,
    RelPath,
    ShortText,
    Unit,
    Word,
    utc_now,
)
from kg.metrics import metric_table
from kg.settings import WindowSettings
from kg.vocabulary import (
    MAX_CANDIDATES,
    METRIC_NAMES,
    ContinuityMode,
    ObjectiveMetric,
    StrictModel,
)

__all__ = [
    "TakeRef",
    "TakeWindow",
    "UsedReference",
    "StageRecipe",
    "LoraUse",
    "SamplingRecipe",
    "SuppliedSound",
    "GenerationParams",
    "BestOfChoice",
    "TakeFiles",
    "Scores",
    "TakeCost",
    "ColorShift",
    "ColorCorrection",
    "Take",
]


class TakeRef(StrictModel):
    """Points at one take of one scene (the continuity source of a take)."""

    scene_id: EntityId
    take: Annotated[int, Field(ge=1, le=1_000_000)]


class TakeWindow(StrictModel):
    """One window of a long take as it was made."""

    start_frame: Annotated[int, Field(ge=0, le=100_000)]
    num_frames: Annotated[int, Field(ge=1, le=100_000)]
    seed: Annotated[int, Field(ge=0, lt=2**64)]
    prompt: Prompt = ""


class UsedReference(StrictModel):
    """A reference image that conditioned a take, and how strongly."""

    path: RelPath
    entity: EntityId  # the character or environment it belongs to
    strength: Unit


class StageRecipe(StrictModel):
    """One denoising pass of a take as it ran: its size, the sigmas it
    stepped (the scheduler's, as they reached the transformer, without the
    final 0) and its guidance recipe (CFG scale, 1 = none; guidance rescale;
    the audio stream's CFG; spatio-temporal and modality guidance scales,
    0 and 1 = off) and the LoRA adapters active in it."""

    name: ShortText
    width: Annotated[int, Field(ge=1, le=16_384)]
    height: Annotated[int, Field(ge=1, le=16_384)]
    sigmas: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(max_length=1_000)
    guidance: Annotated[float, Field(ge=0.0, le=1_000.0)] = 1.0
    guidance_rescale: Unit = 0.0
    audio_guidance: Annotated[float, Field(ge=0.0, le=1_000.0)] | None = None
    stg_scale: Annotated[float, Field(ge=0.0, le=1_000.0)] = 0.0
    stg_blocks: list[Annotated[int, Field(ge=0, le=1_000)]] = Field(
        default_factory=list, max_length=64
    )
    modality_scale: Annotated[float, Field(ge=0.0, le=1_000.0)] = 1.0
    # transformer passes a step (CFG's batch of two counts two; STG and
    # modality guidance one more each): what the guidance cost
    transformer_passes: Annotated[int, Field(ge=1, le=16)] = 1
    loras: list[ShortText] = Field(default_factory=list, max_length=16)


class LoraUse(StrictModel):
    """A LoRA applied to a take: which file, at what weight, where it came
    from (``story``, ``character <id>``, ``scene <id>``; ``stage 2`` for the
    makers' distilled LoRA), whether it read the references in context and
    whether it was fused into the weights."""

    name: ShortText
    file: ModelId  # as the story names it: a local file, or one in the story
    weight: Annotated[float, Field(ge=-10.0, le=10.0)] = 1.0
    scope: ShortText = ""
    in_context: bool = False
    fused: bool = False


class SuppliedSound(StrictModel):
    """The dialogue track a take's sound was held to (the scene's file), how
    long it plays, and what was done to fit it to the scene."""

    path: RelPath
    seconds: Annotated[float, Field(ge=0.0, le=100_000.0)]
    note: Message = ""


class SamplingRecipe(StrictModel):
    """How a take was stepped, for comparing with the model makers' recipes:
    the checkpoint kind and how it was decided, the model's release and how
    it was read, the quality preset, every stage's schedule and guidance, the
    LoRAs, and the strength a carried tail was held with at the scene join
    (None: nothing carried). A take made window by window records one stage
    per window and stage."""

    checkpoint_kind: Literal["dev", "distilled", "tiny"]
    kind_source: Message = ""
    # the model's release (LTX-2 "2.0", "2.3", "2.5") and how it was read
    model_version: ShortText | None = None
    version_source: Message = ""
    quality_preset: ShortText | None = None
    stages: list[StageRecipe] = Field(default_factory=list, max_length=64)
    loras: list[LoraUse] = Field(default_factory=list, max_length=16)
    join_strength: Unit | None = None


class GenerationParams(StrictModel):
    backend: Word
    model: ModelId = ""
    prompt: Prompt
    negative_prompt: Prompt = ""
    seed: Annotated[int, Field(ge=0, lt=2**64)]
    steps: Annotated[int, Field(ge=1, le=10_000)]
    guidance: Annotated[float, Field(ge=0.0, le=1_000.0)]
    width: Annotated[int, Field(ge=16, le=16_384)]
    height: Annotated[int, Field(ge=16, le=16_384)]
    num_frames: Annotated[int, Field(ge=1, le=100_000)]
    fps: Annotated[int, Field(ge=1, le=120)]
    continuity_requested: ContinuityMode = "none"
    continuity_used: ContinuityMode = "none"
    continuity_source: TakeRef | None = None
    # Why the used mode differs from the requested one (empty when it does not).
    continuity_note: Message = ""
    cache_key: Word = ""
    random_weights: bool = False
    # The window settings the take was made with (None: before long takes).
    windows: WindowSettings | None = None
    # Sound (backends that make it): whether the predecessor's audio tail was
    # carried into this take ("none": nothing carried, see continuity_note);
    # None: the backend makes no sound.
    audio_continuity: Literal["latent", "none"] | None = None
    # Reference images placed before the clip as conditioning (none: not used).
    references: list[UsedReference] = Field(default_factory=list, max_length=8)
    # The scene's dialogue track its sound was held to (None: made by the
    # model, or a backend without sound).
    dialogue_audio: SuppliedSound | None = None
    # The schedule and guidance the backend actually stepped (model backends;
    # None: a backend without steps, or a take made before they were kept).
    recipe: SamplingRecipe | None = None


class BestOfChoice(StrictModel):
    """Why a take was chosen among the candidates of one best-of-N run."""

    candidates: list[Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        max_length=MAX_CANDIDATES
    )
    objective: list[ObjectiveMetric] = Field(max_length=len(METRIC_NAMES))
    # the first metric of the objective on which the runner-up fell behind by
    # more than the metric's tolerance (None: a tie, broken by take order)
    deciding_metric: ObjectiveMetric | None = None
    # how far ahead of the runner-up, in that metric's units (better is > 0)
    margin: float | None = None
    runner_up: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class TakeFiles(StrictModel):
    video: RelPath | None = None
    # the take's sound, lossless (16-bit PCM .wav); the mp4 carries it as AAC
    audio: RelPath | None = None
    first_frame: RelPath | None = None
    last_frame: RelPath | None = None
    tail_latents: RelPath | None = None
    embeddings: RelPath | None = None


_MetricScores: Any = create_model(
    "_MetricScores",
    __base__=StrictModel,
    __module__=__name__,
    **{
        m.name: (float | None, Field(default=None, description=m.definition))
        for m in metric_table()
    },
)


class ColorShift(StrictModel):
    """Which way a colour difference went (`scoring.color`): this take's mean
    CIELAB lightness and chroma minus the reference's, and the turn of its
    mean hue in degrees (None where either side is nearly grey)."""

    lightness: Annotated[float, Field(ge=-100.0, le=100.0)]
    chroma: Annotated[float, Field(ge=-200.0, le=200.0)]
    hue: Annotated[float, Field(ge=-180.0, le=180.0)] | None = None

    def words(self) -> str:
        """The shift in words, "" when it is too small to name.

        >>> ColorShift(lightness=3.1, chroma=-2.4).words()
        'brighter, less saturated'
        >>> ColorShift(lightness=0.2, chroma=0.1, hue=12.0).words()
        'hue turned +12°'
        """
        parts = []
        # half a CIELAB unit: below what anyone sees side by side
        if abs(self.lightness) >= 0.5:
            parts.append("brighter" if self.lightness > 0 else "darker")
        if abs(self.chroma) >= 0.5:
            parts.append("more saturated" if self.chroma > 0 else "less saturated")
        if self.hue is not None and abs(self.hue) >= 5.0:
            parts.append(f"hue turned {self.hue:+.0f}°")
        return ", ".join(parts)


class Scores(_MetricScores):
    """Observer scores of one take; ``None`` means not computed (see reasons).

    One ``float | None`` field per metric of the table (`kg.metrics`, which
    says what each one means), then the frozen-clip flag (``static``,
    `scoring.motion.is_static`), the similarity to each character's
    references, why a metric is missing, the encoders used and when.
    """

    static: bool | None = None
    character_consistency: dict[Key, float] = Field(default_factory=dict)
    # metric name -> why it is missing and how to get it
    unavailable: dict[Key, Message] = Field(default_factory=dict)
    encoders: dict[Key, ModelId] = Field(default_factory=dict)
    scored_at: Word | None = None
    # colour metric name (join_color_shift, line_color_drift) -> which way
    # the colour went, beside its CIEDE2000 value
    color_shifts: dict[Key, ColorShift] = Field(default_factory=dict, max_length=8)


_clashes = [
    name
    for name in METRIC_NAMES
    if Scores.model_fields[name].annotation != float | None  # type: ignore[operator]
]


if _clashes:
    raise ValueError(
        f"kg.metrics.METRICS: {', '.join(_clashes)} is already a field of Scores; "
        "give the metric another name"
    )


class TakeCost(StrictModel):
    """What a take cost at a hosted API, and how that was worked out."""

    usd: Annotated[float, Field(ge=0.0, le=1_000_000.0)]
    # e.g. "price table of 2026-11-01: 5.04 s x $0.04/s"
    source: Message


class ColorCorrection(StrictModel):
    """A colour correction applied to a take toward its anchor (`engine.color`).

    ``method``: ``adain`` pulled the latents' per-channel statistics (latent
    backends, before decoding), ``reinhard``/``mkl`` transferred the pixels'
    colours in CIELAB (frame and hosted backends); ``mode``: toward the
    line's anchor or the scene's predecessor; ``strength``: how far (1: all
    the way). The anchor is a take or an environment's reference image. A
    pixel transfer keeps the original clip and frames (``original_*``), so
    undoing it restores them byte for byte.
    """

    method: Literal["adain", "reinhard", "mkl"]
    mode: Literal["line", "scene"]
    strength: Unit
    anchor_take: TakeRef | None = None
    anchor_image: RelPath | None = None
    original_video: RelPath | None = None
    original_first_frame: RelPath | None = None
    original_last_frame: RelPath | None = None


class Take(StrictModel):
    index: Annotated[int, Field(ge=1, le=1_000_000)]
    created_at: Word = Field(default_factory=utc_now)
    status: Literal["generating", "done", "failed"] = "done"
    params: GenerationParams
    files: TakeFiles = Field(default_factory=TakeFiles)
    timings: dict[Key, float] = Field(default_factory=dict)
    scores: Scores | None = None
    error: Message | None = None
    # Leading pixel frames that repeat the predecessor's tail (0 after a cut):
    # the clip plays on its own; playing takes in sequence skips them.
    overlap_frames: Annotated[int, Field(ge=0, le=100_000)] = 0
    # The windows of a long take (empty: made in one piece).
    windows: list[TakeWindow] = Field(default_factory=list, max_length=10_000)
    # Set on the take a best-of-N run chose (None: generated on its own).
    best_of: BestOfChoice | None = None
    # Hosted backends only: what the provider charged for it.
    cost: TakeCost | None = None
    # The colour correction applied toward its anchor (None: none).
    color_correction: ColorCorrection | None = None
