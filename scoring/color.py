"""Colour drift metrics: CIEDE2000 at every continuous join and along a line.

- `srgb_to_lab`: 8-bit sRGB to CIELAB (D65), by IEC 61966-2-1's transfer
  function and matrix and CIE 15's L*a*b* formulas.
- `ciede2000`: the CIEDE2000 colour difference (CIE 142-2001), written as
  Sharma, Wu and Dalal give it ("The CIEDE2000 color-difference formula:
  implementation notes, supplementary test data, and mathematical
  observations", Color Research & Application 30(1), 2005), with
  ``kL = kC = kH = 1``; the tests hold it to the colour-science package's.
- `color_difference`: two sets of frames, each resized to `WORK_SIZE` x
  `WORK_SIZE` (area averaging) and averaged per pixel in CIELAB, compared
  pixel by pixel with CIEDE2000 and averaged; plus the shift of mean
  lightness (L*), mean chroma (C*) and the hue angle of the mean colour, so
  a difference reads "2.8 ΔE00, brighter, less saturated".

The two metrics of the table (`kg.metrics`):

- ``join_color_shift``: the previous take's last frame (as stored
  losslessly, its PNG; else its clip's last two frames) against this take's
  first `JOIN_FRAMES` new frames (after the ``overlap_frames`` that repeat
  it);
- ``line_color_drift``: the line's anchor (the request's ``anchor_frames``)
  against this take's last `JOIN_FRAMES` frames, so one curve per line
  shows where its look slipped.

Both are pure functions of stored frames, so ``storygraph score`` recomputes
them from the takes on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kg.observation import ObservationRequest
from kg.schema import ColorShift, Scores
from scoring.recording import NO_PREVIOUS, put_score, record_failure

__all__ = [
    "WORK_SIZE",
    "JOIN_FRAMES",
    "GREY_CHROMA",
    "srgb_to_lab",
    "ciede2000",
    "working_lab",
    "ColorDifference",
    "color_difference",
    "score_color",
]

WORK_SIZE = 64  # frames are compared at 64 x 64: colour, not detail or noise
JOIN_FRAMES = 4  # frames averaged on each side of a comparison
GREY_CHROMA = 2.0  # a mean colour with less chroma has no hue worth naming
NO_ANCHOR = "no anchor for the line (its first scene has no take yet)"

# IEC 61966-2-1 (sRGB): linear RGB to XYZ, and the D65 white point of CIE 15.
_RGB_TO_XYZ = np.array(
    [
        [0.4124, 0.3576, 0.1805],
        [0.2126, 0.7152, 0.0722],
        [0.0193, 0.1192, 0.9505],
    ]
)
_D65 = np.array([0.3127 / 0.3290, 1.0, (1 - 0.3127 - 0.3290) / 0.3290])  # from xy


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3]`` uint8 sRGB as float64 CIELAB (D65): L* in 0..100.

    >>> srgb_to_lab(np.array([255, 0, 0], np.uint8)).round(1).tolist()
    [53.2, 80.1, 67.2]
    """
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _D65
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 between CIELAB colours ``[..., 3]`` (broadcast), ``kL=kC=kH=1``.

    >>> # Sharma et al.'s first test pair
    >>> round(float(ciede2000(np.array([50, 2.6772, -79.7751]),
    ...                       np.array([50, 0.0, -82.7485]))), 4)
    2.0425
    """
    lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, h1p)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, h2p)

    dl = l2 - l1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)

    l_bar = (l1 + l2) / 2
    cp_bar = (c1p + c2p) / 2
    hsum = h1p + h2p
    h_bar = np.where(
        np.abs(h1p - h2p) <= 180,
        hsum / 2,
        np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2),
    )
    h_bar = np.where(c1p * c2p == 0, hsum, h_bar)
    t = (
        1
        - 0.17 * np.cos(np.radians(h_bar - 30))
        + 0.24 * np.cos(np.radians(2 * h_bar))
        + 0.32 * np.cos(np.radians(3 * h_bar + 6))
        - 0.20 * np.cos(np.radians(4 * h_bar - 63))
    )
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_bar**7 / (cp_bar**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * cp_bar
    s_h = 1 + 0.015 * cp_bar * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt(
        (dl / s_l) ** 2
        + (dc / s_c) ** 2
        + (dH / s_h) ** 2
        + r_t * (dc / s_c) * (dH / s_h)
    )


def working_lab(frames: np.ndarray) -> np.ndarray:
    """``[N, H, W, 3]`` (or one ``[H, W, 3]``) uint8 frames as one
    ``[WORK_SIZE, WORK_SIZE, 3]`` CIELAB image: each frame area-resized, then
    averaged per pixel in CIELAB."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be [N, H, W, 3] uint8, got {frames.shape}")
    size = (WORK_SIZE, WORK_SIZE)
    small = np.stack(
        [
            cv2.resize(np.ascontiguousarray(f), size, interpolation=cv2.INTER_AREA)
            for f in frames
        ]
    )
    return srgb_to_lab(small).mean(axis=0)


