"""The detection dataset shared by COCO and Visual Genome: images with DETR targets."""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from unimm.data.collate import collate_batch
from unimm.data.common import read_image
from unimm.data.images import load_image
from unimm.data.transforms.functional import clip_boxes, xyxy_to_normalized_cxcywh
from unimm.modules.box_ops import detr_detections
from unimm.utils.fileio import atomic_write_text


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
        has_labels: False for a split distributed without boxes (COCO test2017): it is for
            ``run_type=predict`` only, and ``label_counts`` is empty.
        results_name: the official split of COCO files (``val2017``, ``test-dev2017`` ...): predict
            then also writes the file COCO's evaluation server reads (``write_submission``).

    Each sample's picture must have the size its record states (``height`` x ``width``): the
    boxes are in those pixels, so another size is an error (``unimm.data.common.read_image``).
    """

    task_type = "detection"

    def __init__(self, images: Sequence[DetectionImage], transform: Any, name: str, source: Path,
                 info: dict[str, Any], max_attributes: int = 0, ground_truth_in_memory: bool = False,
                 has_labels: bool = True, results_name: str | None = None) -> None:
        self.has_labels = has_labels
        self.results_name = results_name
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

    def image_files(self) -> list[tuple[Path, tuple[int, int] | None]]:
        """Every picture file of the split, once, with the ``(width, height)`` its annotation states."""
        sizes: dict[Path, tuple[int, int]] = {}
        for item in self.images:
            sizes.setdefault(item.path, (item.width, item.height))
        return list(sizes.items())

    def label_counts(self) -> dict[str, int]:
        """Boxes per class name over the split, every class listed (0 for a class without boxes), in
        class order; the boxes are those kept for training (crowd boxes only with ``keep_crowd``).
        Empty for a split without labels."""
        if not self.has_labels:
            return {}
        names = [str(c["name"]) for c in self._info["categories"]]  # class index -> name
        counts = dict.fromkeys(names, 0)
        for item in self.images:
            for label in item.labels:
                counts[names[label]] += 1
        return counts

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

    def write_submission(self, rows: Sequence[dict[str, Any]], folder: Path, split: str) -> list[Path]:
        """The file COCO's detection server reads: ``detections_<results_name>_unimm_results.json``
        (e.g. ``detections_test-dev2017_unimm_results.json``; zip it to upload), the rows of
        ``format_predictions`` as a JSON list. Only for datasets read from COCO files."""
        if not self.results_name:
            return []
        path = Path(folder) / f"detections_{self.results_name}_unimm_results.json"
        atomic_write_text(path, json.dumps(list(rows)))
        return [path]

    def format_predictions(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The official COCO results format, one row per query, as the ``coco_map`` metric sees them.

        Every query of every image is a detection (at most Q per image, as DETR evaluates):
        ``{"image_id": int, "category_id": categories[label]["id"], "bbox": [x, y, w, h],
        "score": float}`` with the box in pixels of the original image, rounded to 2 decimals,
        the score the best real-class probability (``unimm.modules.box_ops.detr_detections``).
        The rows load with pycocotools ``COCO.loadRes``.

        Args:
            batch: a collated batch; ``targets[i]`` holds ``image_id`` and ``orig_size`` (h, w).
            output: the model's ``pred_logits`` ``[B, Q, C + 1]`` (last class "no object") and
                ``pred_boxes`` ``[B, Q, 4]`` (cx, cy, w, h relative, in [0, 1]).

        Raises:
            KeyError: a target without ``image_id`` / ``orig_size``, or an output without
                ``pred_logits`` / ``pred_boxes``.
            ValueError: the logits' class count does not match ``info()["categories"]``.
        """
        targets = batch.get("targets")
        if targets is None or any("image_id" not in t or "orig_size" not in t for t in targets):
            raise KeyError(f"format_predictions of dataset '{self.name}': every batch['targets'][i] needs "
                           "'image_id' and 'orig_size' (h, w); collate samples with DetectionDataset.collate")
        for key in ("pred_logits", "pred_boxes"):
            if key not in output:
                raise KeyError(f"format_predictions of dataset '{self.name}': the model output has no '{key}' "
                               f"(it has {sorted(output)}); give the dataset a detection head (pred_logits "
                               "[B, Q, C + 1], pred_boxes [B, Q, 4])")
        categories = self._info["categories"]
        logits, boxes = output["pred_logits"], output["pred_boxes"]  # [B, Q, C + 1], [B, Q, 4]
        if logits.shape[-1] != len(categories) + 1:
            raise ValueError(f"format_predictions of dataset '{self.name}': pred_logits has {logits.shape[-1]} "
                             f"classes but {self.source} has {len(categories)} categories (+1 'no object'); "
                             "build the model from this dataset's info()")
        sizes = torch.stack([torch.as_tensor(t["orig_size"]).to(boxes.device) for t in targets])  # [B, 2] (h, w)
        scores, labels, boxes = detr_detections(logits, boxes, sizes)  # [B, Q], [B, Q], [B, Q, 4] pixels
        category_ids = [int(c["id"]) for c in categories]
        rows = []
        for target, image_scores, image_labels, image_boxes in zip(targets, scores.tolist(), labels.tolist(),
                                                                   boxes.tolist()):
            image_id = int(target["image_id"])
            rows.extend({"image_id": image_id, "category_id": category_ids[label],
                         "bbox": [round(v, 2) for v in box], "score": score}
                        for score, label, box in zip(image_scores, image_labels, image_boxes))
        return rows

    def draw_predictions(self, rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, max_images: int = 8,
                         threshold: float = 0.5, fallback_top: int = 3) -> Path | None:
        """A PNG grid of the split's first predicted images with their detections and ground truth.

        The images are the first ``max_images`` of the split (file order) that ``rows`` has
        detections of, read from their files; drawn are the detections scoring at least
        ``threshold`` (the best ``fallback_top`` of an image where none does), labelled with
        the class name and score, and the ground-truth boxes, thinly in another colour
        (``unimm.utils.draw``).

        Args:
            rows: detections as ``format_predictions`` writes them (any images, any order).
            path: the PNG to write, atomically.
            max_images: the most images drawn.
            threshold: the lowest score drawn.
            fallback_top: detections drawn for an image with none over ``threshold``.

        Returns:
            ``path``, or None when ``rows`` has no detection of this split's images (nothing written).
        """
        from unimm.utils.draw import draw_detections

        by_image: dict[int, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_image.setdefault(int(row["image_id"]), []).append(row)
        categories = self._info["categories"]
        names = {int(c["id"]): str(c.get("name", c["id"])) for c in categories}
        chosen = [item for item in self.images if item.image_id in by_image][:max_images]
        if not chosen:
            return None
        panels = []
        for item in chosen:
            image = load_image(item.path, f"image_id {item.image_id} of {self.source}")
            if image.size != (item.width, item.height):  # boxes are in the annotated size
                image = image.resize((item.width, item.height))
            ranked = sorted(by_image[item.image_id], key=lambda r: -float(r["score"]))
            shown = [r for r in ranked if float(r["score"]) >= threshold] or ranked[:fallback_top]
            detections = [{"bbox": r["bbox"], "score": float(r["score"]),
                           "label": names.get(int(r["category_id"]), str(r["category_id"]))} for r in shown]
            ground_truth = [{"bbox": [x0, y0, x1 - x0, y1 - y0]} for x0, y0, x1, y1 in item.boxes]
            panels.append((image, detections, ground_truth))
        return draw_detections(panels, path)

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
