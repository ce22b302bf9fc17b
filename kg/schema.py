"""The story data model: what ``kg_state.json`` may contain.

Every model forbids unknown fields, so a typo in a hand-edited file is an error
that names its JSON path instead of a value that silently disappears. Large
arrays (tail latents, embeddings) never live here: takes reference
``.safetensors`` files by a path relative to the story folder.

Every value is bounded (`kg.fields`), so no story can make a page, a prompt
or a command slow or crash.

The story, its characters, environments, scenes and transitions live here;
a take's record is `kg.take`, the settings `kg.settings`, the shared words
and limits `kg.vocabulary`. This module names them all (``kg.schema.X``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    ConfigDict,
    Field,
    model_validator,
)

from kg.fields import (
    MAX_STORY_TITLE,
    MAX_TITLE,
    EntityId,
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
from kg.model_calls import ModelCall
from kg.settings import (  # noqa: F401 - the schema's public names
    MAX_LORAS,
    BestOfSettings,
    ColorSettings,
    DecaySettings,
    HostedSettings,
    LoraRef,
    PriceTable,
    RaySettings,
    ReferenceSettings,
    Settings,
    WindowSettings,
)
from kg.take import (  # noqa: F401 - the schema's public names
    BestOfChoice,
    ColorCorrection,
    ColorShift,
    GenerationParams,
    Scores,
    SuppliedSound,
    Take,
    TakeCost,
    TakeFiles,
    TakeRef,
    TakeWindow,
    UsedReference,
)
from kg.vocabulary import (  # noqa: F401 - the schema's public names
    CAMERA_MOVES,
    GENERATED_STATUSES,
    MAX_CANDIDATES,
    MAX_DIALOGUE_LINES,
    MAX_LINE_CHARS,
    MAX_SCENE_FRAMES,
    MAX_SCENE_SECONDS,
    MAX_SOUND_EFFECTS,
    MAX_WINDOW_PROMPTS,
    MEMORY_MODES,
    METRIC_NAMES,
    PENDING_STATUSES,
    SCENE_STATUSES,
    SCHEMA_VERSION,
    WEATHERS,
    CameraMove,
    ObjectiveMetric,
    SceneStatus,
    StrictModel,
    Transition,
    Weather,
)

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
    "StrictModel",
    "Character",
    "Environment",
    "LoraRef",
    "SuppliedSound",
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
    "METRIC_NAMES",
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
    # LoRAs of this character (one trained on the story's dataset, say),
    # attached in every scene it appears in (backends with LoRAs: ltx2).
    loras: list[LoraRef] = Field(default_factory=list, max_length=MAX_LORAS)
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


    # The window rules (``t*k + 1`` frames, whole latent frames of overlap
    # inside the window) are the backend's: `engine.catalog.settings_problems`
    # checks them against the chosen backend when settings are saved and
    # before generation, so a backend without windows ignores them.


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
    # The dialogue as a sound file in the story folder (a recording, any
    # TTS): a backend with sound holds its audio to it and makes the picture
    # to match; None: the dialogue is spoken from the prompt.
    dialogue_audio: RelPath | None = None
    # LoRAs of this scene (a camera LoRA, say), over the story's and its
    # characters' (backends with LoRAs: ltx2).
    loras: list[LoraRef] = Field(default_factory=list, max_length=MAX_LORAS)
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
    # Calls of the drafting model and their cost (counted against the budget).
    model_calls: list[ModelCall] = Field(default_factory=list, max_length=100_000)

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
