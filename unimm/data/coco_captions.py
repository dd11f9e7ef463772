"""COCO captions from the official ``captions_<x>.json`` files."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from unimm.config.errors import ConfigError
from unimm.data.common import TRAIN_SPLIT, choose_transform, take
from unimm.data.files import field, json_list, named_splits, read_json, require_files, split_file
from unimm.data.image_text import Caption, ImageTextPairs
from unimm.data.images import require_images
from unimm.registry import DATASETS

COCO_CAPTION_SPLITS = {"train": "train2017", "val": "val2017"}


def read_captions(path: Path, image_dir: Path) -> list[Caption]:
    """Every caption of the file, in annotation order, with its image."""
    data = read_json(path)
    images: dict[int, tuple[int, Path]] = {}
    for i, record in enumerate(json_list(data, "images", path)):
        where = f"{path}, images[{i}]"
        images[field(record, "id", where, int)] = (len(images), image_dir / field(record, "file_name", where, str))
    captions = []
    for i, ann in enumerate(json_list(data, "annotations", path)):
        where = f"{path}, annotations[{i}]"
        image_id = field(ann, "image_id", where, int)
        if image_id not in images:
            raise ConfigError(f"{where}: image_id {image_id} is not in 'images'")
        index, image_path = images[image_id]
        captions.append(Caption(field(ann, "id", where, int), image_id, index, image_path,
                                field(ann, "caption", where, str).strip()))
    return captions


@DATASETS.register(parts={"tokenizer": "processors", "train_transform": "processors",
                          "eval_transform": "processors"})
def coco_captions(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    split_names: Mapping[str, str] | None = None,
    mlm_probability: float = 0.0,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> ImageTextPairs:
    """COCO captions: ``<data_dir>/annotations/captions_<x>.json``, images in ``<data_dir>/<x>/``.

    Args:
        data_dir: the COCO folder.
        split: ``train`` / ``val`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        split_names: split -> official name ``<x>`` (default train2017 / val2017).
        mlm_probability: share of caption tokens masked for MLM (0: no masking); masks are
            drawn afresh for train and fixed per sample for the other splits.
        max_samples: keep only the first captions (None: all).
        check_images: check every image file exists when the dataset is built.
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        One sample per caption; batches hold ``image`` ``[B, 3, H, W]``, ``pixel_mask``
        ``[B, H, W]``, ``input_ids`` / ``attention_mask`` / ``token_type_ids`` ``[B, T]``
        (``mlm_labels`` ``[B, T]`` when masking), ``image_id`` / ``caption_id`` /
        ``image_index`` ``[B]`` and ``caption`` (B strings). Task type ``image_text``.
    """
    official = split_file(named_splits(COCO_CAPTION_SPLITS, split_names), split, name)
    root = Path(data_dir)
    path = root / "annotations" / f"captions_{official}.json"
    require_files([path, root / official], "coco_captions")
    captions = take(read_captions(path, root / official), max_samples, name)
    if check_images:
        require_images((c.image_path for c in captions), name)
    return ImageTextPairs(captions, tokenizer, choose_transform(split, train_transform, eval_transform), name,
                          path, task_type="image_text", mlm_probability=mlm_probability,
                          mask_seed=None if split == TRAIN_SPLIT else 0)
