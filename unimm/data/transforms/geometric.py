"""Resizing, cropping and flipping transforms (DETR and MAE augmentation, VL resizing)."""
from __future__ import annotations

import math
from typing import Any

import torch

from torchvision.transforms import InterpolationMode

from unimm.data.transforms import functional as TF
from unimm.data.transforms.functional import Target
from unimm.data.transforms.pipeline import random_float, random_int
from unimm.registry import PROCESSORS


class RandomHorizontalFlip:
    random = True  # draws from the generator: a cache may keep what comes before it

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        if random_float(generator) < self.prob:
            return TF.hflip(image, target)
        return image, target

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(prob={self.prob})"


class ResizeShortest:
    """Deterministic: shorter side to ``size``, longer side at most ``max_size``."""

    random = False  # draws from the generator: a cache may keep what comes before it

    def __init__(self, size: int, max_size: int | None = None) -> None:
        self.size, self.max_size = size, max_size

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        return TF.resize_shortest(image, target, self.size, self.max_size)

    def __repr__(self) -> str:
        return f"ResizeShortest(size={self.size}, max_size={self.max_size})"


class ResizeCenterCrop:
    """CLIP's geometry: shorter side to ``size`` (bicubic), then the central ``size x size`` square."""

    random = False  # draws from the generator: a cache may keep what comes before it

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        height, width = TF.shortest_side_size(*TF.image_size(image), self.size, None)
        image, target = TF.resize(image, target, height, width, interpolation=InterpolationMode.BICUBIC)
        return TF.center_crop(image, target, self.size, self.size)

    def __repr__(self) -> str:
        return f"ResizeCenterCrop(size={self.size})"


class RandomResize:
    """Shorter side to a size drawn uniformly from ``sizes``, longer side at most ``max_size``."""

    random = True  # draws from the generator: a cache may keep what comes before it

    def __init__(self, sizes: tuple[int, ...], max_size: int | None = None) -> None:
        self.sizes, self.max_size = tuple(sizes), max_size

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        size = self.sizes[random_int(0, len(self.sizes) - 1, generator)]
        return TF.resize_shortest(image, target, size, self.max_size)

    def __repr__(self) -> str:
        return f"RandomResize(sizes={self.sizes}, max_size={self.max_size})"


class RandomSizeCrop:
    """Crop a random region with sides drawn in ``[min_size, max_size]`` (capped by the image)."""

    random = True  # draws from the generator: a cache may keep what comes before it

    def __init__(self, min_size: int, max_size: int) -> None:
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        img_h, img_w = TF.image_size(image)
        width = random_int(min(self.min_size, img_w), min(img_w, self.max_size), generator)
        height = random_int(min(self.min_size, img_h), min(img_h, self.max_size), generator)
        top = random_int(0, img_h - height, generator)
        left = random_int(0, img_w - width, generator)
        return TF.crop(image, target, top, left, height, width)

    def __repr__(self) -> str:
        return f"RandomSizeCrop(min_size={self.min_size}, max_size={self.max_size})"


class RandomResizedCrop:
    """MAE / Inception crop: a region of random area fraction and aspect ratio, resized square.

    Tries 10 draws of (area in ``scale`` x image area, log-uniform ratio in ``ratio``); when
    none fits the image, falls back to the largest centred crop with a ratio in range.
    """

    random = True  # draws from the generator: a cache may keep what comes before it

    def __init__(self, size: int, scale: tuple[float, float] = (0.2, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> None:
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)

    def region(self, height: int, width: int, generator: torch.Generator | None) -> tuple[int, int, int, int]:
        """``(top, left, crop_height, crop_width)``."""
        area = height * width
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target_area = area * random_float(generator, *self.scale)
            aspect = math.exp(random_float(generator, log_lo, log_hi))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return random_int(0, height - h, generator), random_int(0, width - w, generator), h, w
        aspect = width / height
        if aspect < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif aspect > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        top, left, h, w = self.region(*TF.image_size(image), generator)
        image, target = TF.crop(image, target, top, left, h, w)
        return TF.resize(image, target, self.size, self.size)

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class CenterCrop:
    """Deterministic: the central ``size x size`` square (ImageNet evaluation after a shortest-side resize)."""

    random = False  # draws from the generator: a cache may keep what comes before it

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        height, width = TF.image_size(image)
        if min(height, width) < self.size:
            raise ValueError(f"center_crop({self.size}) of a {height}x{width} image: resize its shorter side to at "
                             f"least {self.size} first (resize_shortest)")
        return TF.crop(image, target, (height - self.size) // 2, (width - self.size) // 2, self.size, self.size)

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


@PROCESSORS.register()
def random_horizontal_flip(prob: float = 0.5) -> RandomHorizontalFlip:
    """Mirror the image (and its boxes) left-right with probability ``prob``."""
    return RandomHorizontalFlip(prob)


@PROCESSORS.register()
def resize_shortest(size: int, max_size: int | None = None) -> ResizeShortest:
    """Deterministic resize: shorter side ``size``, longer side at most ``max_size``."""
    return ResizeShortest(size, max_size)


@PROCESSORS.register()
def resize_center_crop(size: int = 224) -> ResizeCenterCrop:
    """CLIP / METER geometry: shorter side to ``size`` (bicubic), then the central ``size x size`` crop."""
    return ResizeCenterCrop(size)


@PROCESSORS.register()
def random_resize(sizes: tuple[int, ...], max_size: int | None = None) -> RandomResize:
    """Resize the shorter side to one of ``sizes`` (drawn uniformly), capped by ``max_size``."""
    return RandomResize(sizes, max_size)


@PROCESSORS.register()
def random_size_crop(min_size: int, max_size: int) -> RandomSizeCrop:
    """Crop a random region with sides in ``[min_size, max_size]``; boxes that vanish are dropped."""
    return RandomSizeCrop(min_size, max_size)


@PROCESSORS.register()
def random_resized_crop(size: int = 224, scale: tuple[float, float] = (0.2, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> RandomResizedCrop:
    """MAE-style random-resized crop to a ``size x size`` square."""
    return RandomResizedCrop(size, scale, ratio)


@PROCESSORS.register()
def center_crop(size: int) -> CenterCrop:
    """Crop the central ``size x size`` square (after ``resize_shortest``: ViT / DeiT evaluation)."""
    return CenterCrop(size)
