"""The ``animatic`` backend: a storyboard clip drawn on the CPU, no weights.

It turns a scene's attributes into a moving sketch: a palette from the
environment, lighting and weather; a backdrop (water, hills, buildings) chosen
from the environment's words; a camera move (pan, tilt, zoom, static); the
characters as named figures; a caption card with the title and the action;
rain, snow and fog overlays. A continuous scene starts exactly on the previous
take's last frame and dissolves into the new composition, so cuts read as
continuous in a preview. It is deterministic for a seed and vectorised with
numpy: the backdrop is drawn once per clip and each frame is a crop, a resize
by index arrays and a few whole-frame integer operations.

It has no latent space (``supports_latent_continuity = False``): the engine
falls back to the last frame and records why. A preview has the frame counts
of the render it previews: a scene's duration becomes the frame count the
catalog's rule gives (``engine.catalog.plan_frames``, the LTX models' 8k+1:
49 frames for 2 s at 24 fps), so the README's dataset buckets fit its takes.
"""

from __future__ import annotations

import time

import numpy as np

from engine.backend import (
    BackendError,
    CancelToken,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    ProgressFn,
    SceneContext,
    VideoBackend,
    register_backend,
)
from engine.backends.animatic.art import (
    DISSOLVE,
    Palette,
    Shape,
    ZoomBuffers,
    backdrop,
    camera_path,
    caption_card,
    clothing_colour,
    figure_sprite,
    fit_frame,
    scene_palette,
    stable_hash,
    weather_particles,
)
from engine.catalog import plan_frames
from engine.progress import preview_due, report_preview

__all__ = ["AnimaticBackend", "Palette", "scene_palette"]


