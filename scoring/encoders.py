"""Image and text encoders of the observer: CLIP (open_clip) and DINOv2 (transformers).

CLIP ViT-B-32 (Radford et al., 2021) gives the text-image alignment of
CLIPScore (Hessel et al., 2021) and the background features of VBench
(Huang et al., 2024); DINOv2 (Oquab et al., 2023) gives VBench's subject
features. Weights come from a local folder or the Hugging Face cache and are
never downloaded here (``storygraph fetch-models clip-vit-b-32 dinov2-small``
fetches them). Each encoder is held once (`scoring.held`: in the front ends'
model cache, until released), on the best device, runs batched in inference
mode, and returns L2-normalised float32 features on the CPU.

Tiny random-weight variants (`tiny_clip`, `tiny_dino`) and the real
architectures with random weights (`random_clip`, `random_dino`) are built from
configs in code, for tests and benchmarks; their ``model_id`` says so.

Preprocessing runs in torch on whole batches (resize the shorter side, centre
crop, normalise), following each model's own preprocessing configuration.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kg.weights import WeightsUnavailable, local_weights

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_CLIP",
    "DEFAULT_DINO",
    "FETCH_COMMAND",
    "WeightsUnavailable",
    "ImagePrep",
    "ImageEncoder",
    "ClipEncoder",
    "DinoEncoder",
    "best_device",
    "resolve_model_folder",
    "load_clip",
    "load_dino",
]

log = logging.getLogger(__name__)

# Hugging Face repos of the `fetch-models` catalog entries clip-vit-b-32 and
# dinov2-small; environment variables point elsewhere (a folder or a repo id).
DEFAULT_CLIP = "timm/vit_base_patch32_clip_224.openai"
DEFAULT_DINO = "facebook/dinov2-small"
CLIP_ENV = "STORYGRAPH_CLIP_MODEL"
DINO_ENV = "STORYGRAPH_DINO_MODEL"
FETCH_COMMAND = "storygraph fetch-models clip-vit-b-32 dinov2-small"

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImagePrep:
    """How frames become model input: shorter side to ``resize``, centre crop."""

    resize: int
    crop: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, frames: np.ndarray, device: torch.device) -> torch.Tensor:
        """``[N, H, W, 3]`` uint8 -> ``[N, 3, crop_h, crop_w]`` normalised float32."""
        import torch
        import torch.nn.functional as F

        frames = np.ascontiguousarray(frames)
        if not frames.flags.writeable:  # torch wants writable memory (PIL output)
            frames = frames.copy()
        x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2)  # [N, 3, H, W]
        h, w = x.shape[-2:]
        scale = self.resize / min(h, w)
        nh = max(self.crop[0], round(h * scale))
        nw = max(self.crop[1], round(w * scale))
        if (nh, nw) != (h, w) and device.type == "cpu":
            # torch's uint8 antialiased kernels (as PIL resizes): ~20x faster
            # on the CPU than the float path, within rounding of it
            x = F.interpolate(
                x.contiguous(memory_format=torch.channels_last),
                size=(nh, nw),
                mode="bicubic",
                antialias=True,
            )
        x = x.float().div_(255.0)
        if (nh, nw) != tuple(x.shape[-2:]):
            x = F.interpolate(
                x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False
            ).clamp_(0.0, 1.0)
        top, left = (nh - self.crop[0]) // 2, (nw - self.crop[1]) // 2
        x = x[:, :, top : top + self.crop[0], left : left + self.crop[1]]
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return (x - mean) / std


def best_device() -> torch.device:
    """CUDA when present, then Apple MPS, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class ImageEncoder:
    """A frozen image model: ``encode_images(frames) -> [N, D]`` unit vectors.

    Parameters
    ----------
    name : ``"clip"`` or ``"dino"``.
    model_id : where the weights came from; random weights say so.
    random_weights : True for test and benchmark models.
    """

    name = "image"

    def __init__(
        self,
        model: torch.nn.Module,
        prep: ImagePrep,
        *,
        model_id: str,
        random_weights: bool,
        device: torch.device | str | None = None,
    ) -> None:
        import torch

        self.device = torch.device(device) if device is not None else best_device()
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.prep = prep
        self.model_id = model_id
        self.random_weights = random_weights

    @property
    def fingerprint(self) -> str:
        """What the features depend on (keys of cached reference features)."""
        return f"{self.name}:{self.model_id}:{self.prep}"

    @property
    def label(self) -> str:
        """The model id as stored in ``Scores.encoders``."""
        if self.random_weights:
            return f"{self.model_id} (random weights)"
        return self.model_id

    def _forward(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_images(self, frames: np.ndarray, batch_size: int = 32) -> torch.Tensor:
        """Unit-length features ``[N, D]`` (CPU) of ``[N, H, W, 3]`` uint8 frames."""
        import torch
        import torch.nn.functional as F

        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(
                f"frames must be [N, H, W, 3] uint8, got {frames.shape} {frames.dtype}"
            )
        out = []
        with torch.inference_mode():
            for start in range(0, len(frames), batch_size):
                pixels = self.prep(frames[start : start + batch_size], self.device)
                feats = self._forward(pixels).float()
                out.append(F.normalize(feats, dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, 0)


class ClipEncoder(ImageEncoder):
    """An open_clip model with its tokenizer; text features for CLIPScore."""

    name = "clip"

    def __init__(self, model: torch.nn.Module, prep: ImagePrep, tokenizer: Any, **kw):
        super().__init__(model, prep, **kw)
        self.tokenizer = tokenizer

    def _forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised text features ``[N, D]`` (longer texts are truncated)."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            tokens = self.tokenizer(list(texts)).to(self.device)
            return F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu()


class DinoEncoder(ImageEncoder):
    """A transformers DINOv2 backbone; features are the normalised CLS token."""

    name = "dino"

    def _forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).pooler_output


# Loading ---------------------------------------------------------------------


def resolve_model_folder(
    source: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """A local folder holding a model (`kg.weights.local_weights`); never downloads.

    Raises `WeightsUnavailable` naming the command that fetches the weights.
    """
    return local_weights(source, cache_dir=cache_dir, fetch_hint=FETCH_COMMAND)


def _local_model(
    source: str | os.PathLike[str] | None,
    env: str,
    default: str,
    cache_dir: str | os.PathLike[str] | None,
) -> tuple[str, Path]:
    """The model id (``source``, else ``$env``, else ``default``) and its folder."""
    source = source or os.environ.get(env) or default
    return str(source), resolve_model_folder(source, cache_dir=cache_dir)


def _clip_tokenizer(model_cfg: dict[str, Any]) -> Any:
    import open_clip

    context = model_cfg.get("text_cfg", {}).get("context_length", 77)
    hf_name = model_cfg.get("text_cfg", {}).get("hf_tokenizer_name")
    if hf_name:
        return open_clip.HFTokenizer(hf_name, context_length=context)
    return open_clip.SimpleTokenizer(context_length=context)


def load_clip(
    source: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ClipEncoder:
    """CLIP from a folder with ``open_clip_config.json`` and weights, or the HF cache.

    ``source`` defaults to ``$STORYGRAPH_CLIP_MODEL`` or `DEFAULT_CLIP`.
    The weights are looked for before open_clip is imported (seconds), so a
    machine without them learns it at once.
    """
    model_id, folder = _local_model(source, CLIP_ENV, DEFAULT_CLIP, cache_dir)
    config_file = folder / "open_clip_config.json"
    if not config_file.is_file():
        raise WeightsUnavailable(
            f"{folder} has no open_clip_config.json; point {CLIP_ENV} at an "
            f"open_clip model folder or run '{FETCH_COMMAND}'"
        )
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise WeightsUnavailable(
            f"{folder} has a CLIP config but no weights; run '{FETCH_COMMAND}'"
        )
    import open_clip

    config = json.loads(config_file.read_text(encoding="utf-8"))
    model = open_clip.create_model(f"local-dir:{folder}", device="cpu")
    pp = {**config.get("preprocess_cfg", {})}
    size = config["model_cfg"]["vision_cfg"].get("image_size", 224)
    size = size if isinstance(size, int) else int(size[0])
    prep = ImagePrep(
        resize=size,
        crop=(size, size),
        mean=tuple(pp.get("mean", OPENAI_MEAN)),
        std=tuple(pp.get("std", OPENAI_STD)),
    )
    log.info("loaded CLIP %s from %s", model_id, folder)
    return ClipEncoder(
        model,
        prep,
        _clip_tokenizer(config["model_cfg"]),
        model_id=model_id,
        random_weights=False,
        device=device,
    )


def _dino_prep(processor: Any) -> ImagePrep:
    size, crop = processor.size, processor.crop_size
    resize = size.get("shortest_edge") or min(size["height"], size["width"])
    return ImagePrep(
        resize=int(resize),
        crop=(int(crop["height"]), int(crop["width"])),
        mean=tuple(processor.image_mean),
        std=tuple(processor.image_std),
    )


def load_dino(
    source: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> DinoEncoder:
    """DINOv2 from a transformers model folder or the HF cache.

    ``source`` defaults to ``$STORYGRAPH_DINO_MODEL`` or `DEFAULT_DINO`.
    """
    model_id, folder = _local_model(source, DINO_ENV, DEFAULT_DINO, cache_dir)
    from transformers import BitImageProcessor, Dinov2Model

    try:
        model = Dinov2Model.from_pretrained(folder, local_files_only=True)
    except OSError as exc:
        raise WeightsUnavailable(
            f"{folder} holds no DINOv2 weights ({exc}); run '{FETCH_COMMAND}'"
        ) from None
    if (folder / "preprocessor_config.json").is_file():
        processor = BitImageProcessor.from_pretrained(folder, local_files_only=True)
    else:
        processor = _default_dino_processor()
    log.info("loaded DINOv2 %s from %s", model_id, folder)
    return DinoEncoder(
        model,
        _dino_prep(processor),
        model_id=model_id,
        random_weights=False,
        device=device,
    )


def _default_dino_processor(resize: int = 256, crop: int = 224) -> Any:
    from transformers import BitImageProcessor

    # DINOv2's own preprocessing: shorter side 256, centre crop 224, ImageNet stats.
    return BitImageProcessor(
        size={"shortest_edge": resize},
        crop_size={"height": crop, "width": crop},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        do_convert_rgb=True,
    )
