"""Pixel-value transforms: RandAugment and conversion to a normalised float tensor."""
from __future__ import annotations

from typing import Any

import torch
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import RandAugment as _TorchvisionRandAugment

from unimm.config.errors import ConfigError
from unimm.data.transforms.functional import Target
from unimm.registry import PROCESSORS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class NormalizeImage:
    """PIL image or uint8 / float tensor -> float tensor ``[3, H, W]``, ``(x - mean) / std``.

    Values are first scaled to ``[0, 1]`` (uint8 / 255); a float tensor is taken as already
    in ``[0, 1]``.
    """

    random = False  # draws from the generator: a cache may keep what comes before it

    def __init__(self, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> None:
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        return F.normalize(to_float_tensor(image), self.mean, self.std), target

    def __repr__(self) -> str:
        return f"NormalizeImage(mean={self.mean}, std={self.std})"


def to_float_tensor(image: Any) -> torch.Tensor:
    """``[C, H, W]`` float in ``[0, 1]`` from a PIL image or a uint8 / float tensor."""
    if isinstance(image, Image.Image):
        return F.pil_to_tensor(image).float().div_(255)
    if image.dtype == torch.uint8:
        return image.float().div(255)
    return image.float()


class RandAugment:
    """torchvision's RandAugment, made reproducible from a generator.

    Its geometric operations (shear, translate, rotate) would move objects without moving
    their boxes, so a target with boxes is refused.
    """

    random = True  # draws from the generator: a cache may keep what comes before it

    def __init__(self, num_ops: int = 2, magnitude: int = 9) -> None:
        self.num_ops, self.magnitude = num_ops, magnitude
        self.op = _TorchvisionRandAugment(num_ops, magnitude, interpolation=InterpolationMode.BILINEAR)

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        if target is not None and "boxes" in target:
            raise ConfigError("rand_augment does not keep boxes consistent; use it only on datasets "
                              "without boxes (not in a detection transform)")
        if generator is None:
            return self.op(image), target
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.op(image), target

    def __repr__(self) -> str:
        return f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude})"


@PROCESSORS.register()
def normalize_image(mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> NormalizeImage:
    """Convert to a float tensor ``[3, H, W]`` and normalise per channel (ImageNet statistics by default)."""
    return NormalizeImage(mean, std)


@PROCESSORS.register()
def rand_augment(num_ops: int = 2, magnitude: int = 9) -> RandAugment:
    """RandAugment (torchvision): ``num_ops`` random operations at ``magnitude`` (0-30)."""
    return RandAugment(num_ops, magnitude)
