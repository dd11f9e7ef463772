"""The detection dataset shared by COCO and Visual Genome: images with DETR targets."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from unimm.data.collate import collate_batch
from unimm.data.common import read_image
from unimm.data.transforms.functional import clip_boxes, xyxy_to_normalized_cxcywh


@dataclass(frozen=True)
class DetectionImage:
    """One image and its boxes (absolute ``x0, y0, x1, y1`` pixels of the original image).

    ``attributes`` holds, per box, its attribute class indices (Visual Genome), or is None.
    """

    image_id: int
    path: Path
    height: int
    width: int
    boxes: list[list[float]]
    labels: list[int]
    areas: list[float]
    crowd: list[int]
    attributes: list[list[int]] | None = None


class DetectionDataset(Dataset):
    """Images with DETR targets.

    Args:
        images: the images of the split.
        transform: the image transform (boxes travel with the pixels).
        name: the dataset's config key.
        source: the annotation file, named in errors.
        info: what ``info()`` returns (class names, ids ...).
        max_attributes: width of the per-box attribute index rows (padded with -1).
        ground_truth_in_memory: offer the boxes as a pycocotools ``COCO`` (``coco``) for
            data without an official COCO-format annotation file.
    """

    task_type = "detection"

    def __init__(self, images: Sequence[DetectionImage], transform: Any, name: str, source: Path,
                 info: dict[str, Any], max_attributes: int = 0, ground_truth_in_memory: bool = False) -> None:
        self.images = list(images)
        self.transform = transform
        self.name = name
        self.source = source
        self._info = info
        self.max_attributes = max_attributes
        self.ground_truth_in_memory = ground_truth_in_memory
        self._coco: Any = None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.images[index]
        target = self.initial_target(item)
        image, target = read_image(item.path, f"image_id {item.image_id} of {self.source}", self.transform, target)
        return {"image": image, "target": finish_target(target, image), "image_id": item.image_id}

    def initial_target(self, item: DetectionImage) -> dict[str, Any]:
        """The target before transforms: absolute boxes clipped to the image, empty ones dropped."""
        target = {
            "boxes": torch.tensor(item.boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(item.labels, dtype=torch.long),
            "area": torch.tensor(item.areas, dtype=torch.float32),
            "iscrowd": torch.tensor(item.crowd, dtype=torch.long),
            "image_id": item.image_id,
            "orig_size": torch.tensor([item.height, item.width]),
        }
        if item.attributes is not None:
            rows = torch.full((len(item.attributes), self.max_attributes), -1, dtype=torch.long)
            for i, attrs in enumerate(item.attributes):
                kept = attrs[: self.max_attributes]
                rows[i, : len(kept)] = torch.tensor(kept, dtype=torch.long)
            target["attributes"] = rows
        return clip_boxes(target, item.height, item.width)

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type)

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    @property
    def coco(self) -> Any:
        """The ground truth as a pycocotools ``COCO`` (built once), or None when
        ``info()["annotation_file"]`` is the official one."""
        if self.ground_truth_in_memory and self._coco is None:
            self._coco = to_coco(self.images, self._info["categories"])
        return self._coco


def to_coco(images: Sequence[DetectionImage], categories: list[dict[str, Any]]) -> Any:
    """A pycocotools ``COCO`` of the boxes (clipped to their image), category ``i`` -> ``categories[i]["id"]``."""
    from pycocotools.coco import COCO

    annotations = []
    for item in images:
        for (x0, y0, x1, y1), label in zip(item.boxes, item.labels):
            x0, x1 = max(0.0, x0), min(float(item.width), x1)
            y0, y1 = max(0.0, y0), min(float(item.height), y1)
            if x1 > x0 and y1 > y0:
                annotations.append({"id": len(annotations) + 1, "image_id": item.image_id, "iscrowd": 0,
                                    "category_id": categories[label]["id"], "bbox": [x0, y0, x1 - x0, y1 - y0],
                                    "area": (x1 - x0) * (y1 - y0)})
    coco = COCO()
    coco.dataset = {"images": [{"id": im.image_id, "height": im.height, "width": im.width} for im in images],
                    "annotations": annotations, "categories": [dict(c) for c in categories]}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def finish_target(target: dict[str, Any], image: torch.Tensor) -> dict[str, Any]:
    """After the transform: boxes to normalised ``(cx, cy, w, h)``, ``size`` = the image's ``(H, W)``."""
    height, width = image.shape[-2:]
    target = clip_boxes(target, height, width)
    target["boxes"] = xyxy_to_normalized_cxcywh(target["boxes"], height, width)
    target["size"] = torch.tensor([height, width])
    return target
