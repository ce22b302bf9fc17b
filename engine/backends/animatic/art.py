"""Drawing a storyboard frame: palette, backdrop, figures, caption, camera.

The pieces the ``animatic`` backend composes, all numpy and Pillow: a palette
from the environment, lighting and weather; a backdrop chosen from the
environment's words; figures and a caption card; rain, snow and fog; a camera
path and the index arrays that crop and resize each frame.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

import numpy as np

from engine.backend import (
    SceneContext,
)

__all__ = [
    "Palette",
    "scene_palette",
    "DISSOLVE",
    "Shape",
    "ZoomBuffers",
    "backdrop",
    "camera_path",
    "caption_card",
    "clothing_colour",
    "figure_sprite",
    "fit_frame",
    "weather_particles",
    "stable_hash",
]


# Fraction of the clip spent dissolving from the previous take's last frame.
DISSOLVE = 0.35
# How far the camera travels over a clip, as a fraction of the frame.
_PAN_TRAVEL = 0.25
_ZOOM = 1.25

_COLOURS = {
    "red": (196, 48, 43),
    "yellow": (232, 190, 40),
    "orange": (230, 120, 30),
    "gold": (212, 170, 55),
    "brass": (181, 140, 60),
    "green": (60, 140, 70),
    "blue": (50, 90, 190),
    "navy": (30, 40, 90),
    "purple": (110, 60, 150),
    "pink": (230, 130, 170),
    "white": (235, 235, 235),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "black": (30, 30, 30),
    "brown": (110, 70, 40),
}
# Sky (top, horizon) by lighting keyword, first match wins.
_SKIES = (
    (("night", "dark", "midnight"), (12, 14, 34), (44, 44, 78)),
    (("dusk", "blue hour", "twilight", "evening"), (38, 48, 110), (196, 118, 142)),
    (("dawn", "sunrise", "golden"), (246, 166, 108), (255, 222, 164)),
    (("sunset",), (120, 60, 110), (250, 140, 70)),
    (("afternoon", "late"), (112, 164, 226), (248, 206, 156)),
    (("noon", "day", "morning", "bright"), (96, 156, 236), (196, 222, 250)),
)
_DEFAULT_SKY = ((100, 160, 232), (200, 224, 248))


class Palette(NamedTuple):
    sky_top: np.ndarray  # [3] float
    sky_horizon: np.ndarray  # [3] float
    ground: np.ndarray  # [3] float
    backdrop: str  # water | hills | buildings | plain


class Shape(NamedTuple):
    height: int
    width: int


def _mix(a: np.ndarray, b: tuple[int, int, int] | np.ndarray, t: float) -> np.ndarray:
    return a * (1.0 - t) + np.asarray(b, dtype=np.float64) * t


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def scene_palette(scene: SceneContext) -> Palette:
    """Colours and backdrop kind from lighting, weather and environment words."""
    light = scene.lighting.lower()
    top, horizon = _DEFAULT_SKY
    for words, t, h in _SKIES:
        if any(w in light for w in words):
            top, horizon = t, h
            break
    sky_top = np.asarray(top, dtype=np.float64)
    sky_hor = np.asarray(horizon, dtype=np.float64)
    env = scene.environment.lower()
    if re.search(r"sea|harbou?r|quay|ocean|lake|river|shore|beach", env):
        backdrop, ground = "water", np.array([40.0, 92, 120])
    elif re.search(r"cliff|rock|mountain|hill|tower|lighthouse", env):
        backdrop, ground = "hills", np.array([52.0, 56, 60])
    elif re.search(r"street|city|town|village|house|room|hall|station", env):
        backdrop, ground = "buildings", np.array([96.0, 92, 88])
    elif re.search(r"forest|wood|park|garden|field|meadow", env):
        backdrop, ground = "hills", np.array([58.0, 110, 56])
    else:
        hue = stable_hash(env) % 3
        backdrop = "plain"
        ground = np.array([[90.0, 110, 70], [110, 96, 80], [80, 96, 110]][hue])
    weather = scene.weather
    if weather in ("overcast", "rain", "fog"):
        grey = (150, 154, 160) if weather != "rain" else (110, 116, 124)
        sky_top, sky_hor = _mix(sky_top, grey, 0.55), _mix(sky_hor, grey, 0.55)
    if weather == "storm":
        sky_top, sky_hor = (
            _mix(sky_top, (30, 34, 44), 0.7),
            _mix(sky_hor, (70, 76, 88), 0.6),
        )
        ground = ground * 0.6
    if weather == "snow":
        sky_top, sky_hor = (
            _mix(sky_top, (210, 214, 222), 0.5),
            _mix(sky_hor, (236, 238, 244), 0.5),
        )
        ground = _mix(ground, (236, 238, 244), 0.8)
    if re.search(r"dark|night", light):
        ground = ground * 0.45
    return Palette(sky_top, sky_hor, ground, backdrop)


def backdrop(
    shape: Shape, palette: Palette, weather: str, rng: np.random.Generator
) -> np.ndarray:
    """The world the camera moves over, ``[Hc, Wc, 3]`` uint8."""
    h, w = shape
    y = np.linspace(0.0, 1.0, h)[:, None, None]  # [Hc, 1, 1]
    x = np.arange(w)[None, :]  # [1, Wc]
    horizon = int(h * 0.58)
    sky_t = np.clip(y / 0.58, 0.0, 1.0)
    img = palette.sky_top * (1.0 - sky_t) + palette.sky_horizon * sky_t  # [Hc, 1, 3]
    img = np.broadcast_to(img, (h, w, 3)).copy()
    rows = np.arange(h)[:, None]  # [Hc, 1]
    if palette.backdrop == "hills":
        phase = rng.uniform(0, 2 * np.pi, 3)
        ridge = horizon - h * (
            0.10
            + 0.06 * np.sin(x / w * 2 * np.pi * 1.3 + phase[0])
            + 0.04 * np.sin(x / w * 2 * np.pi * 3.7 + phase[1])
            + 0.02 * np.sin(x / w * 2 * np.pi * 9.1 + phase[2])
        )
        img[rows >= ridge] = palette.ground * 0.8
    elif palette.backdrop == "buildings":
        edges = np.sort(rng.integers(0, w, max(4, w // 60)))
        heights = rng.uniform(0.08, 0.3, len(edges) + 1) * h
        tops = horizon - heights[np.searchsorted(edges, x[0])]  # [Wc]
        img[rows >= tops[None, :]] = palette.ground * 0.7
    ground_t = np.clip((y - 0.58) / 0.42, 0.0, 1.0)  # [Hc, 1, 1]
    ground = palette.ground * (1.0 - 0.35 * ground_t)
    if palette.backdrop == "water":
        shimmer = 1.0 + 0.08 * np.sin(rows / max(h, 1) * 90.0 + x / max(w, 1) * 7.0)
        ground = ground * shimmer[..., None]
    below = (rows >= horizon)[..., None]
    img = np.where(below, np.broadcast_to(ground, (h, w, 3)), img)
    if weather == "fog":
        density = 0.35 + 0.45 * np.clip((y - 0.3) / 0.7, 0.0, 1.0)  # [Hc, 1, 1]
        img = img * (1.0 - density) + np.array([205.0, 208, 212]) * density
    return np.clip(img, 0, 255).astype(np.uint8)


def _font(size: int):  # noqa: ANN202 - PIL font
    from PIL import ImageFont

    return ImageFont.load_default(size=max(8, size))


def figure_sprite(
    name: str, colour: tuple[int, int, int], height: int
) -> tuple[np.ndarray, np.ndarray]:
    """A named figure: RGB ``[h, w, 3]`` and a mask ``[h, w, 1]`` bool."""
    from PIL import Image, ImageDraw

    label_h = max(9, height // 5)
    body_h = height - label_h
    font = _font(label_h - 1)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    text_w = int(probe.textlength(name, font=font)) + 4
    w = max(body_h // 2 + 2, text_w)
    img = Image.new("RGBA", (w, height), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    cx, head = w // 2, max(3, body_h // 5)
    skin = (236, 200, 170, 255)
    d.ellipse((cx - head // 2, 0, cx + head // 2, head), fill=skin)
    d.rounded_rectangle(
        (cx - body_h // 5, head + 1, cx + body_h // 5, body_h - 1),
        radius=max(1, body_h // 12),
        fill=(*colour, 255),
        outline=(20, 20, 20, 255),
    )
    d.text(
        (w / 2, body_h + 1),
        name,
        fill=(255, 255, 255, 255),
        anchor="ma",
        font=font,
        stroke_width=1,
        stroke_fill=(0, 0, 0, 255),
    )
    arr = np.asarray(img)
    return arr[..., :3].copy(), arr[..., 3:] > 127


def caption_card(width: int, height: int, scene: SceneContext) -> np.ndarray:
    """Title and action on a dark card, ``[h, W, 3]`` uint8 (drawn opaque)."""
    from PIL import Image, ImageDraw

    card_h = max(12, height // 6)
    img = Image.new("RGB", (width, card_h), (16, 18, 24))
    d = ImageDraw.Draw(img)
    title_font = _font(int(card_h * 0.42))
    d.text((6, 2), scene.title, fill=(250, 246, 236), font=title_font)
    if scene.motion and card_h >= 24:
        d.text(
            (6, int(card_h * 0.55)),
            scene.motion,
            fill=(190, 196, 206),
            font=_font(int(card_h * 0.3)),
        )
    return np.asarray(img).copy()


def weather_particles(
    shape: Shape, weather: str, rng: np.random.Generator
) -> np.ndarray | None:
    """A tall single-channel texture of rain streaks or snow flakes, or None."""
    h, w = shape
    if weather not in ("rain", "storm", "snow"):
        return None
    tex = np.zeros((2 * h, w, 3), dtype=np.uint8)  # grey, so 3 equal channels
    if weather == "snow":
        n = max(8, h * w // 600)
        ys, xs = rng.integers(0, 2 * h - 1, n), rng.integers(0, w - 1, n)
        for dy in (0, 1):
            for dx in (0, 1):
                tex[ys + dy, xs + dx] = 240
        return tex
    n = max(8, h * w // (250 if weather == "storm" else 400))
    length = max(3, h // 20)
    ys, xs = rng.integers(0, 2 * h - length, n), rng.integers(0, w, n)
    for k in range(length):  # slanted streaks
        tex[ys + k, np.clip(xs - k // 3, 0, w - 1)] = 170
    return tex


class _Camera(NamedTuple):
    canvas: Shape
    # [F] top-left corners and crop sizes of each frame's view into the canvas
    y0: np.ndarray
    x0: np.ndarray
    crop_h: np.ndarray
    crop_w: np.ndarray


def camera_path(move: str, h: int, w: int, n: int) -> _Camera:
    """Where each frame looks in the canvas, eased in and out."""
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    ease = t * t * (3.0 - 2.0 * t)
    zeros = np.zeros(n, dtype=np.int64)
    full_h, full_w = np.full(n, h), np.full(n, w)
    if move in ("pan_left", "pan_right"):
        travel = round(w * _PAN_TRAVEL)
        x = np.round(ease * travel).astype(np.int64)
        x = x if move == "pan_right" else travel - x
        return _Camera(Shape(h, w + travel), zeros, x, full_h, full_w)
    if move in ("tilt_up", "tilt_down"):
        travel = round(h * _PAN_TRAVEL)
        y = np.round(ease * travel).astype(np.int64)
        y = y if move == "tilt_down" else travel - y
        return _Camera(Shape(h + travel, w), y, zeros, full_h, full_w)
    if move in ("zoom_in", "zoom_out"):
        scale = 1.0 + (_ZOOM - 1.0) * (ease if move == "zoom_in" else 1.0 - ease)
        ch = np.round(h / scale).astype(np.int64)
        cw = np.round(w / scale).astype(np.int64)
        return _Camera(Shape(h, w), (h - ch) // 2, (w - cw) // 2, ch, cw)
    return _Camera(Shape(h, w), zeros, zeros, full_h, full_w)


def fit_frame(frame: np.ndarray, h: int, w: int) -> np.ndarray:
    if frame.shape[:2] == (h, w):
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BILINEAR))


_CLOTHES = re.compile(r"coat|sweater|jacket|dress|shirt|cloak|robe|suit|uniform|scarf")


def clothing_colour(look: str) -> tuple[int, int, int] | None:
    """The colour of the first garment named, else the first colour named."""
    phrases = [p.lower() for p in look.split(",")]
    ordered = [p for p in phrases if _CLOTHES.search(p)] + phrases
    for phrase in ordered:
        for word in re.findall(r"[a-z]+", phrase):
            if word in _COLOURS:
                return _COLOURS[word]
    return None


class ZoomBuffers:
    """Nearest-neighbour crop-and-resize of the canvas into a frame, in place.

    The canvas is viewed as ``[Hc, Wc*3]`` bytes so the column gather is one
    byte-wise ``np.take`` (several times faster than gathering 3-byte pixels).
    """

    def __init__(self, canvas: np.ndarray, h: int, w: int) -> None:
        self.flat = canvas.reshape(canvas.shape[0], -1)  # [Hc, Wc*3]
        self.rows_buf = np.empty((h, self.flat.shape[1]), dtype=np.uint8)
        self.ys, self.xs = np.arange(h), np.arange(w)
        self.h, self.w = h, w

    def crop_resize(self, out: np.ndarray, y0: int, x0: int, ch: int, cw: int) -> None:
        rows = y0 + self.ys * ch // self.h  # [H]
        cols = x0 + self.xs * cw // self.w  # [W]
        cols3 = (cols[:, None] * 3 + np.arange(3)).ravel()  # [W*3]
        np.take(self.flat, rows, axis=0, out=self.rows_buf)
        np.take(self.rows_buf, cols3, axis=1, out=out.reshape(self.h, -1))
