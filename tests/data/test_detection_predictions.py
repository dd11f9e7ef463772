"""Detection predictions: the COCO results rows of DetectionDataset.format_predictions (the same
mAP as the coco_map metric), the PNG of boxes drawn on the first images, and a predict run."""
from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from pycocotools.cocoeval import COCOeval

from tests.helpers import predict_with_random_weights
from tests.metrics.test_coco_map import BOXES, CATEGORIES, IMAGES, batch, model_output
from unimm.data.detection import DetectionDataset, DetectionImage
from unimm.metrics.coco_map import coco_map
from unimm.utils import draw
from unimm.utils.draw import draw_detections, fit_in_cell

IMAGE_COLOR = (40, 40, 40)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def detection_dataset(folder: Path | None = None) -> DetectionDataset:
    """The images and boxes of the coco_map tests as a DetectionDataset (solid images in ``folder``)."""
    label_of = {c["id"]: i for i, c in enumerate(CATEGORIES)}
    images = []
    for record in IMAGES:
        boxes = [(c, x, y, w, h) for im, c, x, y, w, h in BOXES if im == record["id"]]
        path = (folder or Path("/nonexistent")) / f"{record['id']}.png"
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (record["width"], record["height"]), IMAGE_COLOR).save(path)
        images.append(DetectionImage(
            image_id=record["id"], path=path, height=record["height"], width=record["width"],
            boxes=[[x, y, x + w, y + h] for _, x, y, w, h in boxes], labels=[label_of[c] for c, *_ in boxes],
            areas=[w * h for *_, w, h in boxes], crowd=[0] * len(boxes)))
    info = {"num_classes": len(CATEGORIES), "categories": CATEGORIES}
    return DetectionDataset(images, transform=None, name="coco", source=Path("instances_val.json"), info=info,
                            ground_truth_in_memory=True)


# ----------------------------------------------------------------------------- format_predictions

def test_rows_are_the_official_coco_results_in_pixels_of_the_original_image():
    ds = detection_dataset()
    logits = torch.log(torch.tensor([[[1.0, 3.0, 1.0],     # p = 0.2, 0.6, 0.2: label 1 -> category 7
                                      [2.0, 1.0, 1.0]],    # p = 0.5, 0.25, 0.25: label 0 -> category 3
                                     [[2.0, 1.0, 7.0],     # mostly "no object": still a detection
                                      [1.0, 4.0, 5.0]]]))  # p = 0.1, 0.4, 0.5: label 1, score 0.4
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.25, 0.75, 0.5, 0.5]],
                          [[0.5, 0.5, 1.0, 1.0], [1 / 3, 0.5, 0.1, 0.1]]])  # [B, Q, 4] (cx, cy, w, h)
    targets = [{"image_id": torch.tensor(42), "orig_size": torch.tensor([100, 200])},  # (h, w)
               {"image_id": 7, "orig_size": torch.tensor([30, 60])}]
    rows = ds.format_predictions({"targets": targets}, {"pred_logits": logits, "pred_boxes": boxes})
    assert [{k: v for k, v in r.items() if k != "score"} for r in rows] == [
        {"image_id": 42, "category_id": 7, "bbox": [80.0, 30.0, 40.0, 40.0]},
        {"image_id": 42, "category_id": 3, "bbox": [0.0, 50.0, 100.0, 50.0]},
        {"image_id": 7, "category_id": 3, "bbox": [0.0, 0.0, 60.0, 30.0]},
        {"image_id": 7, "category_id": 7, "bbox": [17.0, 13.5, 6.0, 3.0]},
    ]
    assert [r["score"] for r in rows] == pytest.approx([0.6, 0.5, 0.2, 0.4])
    assert all(type(r["image_id"]) is int and type(r["category_id"]) is int and type(r["score"]) is float
               and all(type(v) is float for v in r["bbox"]) for r in rows)


def test_boxes_are_rounded_to_two_decimals():
    rows = detection_dataset().format_predictions(
        {"targets": [{"image_id": 1, "orig_size": torch.tensor([90, 70])}]},
        {"pred_logits": torch.zeros(1, 1, 3), "pred_boxes": torch.tensor([[[0.3, 0.4, 0.1234, 0.3213]]])})
    assert rows[0]["bbox"] == [16.68, 21.54, 8.64, 28.92]  # 16.681, 21.5415, 8.638, 28.917


