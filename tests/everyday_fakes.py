"""A backend whose phases a test holds open: load, denoise, decode chunk by chunk.

`PhasedBackend` goes through the phases a diffusers backend does (it reports
``load``, two denoising steps, then decodes six latents in three chunks
through the shared `decode_in_chunks` with a stand-in VAE), stopping at the
phases named in `GATES` until the test opens them. A test waits on
``GATES.reached[name]`` (an event: no sleeps), looks at the studio, then
calls ``GATES.open(name)``. In a browser test the server runs in another
process: a gate then opens when the file ``open-<name>`` appears in the
folder ``$STORYGRAPH_TEST_GATES``, and the decode gate also waits for the
generation's cancel.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from engine.backend import (
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    ProgressFn,
    VideoBackend,
    register_backend,
    report_phase,
)
from engine.backends.diffusers.frames import decode_in_chunks

__all__ = ["GATES", "Gates", "PhasedBackend", "NAME", "install"]

NAME = "phased"
HOLD_LIMIT_S = 120.0  # a gate never opened fails the generation, never hangs it
LATENTS, CHUNK = 6, 2  # three decode chunks


class Gates:
    """Phases a backend stops at until the test opens them."""

    def __init__(self) -> None:
        self.armed: set[str] = set()
        self.reached: dict[str, threading.Event] = {}
        self._opened: dict[str, threading.Event] = {}
        self.folder = os.environ.get("STORYGRAPH_TEST_GATES")
        self.calls: list[int] = []  # the seed of every generation, in order

    def arm(self, *names: str) -> None:
        """Stop at ``names`` from now on (and forget earlier gates)."""
        self.armed = set(names)
        self.reached = {n: threading.Event() for n in names}
        self._opened = {n: threading.Event() for n in names}

    def open(self, *names: str) -> None:
        for name in names or tuple(self._opened):
            self._opened[name].set()

    def _is_open(self, name: str, opened: threading.Event) -> bool:
        if opened.is_set():
            return True
        return bool(self.folder) and (Path(self.folder) / f"open-{name}").exists()

    def hold(self, name: str, cancel: CancelToken | None = None) -> None:
        """Stop here while the gate is closed; ``cancel`` given, stop first
        until the generation is cancelled (a decode that runs until Cancel)."""
        if name not in self.armed:
            return
        opened = self._opened[name]
        self.reached[name].set()
        waited = 0.0
        if cancel is not None:
            while not cancel.wait(0.05):
                waited += 0.05
                if waited > HOLD_LIMIT_S:
                    raise TimeoutError(f"nobody cancelled the {name} gate")
        while not self._is_open(name, opened):
            opened.wait(0.05)
            waited += 0.05
            if waited > HOLD_LIMIT_S:
                raise TimeoutError(f"the {name} gate was never opened")


GATES = Gates()
if os.environ.get("STORYGRAPH_TEST_ARM"):  # a studio server under a browser test
    GATES.arm(*os.environ["STORYGRAPH_TEST_ARM"].split(","))


class _Vae:
    """Enough of a causal VAE for `decode_in_chunks`: grey frames, one
    chunk's decode held at the ``decode`` gate."""

    dtype = torch.float32
    latents_mean = torch.zeros(1)
    latents_std = torch.ones(1)
    config = SimpleNamespace(scaling_factor=1.0, timestep_conditioning=False)

    def __init__(self, height: int, width: int, cancel: CancelToken | None) -> None:
        self.height, self.width, self.cancel = height, width, cancel
        self.calls = 0

    def decode(self, z: torch.Tensor, timestep: Any, return_dict: bool = False):
        self.calls += 1
        if self.calls == 2:  # the second chunk
            GATES.hold("decode", self.cancel)
        frames = 1 + 8 * (z.shape[2] - 1)
        return (torch.full((1, 3, frames, self.height, self.width), 0.5),)


class _Pipe:
    def __init__(self, vae: _Vae) -> None:
        self.vae = vae
        self.video_processor = SimpleNamespace(postprocess_video=self._post)

    @staticmethod
    def _denormalize_latents(latents, mean, std, scaling):  # noqa: ANN001, ANN205
        return latents

    @staticmethod
    def _post(video: torch.Tensor, output_type: str = "np") -> np.ndarray:
        return video.permute(0, 2, 3, 4, 1).numpy()  # [B, F, H, W, 3]


class PhasedBackend(VideoBackend):
    """Load, two denoising steps, a three-chunk decode; held at `GATES`."""

    name = NAME
    version = "1"

    def __init__(self, **_options: object) -> None:
        pass

    def generate(
        self, request: GenerationRequest, progress: ProgressFn, cancel: CancelToken
    ) -> GenerationResult:
        GATES.calls.append(request.seed)
        report_phase(progress, "load")
        GATES.hold("load")
        for step in (1, 2):
            if cancel.is_set():
                raise GenerationCancelled(f"cancelled at step {step} of 2")
            progress(step, 2)
            if step == 1:
                GATES.hold("denoise")
        # the seed shows in the pixels, so takes of other seeds differ
        latents = torch.full((1, 4, LATENTS, 2, 2), float(request.seed % 7))
        vae = _Vae(request.height, request.width, cancel if GATES.folder else None)
        frames = decode_in_chunks(
            _Pipe(vae), latents, chunk_latents=CHUNK, cancel=cancel, progress=progress
        )
        frames[:, :4, :4] = request.seed % 251  # a corner that tells seeds apart
        return GenerationResult(frames=frames, timings={"fake": 0.0})


def install(monkeypatch: Any = None) -> None:
    """Register the backend under `NAME`: for one test (undone after it) with
    ``monkeypatch``, else for the process (a studio server under test)."""
    if monkeypatch is None:
        register_backend(NAME, PhasedBackend)
        return
    from engine import backend as registry

    monkeypatch.setitem(registry._REGISTRY, NAME, PhasedBackend)


# Stories and an observer for the studio tests -----------------------------------


class HeldObserver:
    """Scores nothing; stops at the ``score`` gate; writes an embeddings file
    (so a test can see it removed after a cancel)."""

    def observe(self, request):  # noqa: ANN001, ANN201 - the TakeObserver contract
        from kg.observation import Observation
        from kg.paths import resolve_asset
        from kg.schema import Scores

        GATES.hold("score")
        path = resolve_asset(request.story_dir, request.embeddings_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"features")
        return Observation(Scores(), request.embeddings_path)

    def release(self) -> None:
        pass


def example_story(slug: str, backend: str = NAME, title: str = "") -> Path:
    """The example story, small and fast, on ``backend`` (the outputs root
    comes from the environment, as in the studio)."""
    from studio import services

    folder = services.create_story(slug, "", example=True)

    def shrink(story) -> None:  # noqa: ANN001 - Story
        story.settings.width, story.settings.height, story.settings.fps = 64, 64, 8
        story.settings.backend = backend
        if title:
            story.title = title
        for scene in story.scenes:
            scene.duration_s = 1.0

    services.edit_story(folder, shrink)
    return folder


def finish_everything(*folders: Path) -> None:
    """Open every gate, cancel what is left and wait for the workers."""
    from studio import services

    GATES.open()
    services.cancel_all()
    for folder in folders:
        assert services.wait_for_jobs(folder, timeout=120), f"{folder} still busy"
    GATES.arm()
