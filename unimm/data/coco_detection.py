"""COCO object detection from the official instances JSON."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from unimm.config.errors import ConfigError
from unimm.data.common import choose_transform, take
from unimm.data.detection import DetectionDataset, DetectionImage
from unimm.data.files import field, json_list, named_splits, read_json, require_files, split_file
from unimm.data.images import require_images
from unimm.data.problems import RecordProblems
from unimm.registry import DATASETS

COCO_SPLITS = {"train": "train2017", "val": "val2017", "test": "test2017"}


def is_test_split(official: str) -> bool:
    """Test splits (``test2017``, ``test-dev2017``) come as ``image_info_<x>.json``: images, no boxes."""
    return official.startswith("test")


def annotation_path(root: Path, official: str) -> Path:
    """``annotations/instances_<x>.json``, or ``annotations/image_info_<x>.json`` for a test split."""
    kind = "image_info" if is_test_split(official) else "instances"
    return root / "annotations" / f"{kind}_{official}.json"


def image_folder(root: Path, official: str) -> Path:
    """``<root>/<x>/``; test-dev is a subset of test, whose folder holds its pictures (``test2017/``)."""
    return root / official.replace("test-dev", "test")


def read_instances(path: Path, image_dir: Path, keep_crowd: bool, problems: RecordProblems | None = None,
                   labelled: bool = True) -> tuple[list[DetectionImage], list[dict[str, Any]]]:
    """Images (file order) with their boxes, and the categories sorted by id.

    Crowd annotations (``iscrowd`` = 1) are dropped unless ``keep_crowd``, as DETR trains;
    images without any box are kept. A box with a non-finite value or a width or height that is
    not positive cannot be trained on: it is dropped and noted in ``problems`` (reported once per
    dataset, an error with ``strict``). An image id given twice is an error. An image-info file
    (``labelled`` False: a test split) has no ``annotations``: its images come without boxes.
    """
    problems = problems or RecordProblems("?", path)
    data = read_json(path)
    categories = json_list(data, "categories", path)
    for i, category in enumerate(categories):
        field(category, "id", f"{path}, categories[{i}]", int)
    categories = sorted(categories, key=lambda c: c["id"])
    label_of = {c["id"]: i for i, c in enumerate(categories)}
    images: dict[int, dict[str, Any]] = {}
    for i, record in enumerate(json_list(data, "images", path)):
        where = f"{path}, images[{i}]"
        image_id = field(record, "id", where, int)
        if image_id in images:
            raise ConfigError(f"{where}: image id {image_id} is given twice in 'images'; each image must be listed once")
        images[image_id] = {"file_name": field(record, "file_name", where, str),
                            "height": field(record, "height", where, int), "width": field(record, "width", where, int),
                            "boxes": [], "labels": [], "areas": [], "crowd": []}
    for i, ann in enumerate(json_list(data, "annotations", path) if labelled else []):
        where = f"{path}, annotations[{i}]"
        image_id, category = field(ann, "image_id", where, int), field(ann, "category_id", where, int)
        bbox = field(ann, "bbox", where, list)
        crowd = int(ann.get("iscrowd", 0))
        if image_id not in images:
            raise ConfigError(f"{where}: image_id {image_id} is not in 'images'")
        if category not in label_of:
            raise ConfigError(f"{where}: category_id {category} is not in 'categories'")
        if len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise ConfigError(f"{where}: field 'bbox' should be [x, y, width, height], got {bbox!r}")
        if crowd and not keep_crowd:
            continue
        x, y, w, h = (float(v) for v in bbox)
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            problems.note("boxes with a value that is not a finite number, dropped", ann.get("id", f"[{i}]"))
            continue
        if w <= 0 or h <= 0:
            problems.note("boxes whose width or height is not positive, dropped", ann.get("id", f"[{i}]"))
            continue
        entry = images[image_id]
        entry["boxes"].append([x, y, x + w, y + h])
        entry["labels"].append(label_of[category])
        entry["areas"].append(float(ann.get("area", w * h)))
        entry["crowd"].append(crowd)
    out = [DetectionImage(image_id, image_dir / e.pop("file_name"), **e) for image_id, e in images.items()]
    return out, categories


@DATASETS.register(parts={"train_transform": "processors", "eval_transform": "processors"})
def coco_detection(
    *,
    data_dir: str,
    split: str,
    name: str,
    split_names: Mapping[str, str] | None = None,
    keep_crowd: bool = False,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
    strict: bool = False,
) -> DetectionDataset:
    """COCO detection: ``<data_dir>/annotations/instances_<x>.json`` and images in ``<data_dir>/<x>/``.

    A test split (``<x>`` = ``test2017``, or ``test-dev2017`` with ``split_names: {test:
    test-dev2017}``) reads ``annotations/image_info_<x>.json`` (images and categories, no boxes)
    and the pictures of ``test2017/``: the dataset says ``has_labels`` False and is for
    ``run_type=predict evaluation.split=test``, which writes the COCO results JSON.

    Args:
        data_dir: the COCO folder.
        split: ``train`` / ``val`` / ``test`` (runtime).
        name: the dataset's config key (runtime).
        split_names: split -> official name ``<x>`` (default train -> train2017, val -> val2017,
            test -> test2017).
        keep_crowd: keep ``iscrowd`` boxes in the targets (DETR drops them for training).
        max_samples: keep only the first images (None: all).
        check_images: check every image file exists when the dataset is built.
        train_transform: image transform of the train split (e.g. ``detr_train_transform``).
        eval_transform: image transform of the other splits (e.g. ``detr_eval_transform``).
        strict: annotations that cannot be used (non-finite or empty boxes) are an error instead
            of being dropped with a warning.

    Returns:
        A dataset whose samples hold ``image`` ``[3, H, W]``, ``image_id`` and ``target``:
        ``boxes`` ``[N, 4]`` normalised ``(cx, cy, w, h)``, ``labels`` ``[N]`` (contiguous
        class indices in category-id order; ``info()["categories"][i]["id"]`` maps them back),
        ``area`` ``[N]``, ``iscrowd`` ``[N]``, ``orig_size`` / ``size`` ``[2]`` as ``(H, W)``.
        Batches hold ``image`` ``[B, 3, H, W]``, ``pixel_mask`` ``[B, H, W]``, ``targets``
        (a list of B dicts) and ``image_id`` ``[B]``. ``info()`` gives ``num_classes``,
        ``categories`` (``{"id", "name"}`` per class index) and, on a labelled split,
        ``annotation_file`` (the ground truth of the ``coco_map`` metric).
    """
    official = split_file(named_splits(COCO_SPLITS, split_names), split, name)
    root = Path(data_dir)
    labelled = not is_test_split(official)
    annotation_file, folder = annotation_path(root, official), image_folder(root, official)
    require_files([annotation_file, folder], "coco")
    problems = RecordProblems(name, annotation_file, strict)
    images, categories = read_instances(annotation_file, folder, keep_crowd, problems, labelled)
    problems.report()
    images = take(images, max_samples, name)
    if check_images:
        require_images((im.path for im in images), name)
    info = {"num_classes": len(categories),
            "categories": [{"id": c["id"], "name": c.get("name", str(c["id"]))} for c in categories]}
    if labelled:
        info["annotation_file"] = str(annotation_file)
    return DetectionDataset(images, choose_transform(split, train_transform, eval_transform), name,
                            annotation_file, info, has_labels=labelled, results_name=official)
