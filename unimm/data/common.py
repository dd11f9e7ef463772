"""Small pieces every dataset builder uses: split-dependent transforms and sample limits."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, TypeVar

import torch

from unimm.config.errors import ConfigError
from unimm.data.images import PIXEL_CACHE, load_image
from unimm.data.transforms.functional import Target
from unimm.data.transforms.photometric import NormalizeImage
from unimm.data.transforms.pipeline import ImageTransform, Pipeline

T = TypeVar("T")
TRAIN_SPLIT = "train"


def choose_transform(split: str, train_transform: Any, eval_transform: Any) -> ImageTransform:
    """``train_transform`` for the train split, ``eval_transform`` otherwise.

    Either may be None, meaning: no resizing, only conversion to a normalised tensor.
    """
    chosen = train_transform if split == TRAIN_SPLIT else eval_transform
    return chosen if chosen is not None else NormalizeImage()


def take(items: Sequence[T], max_samples: int | None, dataset: str) -> list[T]:
    """The first ``max_samples`` items (all of them when None)."""
    if max_samples is None:
        return list(items)
    if max_samples < 1:
        raise ConfigError(f"must be at least 1 or null, got {max_samples}", key="max_samples")
    return list(items[:max_samples])


def read_image(path: Path, context: str, transform: ImageTransform,
               target: Target | None = None) -> tuple[torch.Tensor, Target | None]:
    """Load ``path`` and apply ``transform``; returns ``([3, H, W] float tensor, target)``.

    When the transform is a ``Pipeline`` that begins with steps drawing nothing (a fixed resize),
    their output is kept in ``PIXEL_CACHE`` and only the rest runs again: the same numbers, without
    decoding and resizing each picture at every epoch.
    """
    if isinstance(transform, Pipeline):
        fixed, rest = transform.split_fixed_prefix()
        if fixed.steps:
            image, target = PIXEL_CACHE.get(path, context, fixed, target)
            tensor, target = rest(image, target)
            return check_tensor(tensor, transform), target
    tensor, target = transform(load_image(path, context), target)
    return check_tensor(tensor, transform), target


def check_tensor(tensor: Any, transform: ImageTransform) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ConfigError(f"the image transform {transform!r} must end with normalize_image "
                          "(it returned a PIL image, not a tensor)")
    return tensor
