"""The blind detection baseline ``mean_box_prior``: measured, hand-checkable, and the number the
``coco_map`` metric gives on the datasets as training builds them."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from unimm.benchmark.shapes import baselines
from unimm.data.transforms.functional import xyxy_to_normalized_cxcywh
from unimm.metrics.coco_map import coco_map, ground_truth_of
from unimm.registry import DATASETS

CATEGORIES = [{"id": 3, "name": "circle", "supercategory": "shape"},
              {"id": 7, "name": "square", "supercategory": "shape"}]


def _instances(images: list[tuple[int, int, int]], boxes: list[tuple[int, int, list[float], int]]) -> dict:
    """``images``: (id, width, height); ``boxes``: (image id, category id, [x, y, w, h], iscrowd)."""
    return {
        "images": [{"id": i, "width": w, "height": h, "file_name": f"{i:012d}.jpg"} for i, w, h in images],
        "annotations": [{"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3],
                         "iscrowd": crowd} for k, (i, c, b, crowd) in enumerate(boxes)],
        "categories": CATEGORIES,
    }


def write_hand_made_coco(root: Path) -> Path:
    """Train: two circles whose mean box is (x, y, w, h) = (0.2, 0.2, 0.2, 0.2) of the picture (a crowd
    circle elsewhere, ignored) and one square in a corner. Val: picture 5 holds one circle exactly at
    the circles' mean box; picture 6 one square far from the squares' mean box."""
    train = _instances([(1, 100, 100), (2, 200, 100)],
                       [(1, 3, [10, 10, 20, 20], 0), (1, 3, [30, 30, 20, 20], 0), (1, 3, [60, 60, 40, 40], 1),
                        (2, 7, [0, 0, 10, 10], 0)])
    val = _instances([(5, 200, 200), (6, 100, 100)], [(5, 3, [40, 40, 40, 40], 0), (6, 7, [80, 80, 20, 20], 0)])
    (root / "annotations").mkdir(parents=True)
    for split, data in (("train2017", train), ("val2017", val)):
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
        (root / split).mkdir()
    return root


def test_the_prior_is_the_mean_train_box_scored_by_its_share(tmp_path: Path) -> None:
    train, evaluate, _ = baselines.coco_box_images(write_hand_made_coco(tmp_path))
    priors = baselines.box_priors(train)
    assert list(priors) == [3, 7]
    assert priors[3][0].tolist() == pytest.approx([0.3, 0.3, 0.2, 0.2])  # cx, cy, w, h: the crowd box is left out
    assert priors[7][0].tolist() == pytest.approx([0.025, 0.05, 0.05, 0.1])  # a 10 x 10 box on a 200 x 100 picture
    assert priors[3][1] == pytest.approx(2 / 3) and priors[7][1] == pytest.approx(1 / 3)
    rows = baselines.prior_detections(priors, evaluate)  # image, x, y, w, h, score, category
    assert rows == pytest.approx(np.array([[5, 40, 40, 40, 40, 2 / 3, 3], [5, 0, 0, 10, 20, 1 / 3, 7],
                                           [6, 20, 20, 20, 20, 2 / 3, 3], [6, 0, 0, 5, 10, 1 / 3, 7]]))


def test_hand_checked_map_through_the_project_metric(tmp_path: Path) -> None:
    # circle: its one val box is hit exactly (IoU 1, ranked before the false circle on picture 6):
    # AP 1 at every IoU threshold; square: the prior misses (IoU 0): AP 0. mAP = (1 + 0) / 2.
    root = write_hand_made_coco(tmp_path)
    assert baselines.coco_mean_box_prior(root) == 0.5
    train_set = DATASETS.build({"type": "coco_detection", "data_dir": str(root), "check_images": False},
                               split="train", name="coco")
    val_set = DATASETS.build({"type": "coco_detection", "data_dir": str(root), "check_images": False},
                             split="val", name="coco")
    metric = _metric_of_the_prior(train_set, val_set, "coco")
    assert metric.compute() == pytest.approx({"map": 0.5, "ap50": 0.5, "ap75": 0.5})


def test_a_prior_far_from_every_box_scores_zero(tmp_path: Path) -> None:
    _, evaluate, ground_truth = baselines.coco_box_images(write_hand_made_coco(tmp_path))
    corner_square = [baselines.BoxImage(2, 200, 100, [[0, 0, 10, 10]], [7])]  # no circle prior at all
    assert baselines.mean_box_prior(corner_square, evaluate, ground_truth) == 0.0


def _dataset_priors(dataset) -> dict[int, tuple[np.ndarray, float]]:
    """Mean (cx, cy, w, h) and share per category id, from the targets the dataset gives training."""
    category_ids = [int(c["id"]) for c in dataset.info()["categories"]]
    boxes: dict[int, list[np.ndarray]] = {}
    for item in dataset.images:
        target = dataset.initial_target(item)  # clipped to the picture, without reading the pixels
        relative = xyxy_to_normalized_cxcywh(target["boxes"].double(), item.height, item.width)
        for box, label in zip(relative.numpy(), target["labels"].tolist()):
            boxes.setdefault(category_ids[label], []).append(box)
    total = sum(len(b) for b in boxes.values())
    return {c: (np.mean(b, axis=0), len(b) / total) for c, b in sorted(boxes.items())}


def _metric_of_the_prior(train_set, val_set, name: str) -> coco_map:
    """The ``coco_map`` metric fed, for every val picture, one DETR query per category at the category's
    mean train box whose best class probability is the category's train share."""
    priors = _dataset_priors(train_set)
    category_ids = [int(c["id"]) for c in val_set.info()["categories"]]
    classes = len(category_ids)
    logits = torch.full((len(priors), classes + 1), -1e4)
    boxes = torch.zeros(len(priors), 4)
    for query, (category, (box, share)) in enumerate(priors.items()):
        logits[query, category_ids.index(category)] = math.log(share)
        logits[query, classes] = math.log(1 - share) if share < 1 else -1e4  # "no object"
        boxes[query] = torch.tensor(box)
    images = val_set.images
    targets = [{"image_id": torch.tensor(im.image_id), "orig_size": torch.tensor([im.height, im.width])}
               for im in images]
    output = {"pred_logits": logits.expand(len(images), -1, -1), "pred_boxes": boxes.expand(len(images), -1, -1)}
    metric = coco_map(val_set, name=name)
    metric.update({"targets": targets}, output)
    return metric


