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
    "GenerationParams",
    "BestOfChoice",
    "TakeFiles",
    "Scores",
    "TakeCost",
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
    modality_scale: Annotated[float, Field(ge=0.0, le=1_000.0)] = 1.0
    loras: list[ShortText] = Field(default_factory=list, max_length=16)


class LoraUse(StrictModel):
    """A LoRA applied to a take: which file, at what weight."""

    name: ShortText
    file: ModelId  # a local file outside the story, like a model folder
    weight: Annotated[float, Field(ge=-10.0, le=10.0)] = 1.0


class SamplingRecipe(StrictModel):
    """How a take was stepped, for comparing with the model makers' recipes:
    the checkpoint kind and how it was decided, every stage's schedule and
    guidance, the LoRAs, and the strength a carried tail was held with at
    the scene join (None: nothing carried)."""

    checkpoint_kind: Literal["dev", "distilled", "tiny"]
    kind_source: Message = ""
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
