"""Deterministic image operations that keep a detection target consistent with the pixels.

An image is a PIL image or a tensor ``[..., C, H, W]``. A target is a dict or None; when it
has ``"boxes"`` (``[N, 4]`` absolute ``(x0, y0, x1, y1)`` pixels of the current image), every
operation moves, clips and, for crops, drops the boxes that vanish, together with the
per-box fields listed in ``PER_BOX_KEYS``. ``"area"`` follows the boxes.
"""
from __future__ import annotations

from typing import Any

import torch
import torchvision.transforms.functional as F
from PIL import Image

Target = dict[str, Any]
PER_BOX_KEYS = ("boxes", "labels", "area", "iscrowd", "attributes", "object_ids")


def image_size(image: Image.Image | torch.Tensor) -> tuple[int, int]:
    """``(height, width)`` of a PIL image or a ``[..., C, H, W]`` tensor."""
    _, height, width = F.get_dimensions(image)
    return height, width


def shortest_side_size(height: int, width: int, size: int, max_size: int | None) -> tuple[int, int]:
    """The ``(height, width)`` whose shorter side is ``size``, longer side at most ``max_size``.

    When the longer side would pass ``max_size``, the shorter side shrinks so that the
    aspect ratio is kept.
    """
    short, long = min(height, width), max(height, width)
    if max_size is not None and long * size > max_size * short:
        size = max(1, int(round(max_size * short / long)))
    if short == size:
        return height, width
    if height <= width:
        return size, max(1, int(size * width / height))
    return max(1, int(size * height / width)), size


def resize(image: Any, target: Target | None, height: int, width: int,
           interpolation: F.InterpolationMode = F.InterpolationMode.BILINEAR) -> tuple[Any, Target | None]:
    """Resize to exactly ``(height, width)`` (bilinear by default; CLIP's transform is bicubic), scaling boxes and areas."""
    old_h, old_w = image_size(image)
    image = F.resize(image, [height, width], interpolation=interpolation, antialias=True)
    if target is None:
        return image, None
    target = dict(target)
    scale_w, scale_h = width / old_w, height / old_h
    if "boxes" in target:
        target["boxes"] = target["boxes"] * torch.tensor([scale_w, scale_h, scale_w, scale_h])
    if "area" in target:
        target["area"] = target["area"] * (scale_w * scale_h)
    return image, target


def resize_shortest(image: Any, target: Target | None, size: int,
                    max_size: int | None = None) -> tuple[Any, Target | None]:
    """Resize so the shorter side is ``size`` (longer side capped at ``max_size``)."""
    height, width = shortest_side_size(*image_size(image), size, max_size)
    return resize(image, target, height, width)


def center_crop(image: Any, target: Target | None, height: int, width: int) -> tuple[Any, Target | None]:
    """Cut the central ``height x width`` region (offsets rounded as torchvision's ``center_crop``)."""
    img_h, img_w = image_size(image)
    if height > img_h or width > img_w:
        raise ValueError(f"cannot crop {height}x{width} out of a {img_h}x{img_w} image; resize it first")
    return crop(image, target, int(round((img_h - height) / 2.0)), int(round((img_w - width) / 2.0)), height, width)


def hflip(image: Any, target: Target | None) -> tuple[Any, Target | None]:
    """Mirror left-right; box ``(x0, y0, x1, y1)`` becomes ``(W - x1, y0, W - x0, y1)``."""
    _, width = image_size(image)
    image = F.hflip(image)
    if target is None or "boxes" not in target:
        return image, target
    target = dict(target)
    boxes = target["boxes"]
    target["boxes"] = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
    return image, target


def crop(image: Any, target: Target | None, top: int, left: int, height: int, width: int) -> tuple[Any, Target | None]:
    """Cut the region ``[top, top + height) x [left, left + width)``.

    Boxes are shifted, clipped to the region, and dropped (with their per-box fields) when
    nothing of them is left inside.
    """
    image = F.crop(image, top, left, height, width)
    if target is None or "boxes" not in target:
        return image, target
    target = dict(target)
    target["boxes"] = target["boxes"] - torch.tensor([left, top, left, top], dtype=target["boxes"].dtype)
    target = clip_boxes(target, height, width)
    if "area" in target:
        boxes = target["boxes"]
        target["area"] = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return image, target


def select_boxes(target: Target, keep: torch.Tensor) -> Target:
    """Keep only the boxes where ``keep`` (bool ``[N]``) is true, in every per-box field."""
    return {k: (v[keep] if k in PER_BOX_KEYS and isinstance(v, torch.Tensor) else v) for k, v in target.items()}


def clip_boxes(target: Target, height: int, width: int) -> Target:
    """Clip boxes to a ``height x width`` image and drop the ones left empty."""
    if "boxes" not in target:
        return target
    target = dict(target)
    boxes = target["boxes"].clone()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    target["boxes"] = boxes
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return select_boxes(target, keep)


def xyxy_to_normalized_cxcywh(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[N, 4]`` absolute ``(x0, y0, x1, y1)`` -> ``[N, 4]`` ``(cx, cy, w, h)`` in ``[0, 1]``."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    cxcywh = torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)
    return cxcywh / torch.tensor([width, height, width, height], dtype=boxes.dtype)
