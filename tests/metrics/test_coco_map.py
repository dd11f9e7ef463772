import contextlib
import io
import json

import pytest
import torch
from pycocotools.coco import COCO

from unimm.metrics.coco_map import coco_map
from unimm.modules.box_ops import box_xyxy_to_cxcywh

CATEGORIES = [{"id": 3, "name": "circle"}, {"id": 7, "name": "square"}]
IMAGES = [{"id": 1, "height": 100, "width": 80}, {"id": 2, "height": 60, "width": 50}]
# (image, category id, x, y, w, h) in pixels
BOXES = [(1, 3, 10, 20, 30, 40), (1, 7, 40, 50, 20, 30), (2, 7, 5, 5, 25, 20)]


def ground_truth_json():
    annotations = [{"id": i + 1, "image_id": im, "category_id": c, "bbox": [x, y, w, h], "area": w * h,
                    "iscrowd": 0} for i, (im, c, x, y, w, h) in enumerate(BOXES)]
    return {"images": IMAGES, "annotations": annotations, "categories": CATEGORIES}


class FakeDetection:
    def __init__(self, with_coco=True, annotation_file=None):
        if with_coco:
            with contextlib.redirect_stdout(io.StringIO()):
                self.coco = COCO()
                self.coco.dataset = ground_truth_json()
                self.coco.createIndex()
        self.annotation_file = annotation_file

    def info(self):
        info = {"categories": CATEGORIES}
        if self.annotation_file:
            info["annotation_file"] = self.annotation_file
        return info


def model_output(shift=0.0, queries=5):
    """Perfect detections (shifted right by ``shift`` of their width), other queries 'no object'."""
    logits = torch.full((2, queries, 3), -5.0)
    logits[..., 2] = 5.0  # no object
    boxes = torch.full((2, queries, 4), 0.5)
    boxes[..., 2:] = 0.1
    slot = [0, 0]
    for im, cat, x, y, w, h in BOXES:
        b, q = im - 1, slot[im - 1]
        slot[im - 1] += 1
        size = IMAGES[b]
        x0, y0 = (x + shift * w) / size["width"], y / size["height"]
        xyxy = torch.tensor([x0, y0, x0 + w / size["width"], y0 + h / size["height"]])
        boxes[b, q] = box_xyxy_to_cxcywh(xyxy)
        logits[b, q] = -5.0
        logits[b, q, [c["id"] for c in CATEGORIES].index(cat)] = 5.0
    return {"pred_logits": logits, "pred_boxes": boxes}


def batch():
    return {"targets": [{"image_id": torch.tensor(im["id"]), "orig_size": torch.tensor([im["height"], im["width"]])}
                        for im in IMAGES]}


def test_perfect_predictions_score_one_and_shifted_ones_less():
    metric = coco_map(FakeDetection(), name="coco")
    metric.update(batch(), model_output())
    perfect = metric.compute()
    assert perfect == pytest.approx({"map": 1.0, "ap50": 1.0, "ap75": 1.0})
    metric.reset()
    metric.update(batch(), model_output(shift=0.2))  # IoU 0.8/1.2 = 0.67: a hit at 0.5, a miss at 0.75
    shifted = metric.compute()
    assert shifted["ap50"] == pytest.approx(1.0) and shifted["ap75"] == pytest.approx(0.0)
    assert shifted["map"] == pytest.approx(0.4)  # hits at IoU 0.50..0.65: 4 of the 10 thresholds


def test_reads_the_annotation_file(tmp_path):
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps(ground_truth_json()))
    metric = coco_map(FakeDetection(with_coco=False, annotation_file=str(path)), name="coco")
    metric.update(batch(), model_output())
    assert metric.compute()["map"] == pytest.approx(1.0)


def test_no_batches_give_zero_and_missing_keys_are_named():
    metric = coco_map(FakeDetection(), name="coco")
    assert metric.compute() == {"map": 0.0, "ap50": 0.0, "ap75": 0.0}
    with pytest.raises(KeyError, match="orig_size"):
        metric.update({"targets": [{"image_id": 1}]}, model_output())
