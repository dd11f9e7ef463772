"""Visual Genome objects with their attributes, as detection targets (UniT's VG task)."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

from unimm.config.errors import ConfigError
from unimm.data.common import choose_transform, take
from unimm.data.detection import DetectionDataset, DetectionImage
from unimm.data.files import field, json_list, named_splits, read_json, read_text, require_files, split_file
from unimm.data.images import require_images
from unimm.registry import DATASETS

logger = logging.getLogger("unimm")

VG_SPLITS = {"train": "train_image_ids.json", "val": "val_image_ids.json"}
VgObject = tuple[list[float], str, list[str]]  # box (x0, y0, x1, y1), name, attribute names
SPLITS_TOOL = "unimm_data vg-splits --vg {vg} --coco-val <coco>/annotations/instances_val2017.json"
SHOWN_IDS = 8  # unknown split ids named in an error; the rest are counted


class VgImage(NamedTuple):
    """One record of ``image_data.json``: its picture file, the size stated, its COCO image (or None)."""

    path: Path
    height: int
    width: int
    coco_id: int | None


def clean_name(name: str) -> str:
    """Visual Genome names are free text: lower case, single spaces."""
    return " ".join(name.lower().split())


def record_image_id(record: Any, where: str) -> int:
    """The image id of a record; VG releases name it ``image_id`` (``id`` before v1.2)."""
    key = "image_id" if isinstance(record, dict) and "image_id" in record else "id"
    return field(record, key, where, int)


def read_image_data(path: Path, data_dir: Path) -> dict[int, VgImage]:
    """image id -> its ``VgImage``, the file named after the ``url`` (``VG_100K/<id>.jpg``).

    ``coco_id`` is None where the record's is null or absent (VG images that are not COCO's).
    """
    out = {}
    for i, record in enumerate(json_list(read_json(path), None, path)):
        where = f"{path}, [{i}]"
        image_id = record_image_id(record, where)
        url = record.get("url") or f"VG_100K/{image_id}.jpg"
        folder, file_name = url.rstrip("/").split("/")[-2:] if "/" in url else ("VG_100K", url)
        coco_id = record.get("coco_id")
        if coco_id is not None and (not isinstance(coco_id, int) or isinstance(coco_id, bool)):
            raise ConfigError(f"{where}: field 'coco_id' should be int or null, got {coco_id!r}")
        out[image_id] = VgImage(data_dir / folder / file_name, field(record, "height", where, int),
                                field(record, "width", where, int), coco_id)
    return out


def read_image_ids(path: Path) -> list[int]:
    """A split file: a JSON list of Visual Genome image ids (``image_data.json``'s ``image_id``)."""
    ids = json_list(read_json(path), None, path)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ConfigError(f"{path}: expected a JSON list of integer image ids")
    return ids


def check_split_ids(ids: Sequence[int], images: Mapping[int, VgImage], split_path: Path, image_data: Path) -> None:
    """Every id of a split list must be a VG image of ``image_data.json``, listed once.

    Ids that are not are never dropped in silence (a split of COCO ids would be empty and score an
    mAP of 0): the error counts them, shows a few and, when they are ``coco_id`` values of
    ``image_data.json``, says the list holds COCO ids and names the tool that writes VG ones.
    """
    twice = [i for i, count in Counter(ids).items() if count > 1]
    if twice:
        raise ConfigError(f"{split_path}: image id {twice[0]} is listed more than once ({len(twice)} such ids); "
                          "list each Visual Genome image once")
    unknown = [i for i in ids if i not in images]
    if not unknown:
        return
    shown = ", ".join(str(i) for i in unknown[:SHOWN_IDS]) + (", ..." if len(unknown) > SHOWN_IDS else "")
    message = (f"{split_path}: {len(unknown)} of its {len(ids)} image ids are not images of {image_data} "
               f"({shown}); a split list holds Visual Genome image ids (the 'image_id' of image_data.json)")
    coco_ids = {image.coco_id for image in images.values() if image.coco_id is not None}
    as_coco = sum(i in coco_ids for i in unknown)
    if as_coco:
        message += (f"; {as_coco} of them are 'coco_id' values of image_data.json: the list looks like COCO image "
                    f"ids. Write the VG lists (train: the VG images outside COCO val2017, val: those inside it) "
                    f"with: {SPLITS_TOOL.format(vg=image_data.parent)}")
    raise ConfigError(message)


def warn_on_overlap(split: str, ids: Sequence[int], train: set[int], split_path: Path, name: str) -> None:
    """An evaluation split that shares images with train scores pictures the model has seen: say so."""
    if split == "train":
        return
    shared = sum(i in train for i in ids)
    if shared:
        logger.warning("dataset '%s': %d of the %d images of its '%s' split (%s) are also train images",
                       name, shared, len(ids), split, split_path)


def read_objects(objects_path: Path, attributes_path: Path, wanted: set[int]) -> dict[int, list[VgObject]]:
    """image id -> its objects (box, name, attributes) for the ``wanted`` images."""
    attributes: dict[int, list[str]] = {}
    for i, record in enumerate(json_list(read_json(attributes_path), None, attributes_path)):
        if record_image_id(record, f"{attributes_path}, [{i}]") not in wanted:
            continue
        for j, obj in enumerate(field(record, "attributes", f"{attributes_path}, [{i}]", list)):
            object_id = field(obj, "object_id", f"{attributes_path}, [{i}].attributes[{j}]", int)
            attributes[object_id] = [clean_name(a) for a in obj.get("attributes") or []]
    out: dict[int, list[VgObject]] = {}
    for i, record in enumerate(json_list(read_json(objects_path), None, objects_path)):
        image_id = record_image_id(record, f"{objects_path}, [{i}]")
        if image_id not in wanted:
            continue
        objects = out.setdefault(image_id, [])
        for j, obj in enumerate(field(record, "objects", f"{objects_path}, [{i}]", list)):
            where = f"{objects_path}, [{i}].objects[{j}]"
            x, y, w, h = (float(field(obj, k, where, (int, float))) for k in ("x", "y", "w", "h"))
            names = obj.get("names") or ([obj["name"]] if "name" in obj else None)
            if not names:
                raise ConfigError(f"{where}: field 'names' is missing or empty")
            objects.append(([x, y, x + w, y + h], clean_name(names[0]),
                            attributes.get(field(obj, "object_id", where, int), [])))
    return out


def read_class_file(path: Path) -> tuple[list[str], dict[str, int]]:
    """A class list, one class a line; ``name,synonym,...`` lines map every synonym to the class."""
    if not path.is_file():
        raise ConfigError(f"class list not found: {path}; give a text file with one class a line")
    names, index = [], {}
    for line in read_text(path).splitlines():
        synonyms = [clean_name(s) for s in line.split(",") if s.strip()]
        if synonyms:
            index.update({s: len(names) for s in synonyms})
            names.append(synonyms[0])
    return names, index


def most_common(counts: Counter[str], size: int) -> tuple[list[str], dict[str, int]]:
    """The ``size`` most frequent names (ties alphabetical) and their indices."""
    names = [n for n, _ in sorted(counts.items(), key=lambda t: (-t[1], t[0]))[:size]]
    return names, {n: i for i, n in enumerate(names)}


def to_detection_image(image_id: int, image: VgImage, objects: list[VgObject],
                       classes: dict[str, int], attribute_classes: dict[str, int]) -> DetectionImage:
    """Keep the objects whose name is a class; keep the attributes that are classes."""
    path, height, width = image.path, image.height, image.width
    kept = [o for o in objects if o[1] in classes]
    return DetectionImage(
        image_id, path, height, width,
        boxes=[o[0] for o in kept], labels=[classes[o[1]] for o in kept],
        areas=[(o[0][2] - o[0][0]) * (o[0][3] - o[0][1]) for o in kept], crowd=[0] * len(kept),
        attributes=[list(dict.fromkeys(attribute_classes[a] for a in o[2] if a in attribute_classes)) for o in kept])


@DATASETS.register(parts={"train_transform": "processors", "eval_transform": "processors"})
def visual_genome(
    *,
    data_dir: str,
    split: str,
    name: str,
    split_files: Mapping[str, str] | None = None,
    object_vocab_file: str | None = None,
    attribute_vocab_file: str | None = None,
    num_object_classes: int = 1600,
    num_attribute_classes: int = 400,
    max_attributes: int = 16,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> DetectionDataset:
    """Visual Genome detection with attributes from ``image_data.json``, ``objects.json``, ``attributes.json``.

    Classes are the ``num_object_classes`` most frequent object names (and attribute
    names) of the train split, unless class files are given (one class a line, synonyms
    after commas, as the bottom-up-attention ``objects_vocab.txt``). Objects of other
    names are dropped.

    Visual Genome has no official splits. A split list is a JSON list of **Visual Genome**
    image ids (``image_data.json``'s ``image_id``, not its ``coco_id``), e.g. ``[1, 2, 107899]``,
    each id once; the samples follow its order. UniT's (Sec. 4.1: val = the VG images of COCO
    val2017, train = every other) are written by ``unimm_data vg-splits --vg <vg folder>
    --coco-val <coco>/annotations/instances_val2017.json`` (``unimm.data.vg_splits``). An id
    that is not an image of ``image_data.json`` is an error, and one that is a ``coco_id``
    there is named as a COCO id.

    Args:
        data_dir: the Visual Genome folder.
        split: ``train`` / ``val`` (runtime).
        name: the dataset's config key (runtime).
        split_files: split -> its split list, relative to ``data_dir`` (default
            ``<split>_image_ids.json``); the train list also chooses the classes.
        object_vocab_file: object class list, relative to ``data_dir`` (None: from train).
        attribute_vocab_file: attribute class list, relative to ``data_dir`` (None: from train).
        num_object_classes: classes kept when built from train.
        num_attribute_classes: attribute classes kept when built from train.
        max_attributes: attributes kept per object.
        max_samples: keep only the first images of the split (None: all).
        check_images: check every image file exists when the dataset is built.
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        A detection dataset (see ``coco_detection``) whose targets also hold
        ``attributes`` ``[N, max_attributes]``: attribute class indices, padded with -1.
        ``info()`` gives ``categories`` (``{"id": index + 1, "name"}``) and ``attributes``
        (names); the dataset's ``coco`` is its ground truth as a pycocotools ``COCO``.
    """
    root = Path(data_dir)
    files = {k: root / v for k, v in [("image_data", "image_data.json"), ("objects", "objects.json"),
                                      ("attributes", "attributes.json")]}
    split_names = named_splits(VG_SPLITS, split_files)
    train_ids, split_ids = root / split_file(split_names, "train", name), root / split_file(split_names, split, name)
    vocab_files = [root / f for f in (object_vocab_file, attribute_vocab_file) if f]
    require_files([*files.values(), train_ids, split_ids, *vocab_files], "vg")
    meta = read_image_data(files["image_data"], root)
    ids, train_list = read_image_ids(split_ids), read_image_ids(train_ids)
    for path, listed in {split_ids: ids, train_ids: train_list}.items():  # once when split is train
        check_split_ids(listed, meta, path, files["image_data"])
    train = set(train_list)
    warn_on_overlap(split, ids, train, split_ids, name)
    objects = read_objects(files["objects"], files["attributes"], set(ids) | train)
    counted = [o for i in train for o in objects.get(i, [])]
    classes, class_index = (read_class_file(root / object_vocab_file) if object_vocab_file
                            else most_common(Counter(o[1] for o in counted), num_object_classes))
    attributes, attribute_index = (read_class_file(root / attribute_vocab_file) if attribute_vocab_file
                                   else most_common(Counter(a for o in counted for a in o[2]), num_attribute_classes))
    images = [to_detection_image(i, meta[i], objects.get(i, []), class_index, attribute_index)
              for i in take(ids, max_samples, name)]
    if check_images:
        require_images((im.path for im in images), name)
    info = {"num_classes": len(classes), "categories": [{"id": i + 1, "name": n} for i, n in enumerate(classes)],
            "num_attributes": len(attributes), "attributes": attributes}
    return DetectionDataset(images, choose_transform(split, train_transform, eval_transform), name,
                            files["objects"], info, max_attributes=max_attributes, ground_truth_in_memory=True)
