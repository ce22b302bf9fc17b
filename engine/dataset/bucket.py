"""Resolution buckets: one ``WxHxF`` shape every exported clip is brought to.

The LTX trainers' VAE compresses 32x in space and 8x in time, so a bucket's
width and height are multiples of 32 and its frame count is ``8k + 1``
(LTX-2 ``packages/ltx-trainer/docs/dataset-preparation.md``, "Resolution
Buckets"; the LTX-Video-Trainer's guide states the same constraints).
`fit_to_bucket` does what their preprocessing does: resize keeping the aspect
ratio until one side matches, centre-crop the other, keep the first ``F``
frames. A clip shorter than ``F`` frames is refused (never padded: repeated
frames would teach the model to freeze).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from engine.errors import BucketError

__all__ = [
    "SPATIAL_MULTIPLE",
    "TEMPORAL_MULTIPLE",
    "Bucket",
    "BucketError",
    "parse_bucket",
    "fit_to_bucket",
    "frames_fitting",
]

SPATIAL_MULTIPLE = 32  # the VAE's spatial compression
TEMPORAL_MULTIPLE = 8  # the VAE's temporal compression: frames = 8k + 1

_BUCKET_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Bucket:
    """Target clip shape: ``width`` x ``height`` pixels, ``frames`` frames.

    Examples
    --------
    >>> Bucket(64, 64, 9).text
    '64x64x9'
    >>> Bucket(64, 48, 9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    engine.errors.BucketError: --bucket 64x48x9: height 48 is not ...
    """

    width: int
    height: int
    frames: int

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < SPATIAL_MULTIPLE or value % SPATIAL_MULTIPLE:
                step = SPATIAL_MULTIPLE
                lower = max(step, value // step * step)
                upper = (value // step + 1) * step
                options = f"{lower} or {upper}" if lower < upper else f"{lower}"
                raise BucketError(
                    f"--bucket {self.text}: {name} {value} is not a multiple of "
                    f"{SPATIAL_MULTIPLE}; use {options}"
                )
        if self.frames < 1 or self.frames % TEMPORAL_MULTIPLE != 1:
            step = TEMPORAL_MULTIPLE
            lower = max(1, (self.frames - 1) // step * step + 1)
            upper = lower + step
            raise BucketError(
                f"--bucket {self.text}: {self.frames} frames is not 8k+1; "
                f"use {lower} or {upper}"
            )

    @property
    def text(self) -> str:
        """``WxHxF``, the trainers' ``--resolution-buckets`` spelling."""
        return f"{self.width}x{self.height}x{self.frames}"


def frames_fitting(frames: int) -> int | None:
    """The largest bucket frame count (``8k + 1``) a clip of ``frames`` holds.

    >>> frames_fitting(48), frames_fitting(49), frames_fitting(9), frames_fitting(0)
    (41, 49, 9, None)
    """
    if frames < 1:
        return None
    return (frames - 1) // TEMPORAL_MULTIPLE * TEMPORAL_MULTIPLE + 1


def parse_bucket(text: str) -> Bucket:
    """``"768x512x49"`` -> ``Bucket(768, 512, 49)``; `BucketError` names the fix.

    Examples
    --------
    >>> parse_bucket("96x64x17")
    Bucket(width=96, height=64, frames=17)
    >>> parse_bucket("96x64")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    engine.errors.BucketError: --bucket '96x64': write width x ...
    """
    m = _BUCKET_RE.match(text or "")
    if not m:
        raise BucketError(
            f"--bucket {text!r}: write width x height x frames, e.g. 768x512x49"
        )
    return Bucket(*(int(g) for g in m.groups()))


def fit_to_bucket(frames: np.ndarray, bucket: Bucket) -> np.ndarray:
    """Resize (aspect kept), centre-crop and trim ``[F, H, W, 3]`` uint8 frames.

    Returns ``[bucket.frames, bucket.height, bucket.width, 3]`` uint8. Raises
    ``ValueError`` when the clip has fewer frames than the bucket.
    """
    from PIL import Image

    n, h, w, _ = frames.shape
    if n < bucket.frames:
        raise ValueError(
            f"the clip has {n} frames, fewer than the bucket's {bucket.frames}"
        )
    scale = max(bucket.width / w, bucket.height / h)
    # the side that matches lands exactly on the bucket; the other is >= it
    new_w = max(bucket.width, round(w * scale))
    new_h = max(bucket.height, round(h * scale))
    left = (new_w - bucket.width) // 2
    top = (new_h - bucket.height) // 2
    box = (left, top, left + bucket.width, top + bucket.height)
    out = np.empty((bucket.frames, bucket.height, bucket.width, 3), np.uint8)
    for i in range(bucket.frames):
        img = Image.fromarray(frames[i])
        if (new_w, new_h) != (w, h):
            img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
        out[i] = np.asarray(img.crop(box))
    return out
