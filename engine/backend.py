"""The video backend contract: ``generate(request, progress, cancel) -> result``.

Every backend (CPU animatic, LTX-Video and LTX-2 on diffusers, hosted APIs) takes a
frozen `GenerationRequest` and returns a `GenerationResult` of uint8 frames,
the tail latents when it has them, and stage timings. Progress and cancel go
through one contract modelled on diffusers' ``callback_on_step_end`` plus an
interrupt flag: the backend calls ``progress(step, total)`` after each step and
checks ``cancel.is_set()`` between steps, raising `GenerationCancelled`. Phases
beyond denoising (loading the model, decoding chunk by chunk) are reported
with ``report_phase(progress, "decode", chunk, chunks)`` (`engine.progress`),
which a plain step callback ignores; cancel is checked in every phase, between
decode chunks too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from engine.errors import BackendError, GenerationCancelled, OutOfMemoryError
from engine.progress import PHASES, Phase, PhaseProgress, report_phase

if TYPE_CHECKING:
    import numpy as np
    import torch

    from engine.color.anchor import ColorAnchor
    from kg.take import ColorCorrection, SamplingRecipe

__all__ = [
    "ContinuityInput",
    "SceneContext",
    "WindowPlan",
    "WindowReport",
    "GenerationRequest",
    "GenerationResult",
    "ReferenceImage",
    "LoraFile",
    "DialogueAudio",
    "ProgressFn",
    "PHASES",
    "Phase",
    "PhaseProgress",
    "report_phase",
    "CancelToken",
    "VideoBackend",
    "BackendError",
    "GenerationCancelled",
    "OutOfMemoryError",
    "register_backend",
    "get_backend",
    "available_backends",
]


class ProgressFn(Protocol):
    """``progress(step, total)``: steps done of the current window's total.

    A backend that makes a take in several windows (a long take) also says
    which: ``progress(step, total, window, windows)``, 1-based. Other
    phases go through `report_phase` (the engine passes a `PhaseProgress`).
    """

    def __call__(
        self, step: int, total: int, window: int = 1, windows: int = 1
    ) -> None: ...


class CancelToken(threading.Event):
    """Set by the UI or Ctrl-C; checked by backends between steps and decode
    chunks, and by the engine while it encodes and scores."""


@dataclass(frozen=True)
class ContinuityInput:
    """What a scene carries over from its predecessor's selected take.

    ``tail_latents``: ``[B, C, F, H, W]`` normalised latents of the last latent
    frames (latent mode); ``last_frame``: ``[H, W, 3]`` uint8 (frame mode and
    fallback). ``latent_meta`` says which model and size produced the latents.
    """

    mode: Literal["latent", "frame"]
    tail_latents: torch.Tensor | None = None
    last_frame: np.ndarray | None = None
    latent_meta: dict[str, str] = field(default_factory=dict)
    strength: float = 1.0
    # ``[1, n, D]`` the predecessor's audio tail in the audio stream's packed
    # normalised latent space (backends with sound; None: it had none)
    tail_audio_latents: torch.Tensor | None = None
    # ``[H, W, 3]`` uint8: the predecessor's frame just before the span of the
    # tail's latents 1..k-1 (its clip's frame ``-(1 + 8 (k - 1))``), for a
    # backend that gives the causal VAE's one-frame slot a genuine one-frame
    # latent (None: not read)
    lead_frame: np.ndarray | None = None


@dataclass(frozen=True)
class SceneContext:
    """Scene attributes a storyboard-style backend draws (LTX ignores them)."""

    title: str
    characters: tuple[str, ...] = ()  # display names
    # one phrase of visual attributes per character ("long red hair, yellow coat")
    character_looks: tuple[str, ...] = ()
    environment: str = ""
    lighting: str = ""
    weather: str = "clear"
    camera: str = "static"
    motion: str = ""


@dataclass(frozen=True)
class WindowPlan:
    """How a backend with a fixed window makes a longer take (and carries a join).

    ``frames``: the model's window in pixel frames; ``overlap_frames``: frames
    each window repeats from the one before (and a scene from its
    predecessor's tail); ``strength``: how strongly the previous window's
    tail holds inside a long take; ``join_strength``: how strongly a
    predecessor's tail holds at a scene join (times the transition's
    strength; 1, the makers' in-place context); ``adain_factor``: how
    far later windows' latent statistics are pulled toward the first window;
    ``prompts``: one prompt per window (the last repeats; empty: the request's
    prompt throughout). Backends without windows ignore all of it.
    """

    frames: int = 121
    overlap_frames: int = 24
    strength: float = 0.5
    adain_factor: float = 0.25
    prompts: tuple[str, ...] = ()
    join_strength: float = 1.0


@dataclass(frozen=True)
class WindowReport:
    """One window of a take as it was made: pixel frames, seed and prompt."""

    start_frame: int
    num_frames: int
    seed: int
    prompt: str


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    width: int
    height: int
    num_frames: int
    fps: int
    seed: int
    steps: int
    guidance: float
    negative_prompt: str = ""
    # the story's quality preset: backends with recipes beyond steps and CFG
    # (LTX-2's guidance terms) read the rest of the preset from it
    quality_preset: str = "balanced"
    model: str = ""
    memory_mode: str = "none"
    # a GGUF transformer in place of the checkpoint's (ltx, ltx2; "" none)
    transformer_file: str = ""
    continuity: ContinuityInput | None = None
    scene: SceneContext | None = None
    windows: WindowPlan = field(default_factory=WindowPlan)
    # reference images to condition on (backends with supports_references)
    references: tuple[ReferenceImage, ...] = ()
    # the scene's LoRA stack, checked (backends with supports_loras)
    loras: tuple[LoraFile, ...] = ()
    # the scene's dialogue track to hold the sound to (backends with
    # supports_dialogue_audio; None: the model makes the sound)
    dialogue_audio: DialogueAudio | None = None
    # hosted backends: timeout, retries and prices (kg.schema.HostedSettings)
    hosted: Any = None
    # what the take's colour is held to (`engine.color.anchor`; None: no
    # correction): a latent backend pulls its latents toward the anchor's
    # latent statistics and says so in `GenerationResult.color_correction`
    color_anchor: ColorAnchor | None = None

    def window_prompts(self) -> tuple[str, ...]:
        """One prompt per window: an empty entry keeps the one before (the
        request's prompt for the first); the request's prompt alone when the
        scene has no window prompts."""
        prompts: list[str] = []
        for text in self.windows.prompts:
            prompts.append(text or (prompts[-1] if prompts else self.prompt))
        return tuple(prompts) or (self.prompt,)


@dataclass(frozen=True)
class ReferenceImage:
    """A reference image as a keyframe placed before the clip (never frame 0).

    ``frame`` is ``[H, W, 3]`` uint8 at the request's size; ``path`` and
    ``entity`` say where it came from (recorded in the take).
    """

    path: str
    entity: str
    frame: np.ndarray = field(repr=False)
    strength: float


@dataclass(frozen=True)
class LoraFile:
    """A LoRA of a take's stack (`engine.loras`): ``path`` as the story names
    it, ``file`` where it was found, its weight, where it comes from
    (``story``, ``character <id>``, ``scene <id>``), whether it reads the
    references in context (an IC-LoRA), and ``digest`` (its header, size and
    modification time: the cache key's)."""

    path: str
    file: str
    weight: float
    scope: str
    in_context: bool = False
    digest: str = ""


@dataclass(frozen=True)
class DialogueAudio:
    """A scene's dialogue track (`engine.dialogue_audio`): its path in the
    story, its bytes (a request is plain data: it travels to workers), how
    long it plays and its sha256."""

    path: str
    data: bytes = field(repr=False)
    seconds: float
    digest: str


@dataclass
class GenerationResult:
    frames: np.ndarray  # [F, H, W, 3] uint8
    tail_latents: torch.Tensor | None = None  # [B, C, F_tail, h, w]
    latent_meta: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # What the backend actually did with the continuity input, and why if it
    # differs from what was asked.
    continuity_used: Literal["latent", "frame", "none"] = "none"
    continuity_note: str = ""
    random_weights: bool = False
    # Leading pixel frames that repeat the predecessor's tail (0 when nothing
    # was carried): playing takes in sequence skips them.
    repeated_frames: int = 0
    # The windows of a long take, in order (empty: made in one piece).
    windows: tuple[WindowReport, ...] = ()
    # Hosted backends: (USD, how it was worked out).
    cost: tuple[float, str] | None = None
    # Backends with sound: ``[channels, samples]`` float32 in [-1, 1], exactly
    # as long as the frames, at ``audio_rate`` Hz; the audio tail latents for
    # the next scene; whether the predecessor's audio tail was carried.
    audio: np.ndarray | None = None
    audio_rate: int = 0
    tail_audio_latents: torch.Tensor | None = None
    audio_continuity_used: Literal["latent", "none"] = "none"
    # The schedule, guidance, LoRAs and join strength it actually used
    # (`kg.take.SamplingRecipe`; None: a backend without denoising steps).
    recipe: SamplingRecipe | None = None
    # The colour correction applied toward ``request.color_anchor`` (a latent
    # backend's AdaIN pull, or the engine's pixel transfer after it, which
    # keeps the uncorrected frames in ``original_frames``).
    color_correction: ColorCorrection | None = None
    original_frames: np.ndarray | None = None


class VideoBackend:
    """Base of every backend: what the engine calls, each with a documented default.

    A backend sets ``name`` and implements `generate`; everything else is an
    optional capability whose default here is what a backend without it
    means. The engine calls these methods and never probes for attributes.
    """

    #: registry name, recorded in every take
    name: str = "backend"
    #: part of the take cache key: bump it when the same request would give
    #: other frames
    version: str = ""
    #: whether the backend takes and returns tail latents (else the engine
    #: carries a last frame, or nothing)
    supports_latent_continuity: bool = False
    #: whether the backend conditions on ``request.references`` (else the
    #: engine neither reads nor records them)
    supports_references: bool = False
    #: whether the backend attaches ``request.loras`` (else the engine
    #: neither reads nor records them)
    supports_loras: bool = False
    #: whether the backend holds its sound to ``request.dialogue_audio``
    #: (else the engine does not read the scene's track)
    supports_dialogue_audio: bool = False

    def check_loras(self, model: str, loras: tuple[LoraFile, ...]) -> None:
        """Refuse, before a take begins, LoRAs that ``model`` cannot take
        (raise `kg.errors.StoryError` naming each file). Default: nothing to
        check (a backend without LoRAs never gets any)."""

    @property
    def makes_audio(self) -> bool:
        """Whether the backend makes sound with the picture (then the prompt
        carries the scene's dialogue and sound, and takes keep the audio).
        Default: its catalog spec's ``makes_audio`` (False outside it)."""
        return self._spec_flag("makes_audio")

    @property
    def charges(self) -> bool:
        """Whether jobs cost money the story tracks (hosted APIs): the engine
        then checks the budget before submitting and records each take's cost.
        Default: its catalog spec's ``hosted`` (False outside it)."""
        return self._spec_flag("hosted")

    def _spec_flag(self, name: str) -> bool:
        from engine.catalog import CATALOG

        entry = CATALOG.get(self.name)
        return bool(entry is not None and getattr(entry, name))

    def generate(
        self, request: GenerationRequest, progress: ProgressFn, cancel: CancelToken
    ) -> GenerationResult:
        """Make the clip; report ``progress(step, total)``, stop when ``cancel``."""
        raise NotImplementedError(f"{type(self).__name__} must implement generate")

    def plan_frames(self, frames: int) -> int:
        """The frame count to make for a wanted one. Default: exactly ``frames``."""
        return frames

    def preset(self, quality_preset: str, model: str) -> tuple[int, float]:
        """Steps and guidance of a quality preset. Default: the backend's
        catalog presets (`engine.catalog`); one step without guidance for a
        backend that has none."""
        from engine.catalog import CATALOG, resolve_preset

        if self.name not in CATALOG:
            return 1, 0.0
        chosen = resolve_preset(self.name, quality_preset, model)
        return chosen.steps, chosen.guidance

    def prompt_tokens(self, model: str) -> tuple[Callable[[str], int], int] | None:
        """The text encoder's token counter and budget. Default: None (the
        prompt generator's estimate and ``settings.prompt_token_budget``)."""
        return None

    def release(self) -> None:
        """Free loaded models and device memory. Default: nothing to free."""

    def estimate_cost(
        self, request: GenerationRequest, hosted: Any
    ) -> tuple[float, str] | None:
        """(USD, how) a request would cost, for the budget check. Default:
        None (local backends cost nothing the story tracks)."""
        return None


_REGISTRY: dict[str, Callable[..., VideoBackend]] = {}


def register_backend(name: str, factory: Callable[..., VideoBackend]) -> None:
    _REGISTRY[name] = factory


def available_backends() -> list[str]:
    from engine.catalog import backend_names

    return sorted(set(_REGISTRY) | set(backend_names()))


def get_backend(name: str, **options: Any) -> VideoBackend:
    """Build a backend by name (``animatic``, ``ltx``...): a catalog backend's
    module is imported on first use and registers itself."""
    from engine.catalog import CATALOG

    if name not in _REGISTRY and name in CATALOG:
        import importlib

        importlib.import_module(CATALOG[name].module)  # registers itself
    if name not in _REGISTRY:
        raise BackendError(
            f"unknown backend {name!r}; choose one of {available_backends()}"
        )
    return _REGISTRY[name](**options)
