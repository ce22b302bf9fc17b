"""A cheap latent preview: what a take looks like while it is still denoising.

ComfyUI's ``Latent2RGBPreviewer`` (``latent_preview.py``) turns a latent
frame into a picture with one linear map per latent pixel, ``rgb = z @ F +
b`` in [-1, 1], clamped and shown as ``(rgb + 1) * 127.5``. For LTX-Video's
128-channel video VAE, ``F`` (128 x 3) and ``b`` are ComfyUI's
``comfy/latent_formats.py``, class ``LTXV`` (``latent_rgb_factors``,
``latent_rgb_factors_bias``), kept here as `LTXV_RGB_FACTORS` and
`LTXV_RGB_BIAS`.

Which latents: ComfyUI applies the factors to the sampler's clean prediction
``x0`` in the model's latent space. For ``LTXV`` that space is the VAE's
*normalised* latent (``process_in`` is the identity, the VAE applies its
per-channel statistics itself), the same as diffusers' ``_normalize_latents``
and so what the denoising loops of the ``ltx`` and ``ltx2`` backends hold.
They pass this step's ``x0`` (``x_t - sigma * v`` for flow matching), never
the noisy latents, which would show mostly noise until the last steps.

LTX-2: ComfyUI's format for it, ``LTXAV``, is a subclass of ``LTXV``; its
video latents have 128 channels too and go through the same factors here.
LTX-2's VAE was trained anew, so the colours are approximate: the preview
shows layout and motion, not the final colour.

Other widths have no factors (the tiny random-weight models have 8
channels): their preview is the latent frame's first three principal
components as false colour, which shows structure, not colour.

Which frame: ComfyUI shows the first latent frame. An LTX video's first
latent stands for one pixel frame (often the carried conditioning), so the
middle latent frame is shown by default. It is upsampled (bilinear) until its
long side is `engine.progress.PREVIEW_MAX_SIDE` pixels: one latent pixel is
32 x 32 pixels of the clip, so the preview is blurred by nature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import torch

from engine.progress import PREVIEW_MAX_SIDE, preview_due, report_preview

__all__ = [
    "LTXV_RGB_FACTORS",
    "LTXV_RGB_BIAS",
    "latent_rgb",
    "latent_preview",
    "offer_latent_preview",
]

log = logging.getLogger(__name__)

# comfy/latent_formats.py, class LTXV: latent_rgb_factors (rows: channels 0-127;
# columns: R, G, B) and latent_rgb_factors_bias
LTXV_RGB_FACTORS: tuple[tuple[float, float, float], ...] = (
    (1.1202e-02, -6.3815e-04, -1.0021e-02),
    (8.6031e-02, 6.5813e-02, 9.5409e-04),
    (-1.2576e-02, -7.5734e-03, -4.0528e-03),
    (9.4063e-03, -2.1688e-03, 2.6093e-03),
    (3.7636e-03, 1.2765e-02, 9.1548e-03),
    (2.1024e-02, -5.2973e-03, 3.4373e-03),
    (-8.8896e-03, -1.9703e-02, -1.8761e-02),
    (-1.3160e-02, -1.0523e-02, 1.9709e-03),
    (-1.5152e-03, -6.9891e-03, -7.5810e-03),
    (-1.7247e-03, 4.6560e-04, -3.3839e-03),
    (1.3617e-02, 4.7077e-03, -2.0045e-03),
    (1.0256e-02, 7.7318e-03, 1.3948e-02),
    (-1.6108e-02, -6.2151e-03, 1.1561e-03),
    (7.3407e-03, 1.5628e-02, 4.4865e-04),
    (9.5357e-04, -2.9518e-03, -1.4760e-02),
    (1.9143e-02, 1.0868e-02, 1.2264e-02),
    (4.4575e-03, 3.6682e-05, -6.8508e-03),
    (-4.5681e-04, 3.2570e-03, 7.7929e-03),
    (3.3902e-02, 3.3405e-02, 3.7454e-02),
    (-2.3001e-02, -2.4877e-03, -3.1033e-03),
    (5.0265e-02, 3.8841e-02, 3.3539e-02),
    (-4.1018e-03, -1.1095e-03, 1.5859e-03),
    (-1.2689e-01, -1.3107e-01, -2.1005e-01),
    (2.6276e-02, 1.4189e-02, -3.5963e-03),
    (-4.8679e-03, 8.8486e-03, 7.8029e-03),
    (-1.6610e-03, -4.8597e-03, -5.2060e-03),
    (-2.1010e-03, 2.3610e-03, 9.3796e-03),
    (-2.2482e-02, -2.1305e-02, -1.5087e-02),
    (-1.5753e-02, -1.0646e-02, -6.5083e-03),
    (-4.6975e-03, 5.0288e-03, -6.7390e-03),
    (1.1951e-02, 2.0712e-02, 1.6191e-02),
    (-6.3704e-03, -8.4827e-03, -9.5483e-03),
    (7.2610e-03, -9.9326e-03, -2.2978e-02),
    (-9.1904e-04, 6.2882e-03, 9.5720e-03),
    (-3.7178e-02, -3.7123e-02, -5.6713e-02),
    (-1.3373e-01, -1.0720e-01, -5.3801e-02),
    (-5.3702e-03, 8.1256e-03, 8.8397e-03),
    (-1.5247e-01, -2.1437e-01, -2.1843e-01),
    (3.1441e-02, 7.0335e-03, -9.7541e-03),
    (2.1528e-03, -8.9817e-03, -2.1023e-02),
    (3.8461e-03, -5.8957e-03, -1.5014e-02),
    (-4.3470e-03, -1.2940e-02, -1.5972e-02),
    (-5.4781e-03, -1.0842e-02, -3.0204e-03),
    (-6.5347e-03, 3.0806e-03, -1.0163e-02),
    (-5.0414e-03, -7.1503e-03, -8.9686e-04),
    (-8.5851e-03, -2.4351e-03, 1.0674e-03),
    (-9.0016e-03, -9.6493e-03, 1.5692e-03),
    (5.0914e-03, 1.2099e-02, 1.9968e-02),
    (1.3758e-02, 1.1669e-02, 8.1958e-03),
    (-1.0518e-02, -1.1575e-02, -4.1307e-03),
    (-2.8410e-02, -3.1266e-02, -2.2149e-02),
    (2.9336e-03, 3.6511e-02, 1.8717e-02),
    (-1.6703e-02, -1.6696e-02, -4.4529e-03),
    (4.8818e-02, 4.0063e-02, 8.7410e-03),
    (-1.5066e-02, -5.7328e-04, 2.9785e-03),
    (-1.7613e-02, -8.1034e-03, 1.3086e-02),
    (-9.2633e-03, 1.0803e-02, -6.3489e-03),
    (3.0851e-03, 4.7750e-04, 1.2347e-02),
    (-2.2785e-02, -2.3043e-02, -2.6005e-02),
    (-2.4787e-02, -1.5389e-02, -2.2104e-02),
    (-2.3572e-02, 1.0544e-03, 1.2361e-02),
    (-7.8915e-03, -1.2271e-03, -6.0968e-03),
    (-1.1478e-02, -1.2543e-03, 6.2679e-03),
    (-5.4229e-02, 2.6644e-02, 6.3394e-03),
    (4.4216e-03, -7.3338e-03, -1.0464e-02),
    (-4.5013e-03, 1.6082e-03, 1.4420e-02),
    (1.3673e-02, 8.8877e-03, 4.1253e-03),
    (-1.0145e-02, 9.0072e-03, 1.5695e-02),
    (-5.6234e-03, 1.1847e-03, 8.1261e-03),
    (-3.7171e-03, -5.3538e-03, 1.2590e-03),
    (2.9476e-02, 2.1424e-02, 3.0424e-02),
    (-3.4925e-02, -2.4340e-02, -2.5316e-02),
    (-3.4127e-02, -2.2406e-02, -1.0589e-02),
    (-1.7342e-02, -1.3249e-02, -1.0719e-02),
    (-2.1478e-03, -8.6051e-03, -2.9878e-03),
    (1.2089e-03, -4.2391e-03, -6.8569e-03),
    (9.0411e-04, -6.6886e-03, -6.7547e-05),
    (1.6048e-02, -1.0057e-02, -2.8929e-02),
    (1.2290e-03, 1.0163e-02, 1.8861e-02),
    (1.7264e-02, 2.7257e-04, 1.3785e-02),
    (-1.3482e-02, -3.6427e-03, 6.7481e-04),
    (4.6782e-03, -5.2423e-03, 2.4467e-03),
    (-5.9113e-03, -6.2244e-03, -1.8162e-03),
    (1.5496e-02, 1.4582e-02, 1.9514e-03),
    (7.4958e-03, 1.5886e-03, -8.2305e-03),
    (1.9086e-02, 1.6360e-03, -3.9674e-03),
    (-5.7021e-03, -2.7307e-03, -4.1066e-03),
    (1.7450e-03, 1.4602e-02, 2.5794e-02),
    (-8.2788e-04, 2.2902e-03, 4.5161e-03),
    (1.1632e-02, 8.9193e-03, -7.2813e-03),
    (7.5721e-03, 2.6784e-03, 1.1393e-02),
    (5.1939e-03, 3.6903e-03, 1.4049e-02),
    (-1.8383e-02, -2.2529e-02, -2.4477e-02),
    (5.8842e-04, -5.7874e-03, -1.4770e-02),
    (-1.6125e-02, -8.6101e-03, -1.4533e-02),
    (2.0540e-02, 2.0729e-02, 6.4338e-03),
    (3.3587e-03, -1.1226e-02, -1.6444e-02),
    (-1.4742e-03, -1.0489e-02, 1.7097e-03),
    (2.8130e-02, 2.3546e-02, 3.2791e-02),
    (-1.8532e-02, -1.2842e-02, -8.7756e-03),
    (-8.0533e-03, -1.0771e-02, -1.7536e-02),
    (-3.9009e-03, 1.6150e-02, 3.3359e-02),
    (-7.4554e-03, -1.4154e-02, -6.1910e-03),
    (3.4734e-03, -1.1370e-02, -1.0581e-02),
    (1.1476e-02, 3.9281e-03, 2.8231e-03),
    (7.1639e-03, -1.4741e-03, -3.8066e-03),
    (2.2250e-03, -8.7552e-03, -9.5719e-03),
    (2.4146e-02, 2.1696e-02, 2.8056e-02),
    (-5.4365e-03, -2.4291e-02, -1.7802e-02),
    (7.4263e-03, 1.0510e-02, 1.2705e-02),
    (6.2669e-03, 6.2658e-03, 1.9211e-02),
    (1.6378e-02, 9.4933e-03, 6.6971e-03),
    (1.7173e-02, 2.3601e-02, 2.3296e-02),
    (-1.4568e-02, -9.8279e-03, -1.1556e-02),
    (1.4431e-02, 1.4430e-02, 6.6362e-03),
    (-6.8230e-03, 1.8863e-02, 1.4555e-02),
    (6.1156e-03, 3.4700e-03, -2.6662e-03),
    (-2.6983e-03, -5.9402e-03, -9.2276e-03),
    (1.0235e-02, 7.4173e-03, -7.6243e-03),
    (-1.3255e-02, 1.9322e-02, -9.2153e-04),
    (2.4222e-03, -4.8039e-03, -1.5759e-02),
    (2.6244e-02, 2.5951e-02, 2.0249e-02),
    (1.5711e-02, 1.8498e-02, 2.7407e-03),
    (-2.1714e-03, 4.7214e-03, -2.2443e-02),
    (-7.4747e-03, 7.4166e-03, 1.4430e-02),
    (-8.3906e-03, -7.9776e-03, 9.7927e-03),
    (3.8321e-02, 9.6622e-03, -1.9268e-02),
    (-1.4605e-02, -6.7032e-03, 3.9675e-03),
)
LTXV_RGB_BIAS: tuple[float, float, float] = (-0.0571, -0.1657, -0.2512)


def _factors(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    factors = torch.tensor(LTXV_RGB_FACTORS, dtype=torch.float32, device=device)
    bias = torch.tensor(LTXV_RGB_BIAS, dtype=torch.float32, device=device)
    return factors, bias  # [128, 3], [3]


def _principal_rgb(z: torch.Tensor) -> torch.Tensor:
    """``z`` ``[C, h, w]`` as its first three principal components ``[h, w, 3]``
    in [-1, 1] (each signed so its largest loading is positive: steady
    colours from step to step)."""
    channels, h, w = z.shape
    x = z.reshape(channels, h * w)
    x = x - x.mean(dim=1, keepdim=True)
    cov = x @ x.T / max(h * w, 1)  # [C, C]
    _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
    top = vectors[:, -3:].flip(1)  # [C, k], k = min(C, 3)
    signs = torch.sign(top.gather(0, top.abs().argmax(dim=0, keepdim=True)))
    top = top * torch.where(signs == 0, torch.ones_like(signs), signs)
    parts = top.T @ x  # [k, h * w]
    if parts.shape[0] < 3:  # fewer than three channels: the rest are grey
        parts = torch.cat([parts, parts.new_zeros(3 - parts.shape[0], h * w)])
    scale = parts.abs().amax(dim=1, keepdim=True).clamp_min(1e-6)
    return (parts / scale).T.reshape(h, w, 3)


def latent_rgb(latents: torch.Tensor, frame: int | None = None) -> np.ndarray:
    """One latent frame of normalised latents ``[B, C, F, h, w]`` as uint8
    ``[h, w, 3]`` (batch item 0; ``frame`` None: the middle one). 128
    channels: ComfyUI's LTXV factors; any other width: false colour (see the
    module docstring).

    >>> z = torch.zeros(1, 128, 3, 2, 4)
    >>> latent_rgb(z).shape, latent_rgb(z)[0, 0].tolist()  # the bias alone
    ((2, 4, 3), [120, 106, 95])
    """
    if latents.ndim != 5:
        raise ValueError(
            "latents for a preview must be [B, C, F, h, w]; got shape "
            f"{tuple(latents.shape)}"
        )
    frames = latents.shape[2]
    index = frames // 2 if frame is None else frame
    if not -frames <= index < frames:
        raise ValueError(f"frame must be in [0, {frames}); got {frame}")
    with torch.no_grad():
        z = latents[0, :, index].float()  # [C, h, w], on the latents' device
        if z.shape[0] == len(LTXV_RGB_FACTORS):
            factors, bias = _factors(z.device)
            rgb = torch.einsum("chw,cr->hwr", z, factors) + bias
        else:
            rgb = _principal_rgb(z)
        pixels = ((rgb.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return pixels.cpu().numpy()


def latent_preview(
    latents: torch.Tensor, frame: int | None = None, max_side: int = PREVIEW_MAX_SIDE
) -> np.ndarray:
    """`latent_rgb` upsampled (bilinear) so its long side is ``max_side``.

    >>> latent_preview(torch.zeros(1, 128, 1, 16, 24)).shape
    (213, 320, 3)
    """
    small = latent_rgb(latents, frame)
    h, w = small.shape[:2]
    scale = max_side / max(h, w)
    if scale <= 1.0:
        return small
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)


def offer_latent_preview(
    progress: Any, step: int, steps: int, x0: Callable[[], torch.Tensor]
) -> None:
    """After denoising step ``step`` of ``steps``: when ``progress`` wants a
    preview (`engine.progress.preview_due`: at most one a second), make one
    from ``x0()`` (the step's clean prediction ``[B, C, F, h, w]``, asked
    for only then) as "latent preview, step s/S". A failed preview is
    logged and never stops the take."""
    if not preview_due(progress):
        return
    try:
        frame = latent_preview(x0())
    except Exception:  # noqa: BLE001 - a preview is never worth a take
        log.warning("no latent preview at step %d of %d", step, steps, exc_info=True)
        return
    report_preview(progress, frame, f"latent preview, step {step}/{steps}")
