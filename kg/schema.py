"""The story data model: what ``kg_state.json`` may contain.

Every model forbids unknown fields, so a typo in a hand-edited file is an error
that names its JSON path instead of a value that silently disappears. Large
arrays (tail latents, embeddings) never live here: takes reference
``.safetensors`` files by a path relative to the story folder.

Every value is bounded (`kg.fields`), so no story can make a page, a prompt
or a command slow or crash.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kg.fields import (
    MAX_STORY_TITLE,
    MAX_TITLE,
    EntityId,
    GgufPath,
    Key,
    Message,
    ModelId,
    Name80,
    Prompt,
    RelPath,
    ShortText,
    Text,
    Unit,
    Word,
    bounded_text,
    utc_now,
)
from kg.windows import MAX_WINDOW_FRAMES, MIN_WINDOW_FRAMES, window_problems

__all__ = [
    "SCHEMA_VERSION",
    "MAX_SCENE_SECONDS",
    "MAX_SCENE_FRAMES",
    "MAX_WINDOW_PROMPTS",
    "MAX_DIALOGUE_LINES",
    "MAX_LINE_CHARS",
    "MAX_SOUND_EFFECTS",
    "DialogueLine",
    "SceneSound",
    "CAMERA_MOVES",
    "WEATHERS",
    "SCENE_STATUSES",
    "PENDING_STATUSES",
    "GENERATED_STATUSES",
    "MEMORY_MODES",
    "MEMORY_MODE_NEEDS",
    "StrictModel",
    "Character",
    "Environment",
    "TakeRef",
    "WindowSettings",
    "TakeWindow",
    "BestOfChoice",
    "ReferenceSettings",
    "HostedSettings",
    "RaySettings",
    "PriceTable",
    "TakeCost",
    "UsedReference",
    "BestOfSettings",
    "ObjectiveMetric",
    "MAX_CANDIDATES",
    "GenerationParams",
    "TakeFiles",
    "Scores",
    "Take",
    "SceneNode",
    "SceneEdge",
    "DecaySettings",
    "Settings",
    "Story",
]

SCHEMA_VERSION = 2  # 2: long takes (windows, per-window prompts, overlap frames)
# A scene may be a long take: generated window by window (`kg.windows`).
MAX_SCENE_SECONDS = 120.0
MAX_SCENE_FRAMES = 2_881  # 120 s at 24 fps, 8k + 1
MAX_WINDOW_PROMPTS = 64

SceneStatus = Literal[
    "draft", "queued", "generating", "done", "failed", "interrupted", "stale"
]
SCENE_STATUSES: tuple[str, ...] = SceneStatus.__args__  # type: ignore[attr-defined]
Transition = Literal["continuous", "cut"]
Weather = Literal["clear", "overcast", "rain", "storm", "fog", "snow"]
WEATHERS: tuple[str, ...] = Weather.__args__  # type: ignore[attr-defined]
CameraMove = Literal[
    "static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out"
]
CAMERA_MOVES: tuple[str, ...] = CameraMove.__args__  # type: ignore[attr-defined]
ContinuityMode = Literal["latent", "frame", "none"]
QualityPreset = Literal["fast", "balanced", "high"]
MemoryMode = Literal[
    "none", "model_offload", "sequential_offload", "vae_tiling", "fp8", "group_offload"
]
# Scores a best-of-N objective can rank takes by (engine.best_of says how).
ObjectiveMetric = Literal[
    "seam_dino_cosine",
    "seam_pixel_mae",
    "seam_flow",
    "subject_consistency",
    "background_consistency",
    "clip_score",
    "temporal_flicker",
    "dynamic_degree",
    "motion",
]
MAX_CANDIDATES = 16
MAX_DIALOGUE_LINES = 12
MAX_LINE_CHARS = 300
MAX_SOUND_EFFECTS = 8
MEMORY_MODES: tuple[str, ...] = MemoryMode.__args__  # type: ignore[attr-defined]
# What each memory mode needs (engine.ltx.memory applies them; Settings shows it).
MEMORY_MODE_NEEDS: dict[str, str] = {
    "none": "all weights on the GPU: LTX-Video 2B ~24 GB, LTX-2 19B ~60 GB in bf16",
    "model_offload": "CUDA; components move to the GPU in turn (the largest one "
    "must fit: LTX-2's transformer ~38 GB bf16, ~19 GB fp8 or GGUF Q8)",
    "sequential_offload": "CUDA; layer by layer: least GPU memory, several "
    "times slower",
    "vae_tiling": "all weights on the GPU; decodes in tiles (lower decode peak)",
    "fp8": "any device; the transformer stored as float8, computed in bf16 "
    "(fp32 on CPU): about half its memory, small quality cost",
    "group_offload": "CUDA and enough CPU RAM for the weights; transformer and "
    "text encoder streamed block by block, overlapped with compute",
}
assert tuple(MEMORY_MODE_NEEDS) == MEMORY_MODES, "one entry per memory mode"
# What "generate all pending" and `storygraph run` pick by default.
PENDING_STATUSES = ("draft", "failed", "interrupted", "stale")
# Scenes that went through a generation (an edit of one makes it stale).
GENERATED_STATUSES = ("done", "failed", "interrupted")


class StrictModel(BaseModel):
    """Base for every stored model: unknown fields are errors."""

    # NaN and Infinity are refused: JSON cannot hold them (they would be saved
    # as null and the story could never be saved again).
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, allow_inf_nan=False
    )


class Character(StrictModel):
    id: EntityId
    name: Name80
    description: Text = ""
    visual_attributes: list[ShortText] = Field(
        default_factory=list,
        max_length=32,
        description="Short visual phrases, e.g. 'red scarf'.",
    )
    reference_images: list[RelPath] = Field(default_factory=list, max_length=32)
    # 1.0 is an ordinary character; a protagonist stays in memory longer.
    importance: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0


class Environment(StrictModel):
    id: EntityId
    name: Name80
    description: Text = ""
    lighting: ShortText = ""
    default_weather: Weather = "clear"
    reference_images: list[RelPath] = Field(default_factory=list, max_length=32)
    importance: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0


class TakeRef(StrictModel):
    """Points at one take of one scene (the continuity source of a take)."""

    scene_id: EntityId
    take: Annotated[int, Field(ge=1, le=1_000_000)]


class WindowSettings(StrictModel):
    """How a scene longer than the model's window is made (`kg.windows`).

    ``frames``: the window (8k + 1 pixel frames); ``overlap_frames``: frames
    each window repeats from the one before, and a continuous scene from its
    predecessor (a multiple of 8, smaller than the window); ``strength``: how
    strongly the carried frames hold (times the transition's strength at a
    scene join; the default is LTX's own extension default); ``adain_factor``:
    how far later windows' colour statistics are pulled toward the first
    window's (0 = not at all).
    """

    frames: Annotated[int, Field(ge=MIN_WINDOW_FRAMES, le=MAX_WINDOW_FRAMES)] = 121
    overlap_frames: Annotated[int, Field(ge=0, le=MAX_WINDOW_FRAMES)] = 24
    strength: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    adain_factor: Unit = 0.25

    @model_validator(mode="after")
    def _window_rules(self) -> WindowSettings:
        problems = window_problems(self.frames, self.overlap_frames, prefix="")
        if problems:
            raise ValueError("; ".join(problems))
        return self


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


class BestOfChoice(StrictModel):
    """Why a take was chosen among the candidates of one best-of-N run."""

    candidates: list[Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        max_length=MAX_CANDIDATES
    )
    objective: list[ObjectiveMetric] = Field(max_length=16)
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


class Scores(StrictModel):
    """Observer scores of one take; ``None`` means not computed (see reasons)."""

    clip_score: float | None = None
    subject_consistency: float | None = None
    background_consistency: float | None = None
    temporal_flicker: float | None = None
    seam_dino_cosine: float | None = None
    seam_pixel_mae: float | None = None
    # optical-flow motion (scoring.motion): VBench's dynamic degree (0 or 1),
    # mean motion in pixels at a 256-pixel short side, a frozen-clip flag,
    # and the flow across a continuous join against the flow beside it
    dynamic_degree: float | None = None
    motion: float | None = None
    static: bool | None = None
    seam_flow: float | None = None
    character_consistency: dict[Key, float] = Field(default_factory=dict)
    # metric name -> why it is missing and how to get it
    unavailable: dict[Key, Message] = Field(default_factory=dict)
    encoders: dict[Key, ModelId] = Field(default_factory=dict)
    scored_at: Word | None = None


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


class DialogueLine(StrictModel):
    """One spoken line of a scene: who says it, the words, and how."""

    character_id: EntityId
    text: Annotated[str, bounded_text(MAX_LINE_CHARS, 1)]
    # how it is said ("quietly", "in an excited voice"); empty: plainly
    delivery: Annotated[str, bounded_text(80)] = ""


class SceneSound(StrictModel):
    """What a scene sounds like besides speech (LTX-2 makes it with the picture)."""

    ambience: Annotated[str, bounded_text(200)] = ""
    effects: list[Annotated[str, bounded_text(120, 1)]] = Field(
        default_factory=list, max_length=MAX_SOUND_EFFECTS
    )


class SceneNode(StrictModel):
    id: EntityId
    title: Annotated[str, bounded_text(MAX_TITLE, 1)]
    character_ids: list[EntityId] = Field(default_factory=list, max_length=64)
    environment_id: EntityId | None = None
    pose: ShortText = ""
    motion: Text = ""
    weather: Weather | None = Field(
        default=None, description="None uses the environment's default weather."
    )
    lighting: ShortText = ""
    camera: CameraMove = "static"
    # Spoken lines in order, and the scene's sound (audio backends: ltx2).
    dialogue: list[DialogueLine] = Field(
        default_factory=list, max_length=MAX_DIALOGUE_LINES
    )
    sound: SceneSound = Field(default_factory=SceneSound)
    # Either a duration (converted with the story fps) or an explicit frame count.
    duration_s: Annotated[float, Field(gt=0.0, le=MAX_SCENE_SECONDS)] = 2.0
    num_frames: Annotated[int, Field(ge=1, le=MAX_SCENE_FRAMES)] | None = None
    # What happens in each window of a long take, in order: an entry replaces
    # the scene's motion in that window's prompt (the whole prompt when the
    # scene has a prompt override); empty entries and windows past the end
    # keep the one before.
    window_prompts: list[Text] = Field(
        default_factory=list, max_length=MAX_WINDOW_PROMPTS
    )
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    # Condition on the reference images of its characters and environment.
    use_references: bool = True
    prompt_override: Prompt | None = None
    negative_prompt: Prompt = ""
    status: SceneStatus = "draft"
    takes: list[Take] = Field(default_factory=list, max_length=10_000)
    selected_take: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    importance: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0

    @model_validator(mode="after")
    def _takes_consistent(self) -> SceneNode:
        indices = [t.index for t in self.takes]
        if len(set(indices)) != len(indices):
            raise ValueError(f"take indices must be unique, got {indices}")
        if self.selected_take is not None and self.selected_take not in indices:
            raise ValueError(
                f"selected_take {self.selected_take} is not one of the takes "
                f"{indices}; pick an existing take or null"
            )
        return self

    def take(self, index: int) -> Take:
        """The take with this index; ``KeyError`` when there is none."""
        for t in self.takes:
            if t.index == index:
                return t
        raise KeyError(f"scene {self.id!r} has no take {index}")

    @property
    def selected(self) -> Take | None:
        return None if self.selected_take is None else self.take(self.selected_take)

    def frame_count(self, fps: int) -> int:
        """Frames to generate: the explicit count, or duration times fps."""
        if self.num_frames is not None:
            return self.num_frames
        return max(1, round(self.duration_s * fps))


class SceneEdge(StrictModel):
    source: EntityId
    target: EntityId
    transition: Transition = "continuous"
    # How strongly the carried tail conditions the next clip (0 = not at all).
    strength: Unit = 1.0


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

    # fal's published 1080p prices for LTX-2 (engine.backends.fal); Replicate
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
        max_length=9,
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
    # Free the video model before scoring and the encoders after each scene so
    # one heavy model is in memory at a time (slower: models reload per scene).
    release_models: bool = False
    # Text tokens the prompt generator stays within; None: the text encoder's
    # own (128 T5 tokens for LTX-Video, 1024 Gemma tokens for LTX-2; 128 as an
    # estimate for backends without a tokenizer).
    prompt_token_budget: Annotated[int, Field(ge=16, le=1024)] | None = None
    windows: WindowSettings = Field(default_factory=WindowSettings)
    best_of: BestOfSettings = Field(default_factory=BestOfSettings)
    references: ReferenceSettings = Field(default_factory=ReferenceSettings)
    hosted: HostedSettings = Field(default_factory=HostedSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    decay: DecaySettings = Field(default_factory=DecaySettings)


class Story(StrictModel):
    # Cross-reference checks run on load and before every save, not on each
    # attribute assignment (they walk the whole graph).
    model_config = ConfigDict(
        extra="forbid", validate_assignment=False, allow_inf_nan=False
    )

    schema_version: Annotated[int, Field(ge=1, le=1_000)] = SCHEMA_VERSION
    title: Annotated[str, bounded_text(MAX_STORY_TITLE, 1)]
    description: Text = ""
    created_at: Word = Field(default_factory=utc_now)
    # Bumped by every save; a save over a newer revision is refused.
    revision: Annotated[int, Field(ge=0, lt=2**53)] = 0
    settings: Settings = Field(default_factory=Settings)
    characters: list[Character] = Field(default_factory=list)
    environments: list[Environment] = Field(default_factory=list)
    scenes: list[SceneNode] = Field(default_factory=list)
    edges: list[SceneEdge] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> Story:
        problems = _reference_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # Lookups -----------------------------------------------------------------
    def scene(self, scene_id: str) -> SceneNode:
        for s in self.scenes:
            if s.id == scene_id:
                return s
        raise KeyError(f"no scene {scene_id!r} in story {self.title!r}")

    def character(self, character_id: str) -> Character:
        for c in self.characters:
            if c.id == character_id:
                return c
        raise KeyError(f"no character {character_id!r} in story {self.title!r}")

    def environment(self, environment_id: str) -> Environment:
        for e in self.environments:
            if e.id == environment_id:
                return e
        raise KeyError(f"no environment {environment_id!r} in story {self.title!r}")


def _duplicates(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]


def _reference_problems(story: Story) -> list[str]:
    """Cross-reference checks pydantic cannot express field by field."""
    problems = []
    for name, items in (
        ("characters", story.characters),
        ("environments", story.environments),
        ("scenes", story.scenes),
    ):
        dup = _duplicates([i.id for i in items])
        if dup:
            problems.append(f"{name}: duplicate ids {dup}; ids must be unique")
    chars = {c.id for c in story.characters}
    envs = {e.id for e in story.environments}
    scenes = {s.id for s in story.scenes}
    for i, s in enumerate(story.scenes):
        for cid in s.character_ids:
            if cid not in chars:
                problems.append(
                    f"scenes[{i}].character_ids: unknown character {cid!r}; "
                    "add it under characters or remove it from the scene"
                )
        for j, line in enumerate(s.dialogue):
            if line.character_id not in chars:
                problems.append(
                    f"scenes[{i}].dialogue[{j}].character_id: unknown character "
                    f"{line.character_id!r}; add it under characters or give the "
                    "line to one of them"
                )
        if s.environment_id is not None and s.environment_id not in envs:
            problems.append(
                f"scenes[{i}].environment_id: unknown environment "
                f"{s.environment_id!r}; add it under environments or set null"
            )
    pairs: set[tuple[str, str]] = set()
    continuous_in: dict[str, str] = {}
    for i, e in enumerate(story.edges):
        for end in ("source", "target"):
            if getattr(e, end) not in scenes:
                problems.append(
                    f"edges[{i}].{end}: unknown scene {getattr(e, end)!r}; "
                    "edges must join existing scenes"
                )
        if e.source == e.target:
            problems.append(f"edges[{i}]: a scene cannot follow itself ({e.source!r})")
        if (e.source, e.target) in pairs:
            problems.append(f"edges[{i}]: duplicate edge {e.source!r} -> {e.target!r}")
        pairs.add((e.source, e.target))
        if e.transition == "continuous":
            if e.target in continuous_in:
                problems.append(
                    f"edges[{i}]: scene {e.target!r} already continues from "
                    f"{continuous_in[e.target]!r}; a scene continues from one "
                    "scene only, make this edge a 'cut'"
                )
            continuous_in[e.target] = e.source
    if not problems:
        cycle = _find_cycle(story)
        if cycle:
            problems.append(
                "edges: the story loops back on itself ("
                + " -> ".join(cycle)
                + "); remove one of these edges"
            )
    return problems


def _find_cycle(story: Story) -> list[str]:
    """One cycle of scene ids (first id repeated at the end), or [] if none.

    Kahn's algorithm on plain dicts: this runs on every load and save, where
    building a networkx graph would cost more than the check itself.
    """
    succ: dict[str, list[str]] = {s.id: [] for s in story.scenes}
    indeg = dict.fromkeys(succ, 0)
    for e in story.edges:
        succ[e.source].append(e.target)
        indeg[e.target] += 1
    ready = [n for n, d in indeg.items() if d == 0]
    while ready:
        node = ready.pop()
        for t in succ[node]:
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    left = {n for n, d in indeg.items() if d > 0}
    if not left:
        return []
    # every remaining node has a remaining predecessor: walk back to a repeat
    pred = {t: n for n in left for t in succ[n] if t in left}
    node, seen = next(iter(sorted(left))), []
    while node not in seen:
        seen.append(node)
        node = pred[node]
    cycle = seen[seen.index(node) :][::-1]
    return [*cycle, cycle[0]]