@dataclass(frozen=True)
class ColorDifference:
    """``delta_e``: mean CIEDE2000; the rest: this side minus the reference
    (`kg.schema.ColorShift`)."""

    delta_e: float
    lightness: float
    chroma: float
    hue: float | None

    def shift(self) -> ColorShift:
        return ColorShift(lightness=self.lightness, chroma=self.chroma, hue=self.hue)


def _mean_hue(lab: np.ndarray) -> float | None:
    a, b = float(lab[..., 1].mean()), float(lab[..., 2].mean())
    return None if np.hypot(a, b) < GREY_CHROMA else float(np.degrees(np.arctan2(b, a)))


def color_difference(reference: np.ndarray, frames: np.ndarray) -> ColorDifference:
    """How ``frames`` differ in colour from ``reference`` (module docstring).

    >>> grey = np.full((2, 32, 32, 3), 118, np.uint8)
    >>> d = color_difference(grey, grey + 10)
    >>> round(d.delta_e, 2), d.lightness > 0, d.hue
    (3.92, True, None)
    """
    ref, new = working_lab(reference), working_lab(frames)
    delta = float(ciede2000(ref, new).mean())
    chroma = float(np.hypot(new[..., 1], new[..., 2]).mean()) - float(
        np.hypot(ref[..., 1], ref[..., 2]).mean()
    )
    h_ref, h_new = _mean_hue(ref), _mean_hue(new)
    hue = None
    if h_ref is not None and h_new is not None:
        hue = (h_new - h_ref + 180.0) % 360.0 - 180.0
    return ColorDifference(
        delta_e=delta,
        lightness=float(new[..., 0].mean() - ref[..., 0].mean()),
        chroma=chroma,
        hue=hue,
    )


def _put(s: Scores, name: str, diff: ColorDifference) -> None:
    put_score(s, name, diff.delta_e)
    if getattr(s, name) is not None:
        s.color_shifts[name] = diff.shift()


def score_color(s: Scores, request: ObservationRequest, frames: np.ndarray) -> None:
    """Record ``join_color_shift`` and ``line_color_drift`` of a take's
    ``frames`` (``[F, H, W, 3]`` uint8); what cannot be scored says why."""
    # the previous take's last frame as stored losslessly (its PNG), else the
    # last two of its clip
    previous = request.previous_tail
    if request.previous_last_frame is not None:
        previous = np.asarray(request.previous_last_frame)[None]
    head = frames[request.overlap_frames : request.overlap_frames + JOIN_FRAMES]
    if previous is None or len(previous) == 0:
        s.unavailable["join_color_shift"] = NO_PREVIOUS
    elif len(head) == 0:
        s.unavailable["join_color_shift"] = (
            "no new frame after the join (every frame repeats the previous take)"
        )
    else:
        try:
            _put(s, "join_color_shift", color_difference(previous, head))
        except Exception as exc:
            record_failure(s, "join colour shift", ("join_color_shift",), exc)
    if request.anchor_frames is None or len(request.anchor_frames) == 0:
        s.unavailable["line_color_drift"] = NO_ANCHOR
        return
    try:
        diff = color_difference(request.anchor_frames, frames[-JOIN_FRAMES:])
        _put(s, "line_color_drift", diff)
    except Exception as exc:
        record_failure(s, "line colour drift", ("line_color_drift",), exc)
