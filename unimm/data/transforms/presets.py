"""Ready-made image transforms of the papers, each one call of the generic steps.

* DETR training (UniT detection): flip, then either a random shortest-side resize or
  resize -> random crop -> resize; DETR evaluation: a fixed shortest-side resize.
* Vision-and-language (METER, VQA, NLVR2, SNLI-VE, retrieval): a deterministic
  shortest-side resize, with RandAugment for training.
* MAE pre-training (MoMo): random-resized crop and flip.
* CLIP / METER: bicubic resize and centre crop to a square, CLIP's statistics (RandAugment first
  when fine-tuning).
"""
from __future__ import annotations

from unimm.data.transforms.geometric import (
    RandomHorizontalFlip, RandomResize, RandomResizedCrop, RandomSizeCrop, ResizeCenterCrop, ResizeShortest)
from unimm.data.transforms.photometric import IMAGENET_MEAN, IMAGENET_STD, NormalizeImage, RandAugment
from unimm.data.transforms.pipeline import Pipeline, RandomSelect
from unimm.registry import PROCESSORS

DETR_SCALES = (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's normalisation (METER's clip transforms)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@PROCESSORS.register()
def detr_train_transform(
    scales: tuple[int, ...] = DETR_SCALES,
    max_size: int = 1333,
    crop_scales: tuple[int, ...] = (400, 500, 600),
    crop_min: int = 384,
    crop_max: int = 600,
    flip_prob: float = 0.5,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> Pipeline:
    """DETR's training augmentation; boxes stay absolute ``(x0, y0, x1, y1)`` pixels.

    Args:
        scales: candidate shorter sides of the final resize.
        max_size: cap on the longer side.
        crop_scales: shorter sides of the resize before the crop (half of the draws).
        crop_min: smallest side of the random crop.
        crop_max: largest side of the random crop.
        flip_prob: probability of a horizontal flip.
        mean: per-channel mean of the normalisation.
        std: per-channel standard deviation of the normalisation.
    """
    return Pipeline([
        RandomHorizontalFlip(flip_prob),
        RandomSelect(
            RandomResize(scales, max_size),
            Pipeline([RandomResize(crop_scales), RandomSizeCrop(crop_min, crop_max), RandomResize(scales, max_size)]),
        ),
        NormalizeImage(mean, std),
    ])


@PROCESSORS.register()
def detr_eval_transform(size: int = 800, max_size: int = 1333, mean: tuple[float, ...] = IMAGENET_MEAN,
                        std: tuple[float, ...] = IMAGENET_STD) -> Pipeline:
    """DETR's evaluation transform: deterministic shortest-side resize, then normalisation."""
    return Pipeline([ResizeShortest(size, max_size), NormalizeImage(mean, std)])


@PROCESSORS.register()
def vl_eval_transform(size: int = 384, max_size: int | None = 640, mean: tuple[float, ...] = IMAGENET_MEAN,
                      std: tuple[float, ...] = IMAGENET_STD) -> Pipeline:
    """Vision-and-language evaluation: deterministic shortest-side resize, then normalisation."""
    return Pipeline([ResizeShortest(size, max_size), NormalizeImage(mean, std)])


@PROCESSORS.register()
def vl_train_transform(size: int = 384, max_size: int | None = 640, rand_augment_ops: int = 2,
                       rand_augment_magnitude: int = 9, mean: tuple[float, ...] = IMAGENET_MEAN,
                       std: tuple[float, ...] = IMAGENET_STD) -> Pipeline:
    """Vision-and-language training: shortest-side resize, RandAugment (0 ops: none), normalisation."""
    steps = [ResizeShortest(size, max_size)]
    if rand_augment_ops > 0:
        steps.append(RandAugment(rand_augment_ops, rand_augment_magnitude))
    return Pipeline([*steps, NormalizeImage(mean, std)])


@PROCESSORS.register()
def mae_train_transform(size: int = 224, scale: tuple[float, float] = (0.2, 1.0), flip_prob: float = 0.5,
                        mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> Pipeline:
    """MAE pre-training: random-resized crop to ``size x size``, flip, normalisation."""
    return Pipeline([RandomResizedCrop(size, scale), RandomHorizontalFlip(flip_prob), NormalizeImage(mean, std)])


@PROCESSORS.register()
def clip_transform(size: int = 224, rand_augment_ops: int = 0, rand_augment_magnitude: int = 9,
                   mean: tuple[float, ...] = CLIP_MEAN, std: tuple[float, ...] = CLIP_STD) -> Pipeline:
    """CLIP's / METER's image transform: bicubic resize + centre crop to ``size x size``, CLIP's statistics.

    METER's ``clip_transform``; with ``rand_augment_ops`` > 0 its fine-tuning ``clip_randaug``, which
    applies RandAugment(2, 9) to the picture first (REFERENCE_NOTES 1.1). Every image comes out at the
    same size, as a ViT with absolute positions needs.
    """
    steps = [RandAugment(rand_augment_ops, rand_augment_magnitude)] if rand_augment_ops > 0 else []
    return Pipeline([*steps, ResizeCenterCrop(size), NormalizeImage(mean, std)])
