"""Small pieces every dataset builder uses: split-dependent transforms, sample limits, reading pictures."""
from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import torch
from PIL import Image

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

    A target holding ``orig_size`` ``(H, W)`` (detection: the size the annotation states, in whose
    pixels its boxes are) is checked against the picture as opened, before any transform: a
    picture of another size (a resized copy) is a ``ConfigError`` naming both sizes and the fix,
    never boxes normalised by the wrong size. A picture from the cache passed the same check when
    it was stored (the cache's key holds the file's size and time and the target).
    """
    try:
        if isinstance(transform, Pipeline):
            fixed, rest = transform.split_fixed_prefix()
            if fixed.steps:
                image, target = PIXEL_CACHE.get(path, context, size_checked(fixed), target)
                tensor, target = rest(image, target)
                return check_tensor(tensor, transform), target
        image = load_image(path, context)
        require_stated_size(image, target)
        tensor, target = transform(image, target)
    except SizeMismatch as err:
        raise ConfigError(size_message(path, context, err.stated, err.actual)) from None
    return check_tensor(tensor, transform), target


class SizeMismatch(Exception):
    """A picture whose size is not its target's ``orig_size`` (``read_image`` turns it into a ``ConfigError``)."""

    def __init__(self, stated: tuple[int, int], actual: tuple[int, int]) -> None:
        super().__init__(f"stated {stated}, actual {actual}")
        self.stated, self.actual = stated, actual  # (width, height) each


def require_stated_size(image: Any, target: Target | None) -> None:
    """Raise ``SizeMismatch`` when ``image`` (PIL, as opened) is not the target's ``orig_size``.

    The size compared is the stored pixel grid: ``load_image`` applies no EXIF orientation, and
    COCO's ``width`` / ``height`` and boxes describe that same grid (its annotators' pictures were
    not EXIF-rotated either), so a JPEG with an orientation tag matches its annotation as stored.
    """
    if target is None or "orig_size" not in target or not isinstance(image, Image.Image):
        return
    height, width = (int(v) for v in target["orig_size"])
    if image.size != (width, height):
        raise SizeMismatch((width, height), image.size)


def size_message(path: Path, context: str, stated: tuple[int, int], actual: tuple[int, int]) -> str:
    message = (f"image {path} (named by {context}) is {actual[0]} x {actual[1]} pixels (width x height) but its "
               f"annotation states {stated[0]} x {stated[1]}: the boxes are in the annotation's pixels and would "
               "land in the wrong place. Use the pictures as distributed (not resized or re-encoded copies), or "
               "correct the record's width and height in the annotation file")
    if actual == stated[::-1]:
        message += (" (the sizes are swapped: the annotation may state the picture after EXIF rotation; unimm "
                    "reads the stored pixels without rotating them, as COCO's annotations describe them)")
    return message


# fixed pipeline -> it after the size check; one function per pipeline, as the pixel cache keys on its identity
_SIZE_CHECKED: weakref.WeakKeyDictionary[Pipeline, Callable[..., Any]] = weakref.WeakKeyDictionary()


def size_checked(fixed: Pipeline) -> Callable[..., Any]:
    """``fixed`` preceded by ``require_stated_size``, the same function at every call for one ``fixed``."""
    checked = _SIZE_CHECKED.get(fixed)
    if checked is None:
        step = weakref.ref(fixed)  # no strong reference from the value, so the entry goes with its pipeline

        def checked(image: Any, target: Target | None = None, generator: torch.Generator | None = None):
            require_stated_size(image, target)
            return step()(image, target, generator)

        _SIZE_CHECKED[fixed] = checked
    return checked


def check_tensor(tensor: Any, transform: ImageTransform) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ConfigError(f"the image transform {transform!r} must end with normalize_image "
                          "(it returned a PIL image, not a tensor)")
    return tensor