class AnimaticBackend(VideoBackend):
    """Storyboard clips on the CPU; see the module docstring."""

    name = "animatic"
    supports_latent_continuity = False
    version = "1"

    def __init__(self, **_options: object) -> None:
        pass

    def plan_frames(self, frames: int) -> int:
        """The frame count of the render this previews (`engine.catalog`).

        >>> AnimaticBackend().plan_frames(48), AnimaticBackend().plan_frames(1)
        (49, 9)
        """
        return plan_frames(self.name, frames)

    # 1. check inputs -----------------------------------------------------------
    @staticmethod
    def check_inputs(request: GenerationRequest) -> None:
        if request.width < 16 or request.height < 16:
            raise BackendError(
                f"width and height must be at least 16, got {request.width} and "
                f"{request.height}; raise the resolution in the story settings"
            )
        if request.num_frames < 1:
            raise BackendError(
                f"num_frames must be at least 1, got {request.num_frames}"
            )

    def generate(
        self, request: GenerationRequest, progress: ProgressFn, cancel: CancelToken
    ) -> GenerationResult:
        t_start = time.perf_counter()
        self.check_inputs(request)
        h, w, n = request.height, request.width, request.num_frames
        scene = request.scene or SceneContext(title=request.prompt[:60] or "Scene")
        rng = np.random.default_rng(request.seed)

        # 2. compose: backdrop, figures, caption, weather textures
        palette = scene_palette(scene)
        camera = camera_path(scene.camera, h, w, n)
        canvas = backdrop(camera.canvas, palette, scene.weather, rng)
        sprites = self._sprites(scene, h)
        card = caption_card(w, h, scene)
        particles = weather_particles(Shape(h, w), scene.weather, rng)
        flash = (
            int(rng.integers(n // 3, max(n // 3 + 1, n)))
            if scene.weather == "storm"
            else -1
        )
        previous, continuity_used, note = self._previous(request, h, w)
        dissolve = max(1, round(n * DISSOLVE)) if previous is not None else 0
        t_compose = time.perf_counter()

        # 3. render frame by frame
        frames = np.empty((n, h, w, 3), dtype=np.uint8)  # [F, H, W, 3]
        zoom = ZoomBuffers(canvas, h, w)
        if previous is not None:
            prev16 = previous.astype(np.int16)  # [H, W, 3]
            mix = np.empty((h, w, 3), dtype=np.int16)
        for t in range(n):
            if cancel.is_set():
                raise GenerationCancelled("the animatic was cancelled")
            out = frames[t]
            y0, x0 = int(camera.y0[t]), int(camera.x0[t])
            ch, cw = int(camera.crop_h[t]), int(camera.crop_w[t])
            if ch == h and cw == w:
                out[...] = canvas[y0 : y0 + h, x0 : x0 + w]
            else:
                zoom.crop_resize(out, y0, x0, ch, cw)
            self._draw_figures(out, sprites, t, n)
            if particles is not None:
                speed = (2 if scene.weather == "snow" else 9) * max(1, h // 96)
                off = (h - (t * speed) % h) % h
                np.maximum(out, particles[off : off + h], out=out)
            if t == flash:
                out >>= 1  # lightning: a bright washed-out frame
                out += 127
            out[h - card.shape[0] :] = card
            if t < dissolve:
                # previous + (new - previous) * a / 128; a = 0 gives frame 0 ==
                # the previous take's last frame exactly
                a = (t * 128) // dissolve
                np.subtract(out, prev16, out=mix, dtype=np.int16, casting="unsafe")
                mix *= a
                mix >>= 7
                mix += prev16
                np.copyto(out, mix, casting="unsafe")
            progress(t + 1, n)
            if t + 1 == n or preview_due(progress):  # about one a second
                report_preview(progress, out, f"rendered frame {t + 1}/{n}")
        t_end = time.perf_counter()
        return GenerationResult(
            frames=frames,
            timings={"compose": t_compose - t_start, "render": t_end - t_compose},
            continuity_used=continuity_used,
            continuity_note=note,
            # frame 0 is the previous take's last frame, exactly
            repeated_frames=1 if previous is not None else 0,
        )

    @staticmethod
    def _previous(
        request: GenerationRequest, h: int, w: int
    ) -> tuple[np.ndarray | None, str, str]:
        cont = request.continuity
        if cont is None or cont.last_frame is None:
            if cont is not None and cont.mode == "latent":
                return None, "none", "no last frame to continue from"
            return None, "none", ""
        note = ""
        if cont.mode == "latent":
            note = "the animatic has no latent space; continued from the last frame"
        if cont.last_frame.shape[:2] != (h, w):
            note = (note + "; " if note else "") + (
                f"previous frame {cont.last_frame.shape[1]}x{cont.last_frame.shape[0]} "
                f"resized to {w}x{h}"
            )
        return fit_frame(cont.last_frame, h, w), "frame", note

    @staticmethod
    def _sprites(scene: SceneContext, h: int) -> list[tuple[np.ndarray, np.ndarray]]:
        sprites = []
        fig_h = max(16, int(h * 0.34))
        looks = scene.character_looks or ("",) * len(scene.characters)
        for name, look in zip(scene.characters, looks, strict=False):
            colour = clothing_colour(f"{look}, {name}")
            if colour is None:
                k = stable_hash(name)
                colour = (60 + k % 160, 60 + (k >> 8) % 160, 60 + (k >> 16) % 160)
            sprites.append(figure_sprite(name, colour, fig_h))
        return sprites

    @staticmethod
    def _draw_figures(
        out: np.ndarray, sprites: list[tuple[np.ndarray, np.ndarray]], t: int, n: int
    ) -> None:
        h, w = out.shape[:2]
        k = len(sprites)
        for i, (rgb, mask) in enumerate(sprites):
            sh, sw = rgb.shape[:2]
            walk = int((t / max(1, n - 1)) * w * 0.06)  # figures stroll to the right
            x = int((i + 1) * w / (k + 1) - sw / 2) + walk
            y = int(h * 0.80) - sh - (1 if (t // 4 + i) % 2 else 0)
            x0, y0 = max(0, x), max(0, y)
            x1, y1 = min(w, x + sw), min(h, y + sh)
            if x1 <= x0 or y1 <= y0:
                continue
            region = out[y0:y1, x0:x1]
            np.copyto(
                region,
                rgb[y0 - y : y1 - y, x0 - x : x1 - x],
                where=mask[y0 - y : y1 - y, x0 - x : x1 - x],
            )


register_backend("animatic", AnimaticBackend)
