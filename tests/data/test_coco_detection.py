"""COCO detection from an instances file with the official field names and its edge cases."""
from __future__ import annotations

import pytest
import torch

from tests.data.conftest import write_image, write_json
from unimm.config.errors import ConfigError
from unimm.interfaces import Dataset
from unimm.registry import DATASETS

CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"},
              {"id": 18, "name": "dog", "supercategory": "animal"},
              {"id": 3, "name": "car", "supercategory": "vehicle"}]


def image_record(image_id: int) -> dict:
    return {"id": image_id, "file_name": f"{image_id:012d}.jpg", "height": 24, "width": 32, "license": 1,
            "coco_url": "", "flickr_url": "", "date_captured": "2013-11-14 16:28:13"}


def annotation(ann_id: int, image_id: int, category_id: int, bbox: list, iscrowd: int = 0) -> dict:
    polygon = [[bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]]]
    segmentation = {"counts": [0, 768], "size": [24, 32]} if iscrowd else polygon
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": bbox,
            "area": float(bbox[2] * bbox[3]), "iscrowd": iscrowd, "segmentation": segmentation}


def write_coco(root, split="val2017", annotations=None, images=(42, 73, 74)):
    data = {
        "info": {"description": "fixture"}, "licenses": [{"id": 1, "name": "x", "url": ""}],
        "images": [image_record(i) for i in images],
        "annotations": annotations if annotations is not None else [
            annotation(1, 42, 18, [4, 2, 10, 8]),
            annotation(2, 42, 1, [0, 0, 32, 24], iscrowd=1),  # a crowd box
            annotation(3, 74, 3, [20, 10, 20, 20]),  # runs past the image: clipped
            annotation(4, 74, 1, [5, 5, 0, 3]),  # zero width: dropped
        ],  # image 73 has no boxes
        "categories": CATEGORIES,
    }
    path = write_json(root / "annotations" / f"instances_{split}.json", data)
    for i in images:
        write_image(root / split / f"{i:012d}.jpg", (32, 24))
    return path


def build(root, split="val", **kwargs):
    return DATASETS.build({"type": "coco_detection", "data_dir": str(root), **kwargs}, split=split, name="coco")


def test_samples_have_detr_targets_and_category_mapping(tmp_path):
    write_coco(tmp_path)
    ds = build(tmp_path)
    assert isinstance(ds, Dataset) and ds.task_type == "detection" and len(ds) == 3
    info = ds.info()
    assert info["num_classes"] == 3 and [c["id"] for c in info["categories"]] == [1, 3, 18]
    assert [c["name"] for c in info["categories"]] == ["person", "car", "dog"]
    assert ds.coco is None and info["annotation_file"].endswith("instances_val2017.json")
    first = ds[0]
    target = first["target"]
    assert first["image_id"] == 42 and tuple(first["image"].shape) == (3, 24, 32)
    assert target["labels"].tolist() == [2]  # the dog; the crowd person is dropped
    assert target["boxes"][0].tolist() == pytest.approx([9 / 32, 6 / 24, 10 / 32, 8 / 24])
    assert target["iscrowd"].tolist() == [0] and target["area"].tolist() == [80.0]
    assert target["orig_size"].tolist() == [24, 32] and target["size"].tolist() == [24, 32]


def test_image_without_boxes_and_clipped_boxes(tmp_path):
    write_coco(tmp_path)
    ds = build(tmp_path)
    empty = ds[1]["target"]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    clipped = ds[2]["target"]
    assert clipped["labels"].tolist() == [1]  # the car; the zero-width box is gone
    assert clipped["boxes"][0].tolist() == pytest.approx([26 / 32, 17 / 24, 12 / 32, 14 / 24])


def test_keep_crowd(tmp_path):
    write_coco(tmp_path)
    target = build(tmp_path, keep_crowd=True)[0]["target"]
    assert target["iscrowd"].tolist() == [0, 1] and target["labels"].tolist() == [2, 0]


def test_resize_keeps_normalised_boxes_and_records_size(tmp_path):
    write_coco(tmp_path)
    ds = build(tmp_path, eval_transform={"type": "detr_eval_transform", "size": 12, "max_size": 20})
    target = ds[0]["target"]
    assert tuple(ds[0]["image"].shape) == (3, 12, 16)
    assert target["size"].tolist() == [12, 16] and target["orig_size"].tolist() == [24, 32]
    assert target["boxes"][0].tolist() == pytest.approx([9 / 32, 6 / 24, 10 / 32, 8 / 24])