def _annotations(ground_truth) -> list[tuple]:
    rows = ground_truth.dataset["annotations"]
    return sorted((a["image_id"], a["category_id"], *np.round(a["bbox"], 4)) for a in rows)


@pytest.mark.parametrize("task, dataset_type, folder", [("coco_detection", "coco_detection", "coco"),
                                                         ("vg_detection", "visual_genome", "vg")])
def test_the_benchmark_baseline_is_what_the_metric_gives_on_the_training_datasets(
        shapes_dir: Path, task: str, dataset_type: str, folder: str) -> None:
    entry = json.loads((shapes_dir / "baselines.json").read_text())[task]
    assert entry["chance"] == 0.0 and "mean_box_prior" in entry["note"]
    assert isinstance(entry["mean_box_prior"], float) and 0.0 <= entry["mean_box_prior"] < 1.0

    node = {"type": dataset_type, "data_dir": str(shapes_dir / folder), "check_images": False}
    train_set = DATASETS.build(node, split="train", name=folder)
    val_set = DATASETS.build(node, split="val", name=folder)
    reader = baselines.coco_box_images if folder == "coco" else baselines.vg_box_images
    train, evaluate, ground_truth = reader(shapes_dir / folder)
    # the same pictures, priors and ground truth as the datasets training builds
    assert [(i.image_id, i.height, i.width) for i in evaluate] == [(i.image_id, i.height, i.width)
                                                                   for i in val_set.images]
    ours, theirs = baselines.box_priors(train), _dataset_priors(train_set)
    assert list(ours) == list(theirs)
    for category, (box, share) in ours.items():
        assert box == pytest.approx(theirs[category][0], abs=1e-6) and share == pytest.approx(theirs[category][1])
    assert _annotations(ground_truth) == _annotations(ground_truth_of(val_set, val_set.info(), folder))
    # the same detections and the same number as the coco_map metric (training's coco/map, vg/map)
    metric = _metric_of_the_prior(train_set, val_set, folder)
    rows = baselines.prior_detections(ours, evaluate)
    theirs_rows = np.concatenate(metric.rows)
    order = lambda r: r[np.lexsort((r[:, 6], r[:, 0]))]  # noqa: E731
    assert order(theirs_rows) == pytest.approx(order(rows), abs=1e-4)
    assert round(metric.compute()["map"], 4) == entry["mean_box_prior"]