def test_missing_keys_and_wrong_class_counts_are_named():
    ds = detection_dataset()
    output = model_output()
    with pytest.raises(KeyError, match="orig_size.*DetectionDataset.collate"):
        ds.format_predictions({"targets": [{"image_id": 1}]}, output)
    with pytest.raises(KeyError, match="no 'pred_boxes'.*detection head"):
        ds.format_predictions(batch(), {"pred_logits": output["pred_logits"]})
    with pytest.raises(ValueError, match="4 classes but instances_val.json has 2 categories"):
        ds.format_predictions(batch(), {"pred_logits": torch.zeros(2, 5, 4), "pred_boxes": output["pred_boxes"]})


def noisy_output(seed: int = 0, queries: int = 6):
    """Perfect boxes jittered a little and random scores over the other queries."""
    gen = torch.Generator().manual_seed(seed)
    output = model_output(queries=queries)
    output["pred_logits"] = output["pred_logits"] + 3 * torch.randn(output["pred_logits"].shape, generator=gen)
    output["pred_boxes"] = (output["pred_boxes"] + 0.03 * torch.randn(output["pred_boxes"].shape, generator=gen)
                            ).clamp(0.01, 0.99)
    return output


@pytest.mark.parametrize("output", [model_output(), model_output(shift=0.2), noisy_output(0), noisy_output(1)],
                         ids=["perfect", "shifted", "noisy0", "noisy1"])
def test_the_json_evaluated_by_pycocotools_gives_the_metrics_map(output):
    ds = detection_dataset()
    metric = coco_map(ds, name="coco")
    metric.update(batch(), output)
    expected = metric.compute()

    rows = json.loads(json.dumps(ds.format_predictions(batch(), output)))  # as written to the file
    assert len(rows) == len(IMAGES) * output["pred_logits"].shape[1]  # every query, as DETR evaluates
    with contextlib.redirect_stdout(io.StringIO()):
        detections = ds.coco.loadRes(rows)
        evaluator = COCOeval(ds.coco, detections, iouType="bbox")
        evaluator.params.imgIds = sorted({r["image_id"] for r in rows})
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    got = {"map": evaluator.stats[0], "ap50": evaluator.stats[1], "ap75": evaluator.stats[2]}
    assert got == pytest.approx(expected, abs=1e-6)
    assert 0 < expected["map"]


# ----------------------------------------------------------------------------- the picture

def test_draw_detections_writes_a_grid_with_the_boxes_in_their_colours(tmp_path):
    image = Image.new("RGB", (64, 64), IMAGE_COLOR)
    detection = {"bbox": [8, 16, 24, 32], "label": "square", "score": 0.97}  # x, y, w, h
    ground_truth = {"bbox": [40, 40, 16, 16]}
    path = tmp_path / "out" / "grid.png"
    assert draw_detections([(image, [detection], [ground_truth]), (image, [], [])] * 3, path,
                           columns=4, cell_size=128, margin=0) == path
    picture = Image.open(path)
    assert picture.format == "PNG" and picture.size == (4 * 128, 2 * 128)  # 6 images: 4 columns, 2 rows
    pixels = picture.convert("RGB").load()
    # cell 0 at scale 2: the detection spans x 16..64, y 32..96; the ground truth x 80..112
    assert pixels[16, 64] == pixels[17, 64] == pixels[64, 64] == pixels[40, 96] == draw.PREDICTION_COLOR
    assert pixels[40, 64] == pixels[18, 64] == IMAGE_COLOR  # inside the box and beyond its 2-pixel edge
    assert pixels[80, 100] == pixels[112, 100] == draw.GROUND_TRUTH_COLOR and pixels[81, 100] == IMAGE_COLOR
    assert pixels[128 + 16, 64] == IMAGE_COLOR  # cell 1 has no boxes
    assert pixels[2 * 128 + 16, 64] == draw.PREDICTION_COLOR  # cell 2 is image 0 again
    assert pixels[16, 128 + 64] == draw.PREDICTION_COLOR  # cell 4, second row
    assert pixels[3 * 128 + 16, 128 + 64] == draw.BACKGROUND_COLOR  # cell 7 is empty
    label = [pixels[x, y] for x in range(16, 64) for y in range(32 - 14, 32)]  # the label sits above the box
    assert draw.PREDICTION_COLOR in label and any(sum(p) < 100 for p in label)  # dark text on its box
    assert sorted(p.name for p in path.parent.iterdir()) == ["grid.png"]  # no temporary file left