def test_train_split_uses_the_train_transform(tmp_path):
    write_coco(tmp_path, split="train2017")
    resize = {"type": "image_pipeline", "steps": [{"type": "resize_shortest", "size": 6}, "normalize_image"]}
    ds = build(tmp_path, split="train", train_transform=resize,
               eval_transform={"type": "detr_eval_transform", "size": 12})
    assert tuple(ds[0]["image"].shape) == (3, 6, 8)
    no_tensor = build(tmp_path, split="train", train_transform={"type": "resize_shortest", "size": 6})
    with pytest.raises(ConfigError, match="must end with normalize_image"):
        no_tensor[0]


def test_collate_pads_and_keeps_targets(tmp_path):
    write_coco(tmp_path)
    ds = build(tmp_path)
    batch = ds.collate([ds[0], ds[1], ds[2]])
    assert batch["image"].shape == (3, 3, 24, 32) and batch["pixel_mask"].all()
    assert batch["image_id"].tolist() == [42, 73, 74] and len(batch["targets"]) == 3
    assert batch["dataset_name"] == "coco" and batch["task_type"] == "detection"


def test_pycocotools_reads_the_fixture(tmp_path):
    from pycocotools.coco import COCO

    coco = COCO(str(write_coco(tmp_path)))
    assert sorted(coco.getCatIds()) == [1, 3, 18] and len(coco.getAnnIds(imgIds=[42])) == 2


def test_missing_files_are_listed_together(tmp_path):
    with pytest.raises(ConfigError) as err:
        build(tmp_path)
    text = str(err.value)
    assert str(tmp_path / "annotations" / "instances_val2017.json") in text
    assert str(tmp_path / "val2017") in text and "cocodataset.org" in text


def test_a_missing_image_is_named(tmp_path):
    write_coco(tmp_path)
    (tmp_path / "val2017" / f"{73:012d}.jpg").unlink()
    with pytest.raises(ConfigError, match=r"missing image: .*000000000073.jpg"):
        build(tmp_path)
    ds = build(tmp_path, check_images=False)
    with pytest.raises(ConfigError, match=r"image file not found: .*000000000073.jpg \(named by image_id 73"):
        ds[1]


def test_malformed_annotation_names_the_record_and_field(tmp_path):
    bad = annotation(1, 42, 18, [4, 2, 10, 8])
    del bad["bbox"]
    write_coco(tmp_path, annotations=[annotation(0, 42, 18, [1, 1, 2, 2]), bad])
    with pytest.raises(ConfigError, match=r"instances_val2017.json, annotations\[1\]: field 'bbox' is missing"):
        build(tmp_path)
    write_coco(tmp_path, annotations=[annotation(0, 42, 99, [1, 1, 2, 2])])
    with pytest.raises(ConfigError, match=r"annotations\[0\]: category_id 99 is not in 'categories'"):
        build(tmp_path)


def test_max_samples_and_unknown_split(tmp_path):
    write_coco(tmp_path)
    assert len(build(tmp_path, max_samples=2)) == 2
    with pytest.raises(ConfigError, match="unknown split 'minival'"):
        build(tmp_path, split="minival")
    assert torch.is_tensor(build(tmp_path, max_samples=1)[0]["image"])


def test_unusable_boxes_are_dropped_and_reported_once_or_refused_when_strict(tmp_path, caplog):
    write_coco(tmp_path, annotations=[annotation(1, 42, 18, [4, 2, 10, 8]), annotation(5, 42, 1, [4, 2, -3, 8]),
                                      annotation(6, 73, 3, [float("nan"), 1, 2, 2]), annotation(7, 74, 1, [5, 5, 0, 3])])
    with caplog.at_level("WARNING", logger="unimm"):
        dataset = build(tmp_path)
    assert "2 boxes whose width or height is not positive, dropped (ids 5, 7)" in caplog.text
    assert "1 boxes with a value that is not a finite number, dropped (ids 6)" in caplog.text
    assert [len(image.boxes) for image in dataset.images] == [1, 0, 0]
    with pytest.raises(ConfigError, match=r"datasets\.coco: .*instances_val2017\.json: 2 boxes whose width"):
        build(tmp_path, strict=True)


def test_an_image_id_given_twice_is_an_error(tmp_path):
    write_coco(tmp_path, images=(42, 42))
    with pytest.raises(ConfigError, match=r"images\[1\]: image id 42 is given twice"):
        build(tmp_path)
