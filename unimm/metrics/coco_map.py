"""COCO box mAP of DETR-style detections, computed by pycocotools."""
from __future__ import annotations

import contextlib
import io
from typing import Any, Mapping

import numpy as np
import torch

from unimm.config.errors import ConfigError
from unimm.interfaces import HasCocoGroundTruth
from unimm.metrics.coco_eval import STAT_NAMES, evaluate_boxes
from unimm.modules.box_ops import detr_detections
from unimm.registry import METRICS
from unimm.training import distributed as dist



@METRICS.register(outputs=lambda **_: list(STAT_NAMES))
class coco_map:  # noqa: N801 (registered name == builder name)
    """Box AP over IoU 0.5:0.95 (``map``), at IoU 0.5 (``ap50``) and 0.75 (``ap75``).

    Every query of every image becomes a detection, as DETR's evaluation does: its score is the
    best real-class probability (softmax over ``C + 1``, "no object" dropped), its category
    ``categories[label]["id"]``, its box the predicted (cx, cy, w, h) scaled to the original
    image size and written (x, y, w, h) in pixels (``unimm.modules.box_ops.detr_detections``, which
    ``DetectionDataset.format_predictions`` shares). Detections of all ranks are gathered and
    evaluated with ``COCOeval`` on the images seen, against the dataset's ground truth.

    Args:
        dataset: the evaluated dataset (run time): ``dataset.coco`` (a pycocotools ``COCO``)
            or ``dataset.info()["annotation_file"]`` gives the ground truth;
            ``dataset.info()["categories"]`` maps label ``i`` to ``categories[i]["id"]``.
        name: the dataset's config key (run time).
        logits_key, boxes_key: output entries ``[B, Q, C + 1]`` and ``[B, Q, 4]``.
    """

    def __init__(self, dataset: Any, name: str = "", logits_key: str = "pred_logits",
                 boxes_key: str = "pred_boxes") -> None:
        info = dataset.info()
        if "categories" not in info:
            raise ConfigError(f"coco_map on dataset '{name}': its info() has no 'categories'; use a detection dataset")
        self.category_ids = np.array([int(c["id"]) for c in info["categories"]], dtype=np.int64)
        self.ground_truth = ground_truth_of(dataset, info, name)
        self.name, self.logits_key, self.boxes_key = name, logits_key, boxes_key
        self.reset()

    def reset(self) -> None:
        self.rows: list[np.ndarray] = []  # each [N, 7]: image_id, x, y, w, h, score, category_id
        self.image_ids: set[int] = set()

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None:
        targets = batch.get("targets")
        if targets is None or any("image_id" not in t or "orig_size" not in t for t in targets):
            raise KeyError(f"coco_map on dataset '{self.name}': every batch['targets'][i] needs 'image_id' "
                           "and 'orig_size' (h, w) to place detections in the original image")
        logits, boxes = output[self.logits_key], output[self.boxes_key]  # [B, Q, C + 1], [B, Q, 4]
        sizes = torch.stack([torch.as_tensor(t["orig_size"]).to(boxes.device) for t in targets])  # [B, 2] (h, w)
        scores, labels, boxes = detr_detections(logits, boxes, sizes)  # [B, Q], [B, Q], [B, Q, 4] pixels
        for i, target in enumerate(targets):
            image_id = int(target["image_id"])
            self.image_ids.add(image_id)
            count = boxes.shape[1]
            rows = np.zeros((count, 7), dtype=np.float64)
            rows[:, 0] = image_id
            rows[:, 1:5] = boxes[i].cpu().numpy()
            rows[:, 5] = scores[i].cpu().numpy()
            rows[:, 6] = self.category_ids[labels[i].cpu().numpy()]
            self.rows.append(rows)

    def compute(self) -> dict[str, float]:
        gathered = dist.all_gather_object((self.rows, sorted(self.image_ids)))
        result = None
        if dist.is_main_process():
            rows = [r for part, _ in gathered for r in part]
            image_ids = sorted({i for _, ids in gathered for i in ids})
            result = evaluate_boxes(self.ground_truth, np.concatenate(rows) if rows else None, image_ids)
        return dist.all_gather_object(result)[0]


def ground_truth_of(dataset: Any, info: Mapping[str, Any], name: str) -> Any:
    """The dataset's pycocotools ``COCO``: its ``coco`` attribute or its info's ``annotation_file``."""
    if isinstance(dataset, HasCocoGroundTruth) and dataset.coco is not None:
        return dataset.coco
    path = info.get("annotation_file")
    if not path:
        raise ConfigError(f"coco_map on dataset '{name}': the dataset has no 'coco' attribute and its info() "
                          "no 'annotation_file'; provide one of them (the COCO-format ground truth)")
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))
