"""Visual Genome's train / val split lists by COCO val2017, as UniT makes them (Sec. 4.1).

Visual Genome ships no splits. UniT evaluates VG detection "on those images in COCO val2017" and
trains "on those images not overlapping with COCO val2017": ``val`` = the VG images whose
``coco_id`` (a field of ``image_data.json``, null for VG images that are not COCO's) is an image
of COCO val2017, ``train`` = every other VG image. The lists hold VG image ids, the format
``unimm.data.visual_genome.read_image_ids`` reads; ``unimm_data vg-splits`` writes them.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable

from unimm.config.errors import ConfigError
from unimm.data.files import coco_image_ids, require_files
from unimm.data.visual_genome import VG_SPLITS, read_image_data, read_image_ids
from unimm.utils.fileio import atomic_write_text

logger = logging.getLogger("unimm")


def make_vg_splits(vg_dir: str | os.PathLike, coco_val_annotations: str | os.PathLike) -> tuple[list[int], list[int]]:
    """UniT's VG split lists: ``val`` = the VG images of COCO val2017, ``train`` = every other one.

    Args:
        vg_dir: the Visual Genome folder (its ``image_data.json`` is read).
        coco_val_annotations: COCO's ``annotations/instances_val2017.json`` (any file
            ``coco_image_ids`` reads); its images are the evaluation images.

    Returns:
        ``(train_ids, val_ids)``: VG image ids in ``image_data.json`` order.

    Raises:
        ConfigError: a file is missing or malformed, or no VG image is a COCO image of the file
            (a ``coco_id``-less ``image_data.json``, or another file than COCO val2017).
    """
    image_data, coco_val = Path(vg_dir) / "image_data.json", Path(coco_val_annotations)
    require_files([image_data], "vg")
    require_files([coco_val], "coco")
    images = read_image_data(image_data, Path(vg_dir))
    evaluated = coco_image_ids(coco_val)
    val = [i for i, image in images.items() if image.coco_id in evaluated]
    if not val:
        with_coco = sum(image.coco_id is not None for image in images.values())
        raise ConfigError(f"no image of {image_data} is one of the {len(evaluated)} COCO images of {coco_val} "
                          f"({with_coco} of its {len(images)} images have a coco_id): the val split would be "
                          "empty; give the Visual Genome v1.2 image_data.json (with 'coco_id') and COCO's "
                          "annotations/instances_val2017.json")
    val_set = set(val)
    return [i for i in images if i not in val_set], val


def write_vg_splits(vg_dir: str | os.PathLike, coco_val_annotations: str | os.PathLike,
                    out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write ``train_image_ids.json`` and ``val_image_ids.json`` (``make_vg_splits``), each atomically.

    Args:
        vg_dir: the Visual Genome folder.
        coco_val_annotations: COCO's ``annotations/instances_val2017.json``.
        out_dir: where to write them (None: ``vg_dir``, where ``visual_genome`` reads them).

    Returns:
        The two paths written, train first; the counts are logged (``vg_splits_summary``).
    """
    train, val = make_vg_splits(vg_dir, coco_val_annotations)
    folder = Path(out_dir) if out_dir is not None else Path(vg_dir)
    paths = [atomic_write_text(folder / VG_SPLITS[split], json.dumps(ids))
             for split, ids in (("train", train), ("val", val))]
    logger.info("%s (val: the VG images of %s)", vg_splits_summary(paths), coco_val_annotations)
    return paths


def vg_splits_summary(paths: Iterable[str | os.PathLike]) -> str:
    """One line of the image counts of written split lists, e.g. ``"Visual Genome splits in
    /data/vg: train_image_ids.json 103,077 images, val_image_ids.json 5,000 images"``."""
    paths = [Path(p) for p in paths]
    counts = ", ".join(f"{p.name} {len(read_image_ids(p)):,} images" for p in paths)
    folders = sorted({str(p.parent) for p in paths})
    return f"Visual Genome splits in {', '.join(folders)}: {counts}"

