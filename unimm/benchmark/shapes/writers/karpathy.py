"""Karpathy-split caption files for image-text retrieval: ``karpathy/dataset_{coco,flickr30k}.json``.

``dataset_coco.json`` lists the COCO pictures by their 2014 names (``filepath`` "train2014" or
"val2014" under ``coco/``), with splits train / val / test / restval taken from val2014 as
Karpathy did; ``dataset_flickr30k.json`` lists the Flickr30k pictures (``filename`` under
``flickr30k/flickr30k_images/``) with the SNLI-VE splits (dev is "val").
"""
from __future__ import annotations

import re

from unimm.benchmark.shapes.pictures import Picture
from unimm.benchmark.shapes.writers.coco import coco_captions, file_name_2014
from unimm.benchmark.shapes.writers.files import BenchmarkFolder
from unimm.benchmark.shapes.writers.snli_ve import flickr_captions

# How val2014 pictures are shared out, in order (Karpathy: 5000 val, 5000 test, the rest restval).
VAL2014_SHARES = (("val", 0.4), ("test", 0.4), ("restval", 0.2))


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _entry(imgid: int, first_sentid: int, captions: list[str], split: str, extra: dict) -> dict:
    sentids = list(range(first_sentid, first_sentid + len(captions)))
    sentences = [
        {"imgid": imgid, "raw": raw, "sentid": sid, "tokens": _tokens(raw)} for raw, sid in zip(captions, sentids)
    ]
    return {**extra, "imgid": imgid, "sentences": sentences, "sentids": sentids, "split": split}


def _coco_split(picture: Picture, position: int, val_total: int) -> str:
    if picture.split == "train":
        return "train"
    bound = 0.0
    for name, share in VAL2014_SHARES:
        bound += share * val_total
        if position < bound:
            return name
    return VAL2014_SHARES[-1][0]


def write_karpathy(folder: BenchmarkFolder, seed: int, coco: list[Picture], flickr: list[Picture]) -> dict:
    """Write both retrieval files; returns pictures per split for each."""
    images, sentid, val_seen = [], 0, 0
    val_total = sum(p.split == "val" for p in coco)
    for imgid, picture in enumerate(coco):
        split = _coco_split(picture, val_seen, val_total)
        val_seen += picture.split == "val"
        captions = coco_captions(seed, picture)
        extra = {"cocoid": picture.image_id, "filename": file_name_2014(picture.split, picture.image_id),
                 "filepath": f"{picture.split}2014"}
        images.append(_entry(imgid, sentid, captions, split, extra))
        sentid += len(captions)
    folder.write_json("karpathy/dataset_coco.json", {"dataset": "coco", "images": images})
    counts = {"coco": _split_counts(images)}
    images, sentid = [], 0
    for imgid, picture in enumerate(flickr):
        captions = flickr_captions(seed, picture)
        split = "val" if picture.split == "dev" else picture.split
        images.append(_entry(imgid, sentid, captions, split, {"filename": f"{picture.image_id}.jpg"}))
        sentid += len(captions)
    folder.write_json("karpathy/dataset_flickr30k.json", {"dataset": "flickr30k", "images": images})
    counts["flickr30k"] = _split_counts(images)
    return counts


def _split_counts(images: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for image in images:
        counts[image["split"]] = counts.get(image["split"], 0) + 1
    return dict(sorted(counts.items()))
