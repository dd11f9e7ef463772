"""COCO box evaluation with pycocotools, without torch: the one ``COCOeval`` path of unimm.

The ``coco_map`` metric and the embedded benchmark's blind baselines both score detections
here, so a baseline and a run are measured the same way.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

STAT_NAMES = {"map": 0, "ap50": 1, "ap75": 2}  # indices into COCOeval.stats


def evaluate_boxes(ground_truth: Any, rows: np.ndarray | None, image_ids: list[int]) -> dict[str, float]:
    """``COCOeval`` bbox statistics of detections ``rows`` ``[N, 7]`` on ``image_ids``.

    Statistics COCO cannot compute (no detections, or no ground truth: COCOeval reports -1)
    are returned as 0.
    """
    if rows is None or len(rows) == 0 or not image_ids:
        return {key: 0.0 for key in STAT_NAMES}
    from pycocotools.cocoeval import COCOeval

    unknown = sorted(set(image_ids) - set(ground_truth.getImgIds()))
    if unknown:
        raise ValueError(f"coco_map: image ids {unknown[:5]} are not in the ground truth; targets' image_id "
                         "must be the COCO image ids of the annotation file")
    with contextlib.redirect_stdout(io.StringIO()):
        detections = ground_truth.loadRes(rows)
        evaluator = COCOeval(ground_truth, detections, iouType="bbox")
        evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {key: max(float(evaluator.stats[index]), 0.0) for key, index in STAT_NAMES.items()}