def test_draw_predictions_draws_the_first_images_with_their_confident_boxes(tmp_path):
    ds = detection_dataset(tmp_path / "images")
    rows = ds.format_predictions(batch(), model_output())
    path = tmp_path / "predictions" / "coco_val.png"
    assert ds.draw_predictions(rows, path) == path
    picture = Image.open(path)
    assert picture.format == "PNG" and picture.size == (2 * draw.CELL_SIZE, draw.CELL_SIZE)
    pixels = picture.convert("RGB").load()
    # image 1 (80 x 100): its box (10, 20, 30, 40) predicted exactly, score ~1
    scale, left, top = fit_in_cell(80, 100, draw.CELL_SIZE, draw.MARGIN)
    x, y = round(left + 10 * scale), round(top + 40 * scale)  # the middle of its left edge
    assert draw.PREDICTION_COLOR in [pixels[x + dx, y] for dx in (-1, 0, 1)]
    assert pixels[round(left + 2 * scale), round(top + 90 * scale)] == IMAGE_COLOR  # no box there
    assert sorted(p.name for p in path.parent.iterdir()) == ["coco_val.png"]
    assert ds.draw_predictions([], tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_draw_predictions_keeps_confident_boxes_or_else_the_best_three(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(draw, "draw_detections", lambda panels, path: drawn.update(panels=panels) or Path(path))
    ds = detection_dataset(tmp_path)
    rows = [{"image_id": 2, "category_id": 7, "bbox": [1, 2, 3, 4], "score": s} for s in (0.3, 0.05, 0.2, 0.1, 0.01)]
    rows += [{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": s} for s in (0.4, 0.9, 0.5, 0.1)]
    ds.draw_predictions(rows, tmp_path / "p.png")
    (image1, dets1, gt1), (image2, dets2, gt2) = drawn["panels"]  # in the split's order
    assert image1.size == (80, 100) and image2.size == (50, 60)
    assert [(d["label"], d["score"]) for d in dets1] == [("circle", 0.9), ("circle", 0.5)]
    assert [(d["label"], d["score"]) for d in dets2] == [("square", 0.3), ("square", 0.2), ("square", 0.1)]
    assert [g["bbox"] for g in gt1] == [[10, 20, 30, 40], [40, 50, 20, 30]] and len(gt2) == 1
    ds.draw_predictions(rows, tmp_path / "p.png", max_images=1)
    assert len(drawn["panels"]) == 1
    ds.draw_predictions(rows[:5], tmp_path / "p.png")  # image 2 only: the first image with detections
    assert [len(p[1]) for p in drawn["panels"]] == [3]


# ----------------------------------------------------------------------------- a predict run

def test_a_predict_run_writes_the_coco_results_and_their_picture(tiny_benchmark: Path, tmp_path: Path):
    config = Path(__file__).resolve().parents[2] / "projects" / "unit" / "single_task" / "coco.yaml"
    overrides = [f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", "run_type=predict",
                 f"env.save_dir={tmp_path / 'run'}", "env.device=cpu", "evaluation.batch_size=3",
                 "evaluation.max_batches=2", "model.type=unit_tiny",  # hidden 32, 2 layers, 2 heads
                 "checkpoint.init_from=null"]  # no backbone stage
    predict_with_random_weights(config, overrides, "val", tmp_path)
    folder = tmp_path / "run" / "predictions"
    assert sorted(p.name for p in folder.iterdir()) == ["coco_val.json", "coco_val.png",
                                                        "detections_val2017_unimm_results.json"]
    rows = json.loads((folder / "coco_val.json").read_text())
    image_ids = list(dict.fromkeys(r["image_id"] for r in rows))
    assert len(image_ids) == 6 and len(rows) % 6 == 0  # 2 batches of 3 images, every query of each
    categories = {c["id"] for c in json.loads((tiny_benchmark / "shapes" / "coco" / "annotations"
                                               / "instances_val2017.json").read_text())["categories"]}
    assert {r["category_id"] for r in rows} <= categories
    assert all(len(r["bbox"]) == 4 and 0 <= r["score"] <= 1 for r in rows)
    picture = Image.open(folder / "coco_val.png")
    assert picture.format == "PNG"
    assert picture.size == (4 * draw.CELL_SIZE, math.ceil(6 / 4) * draw.CELL_SIZE)  # the 6 predicted images
