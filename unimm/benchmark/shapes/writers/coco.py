"""COCO detection and captions (2017 names), and the same pictures under their 2014 names.

Writes ``coco/annotations/instances_{train,val}2017.json``, ``captions_{train,val}2017.json``,
pictures ``coco/{train,val}2017/<id:012d>.jpg`` and, as hard links, the 2014 names
``coco/{train,val}2014/COCO_{split}2014_<id:012d>.jpg`` that VQAv2 and Karpathy retrieval use.
"""
from __future__ import annotations

from unimm.benchmark.shapes import language, lexicon
from unimm.benchmark.shapes.pictures import Picture
from unimm.benchmark.shapes.writers.files import BenchmarkFolder, rng_for

LICENSES = [
    {"id": 1, "name": "CC0 1.0 (synthetic pictures)", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}
]


def info(description: str, year: int) -> dict:
    """The ``info`` block: fixed text, no generation time, so files stay byte-identical."""
    return {
        "contributor": "unimm shapes benchmark",
        "date_created": f"{year}/01/01",
        "description": description,
        "url": "",
        "version": "1.0",
        "year": year,
    }


def file_name_2017(image_id: int) -> str:
    return f"{image_id:012d}.jpg"


def file_name_2014(split: str, image_id: int) -> str:
    """COCO 2014 file name, e.g. ``COCO_val2014_000000000042.jpg``; ``split`` is "train" or "val"."""
    return f"COCO_{split}2014_{image_id:012d}.jpg"


def coco_captions(seed: int, picture: Picture) -> list[str]:
    """The five captions of a COCO picture (also used by Karpathy retrieval)."""
    return language.captions(picture.scene, rng_for(seed, "coco-captions", picture.image_id))


def _image_entry(picture: Picture) -> dict:
    return {
        "coco_url": "",
        "date_captured": "2017-01-01 00:00:00",
        "file_name": file_name_2017(picture.image_id),
        "flickr_url": "",
        "height": picture.scene.height,
        "id": picture.image_id,
        "license": 1,
        "width": picture.scene.width,
    }


def _categories() -> list[dict]:
    return [{"id": lexicon.COCO_CATEGORY_IDS[s], "name": s, "supercategory": "shape"} for s in lexicon.SHAPES]


def write_coco(folder: BenchmarkFolder, seed: int, pictures: list[Picture]) -> dict:
    """Write COCO detection, captions and pictures for train2017 and val2017.

    Returns:
        Counts: pictures, boxes and captions per split, e.g. ``{"instances_train2017": ...}``.
    """
    counts, annotation_id, caption_id = {}, 1, 1
    for split in ("train", "val"):
        chosen = [p for p in pictures if p.split == split]
        images, boxes, captions = [], [], []
        for picture in chosen:
            name_2017 = f"coco/{split}2017/{file_name_2017(picture.image_id)}"
            folder.write_picture(name_2017, picture.scene, "jpg")
            folder.link(f"coco/{split}2014/{file_name_2014(split, picture.image_id)}", name_2017)
            images.append(_image_entry(picture))
            for obj in picture.scene.objects:
                x, y, w, h = obj.bbox()
                boxes.append({
                    "area": round(obj.area(), 2),
                    "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                    "category_id": lexicon.COCO_CATEGORY_IDS[obj.shape],
                    "id": annotation_id,
                    "image_id": picture.image_id,
                    "iscrowd": 0,
                    "segmentation": [[round(v, 2) for point in obj.polygon() for v in point]],
                })
                annotation_id += 1
            for text in coco_captions(seed, picture):
                captions.append({"caption": text, "id": caption_id, "image_id": picture.image_id})
                caption_id += 1
        head = {"info": info("shapes world, COCO-style detection", 2017), "licenses": LICENSES, "images": images}
        instances = {**head, "annotations": boxes, "categories": _categories()}
        folder.write_json(f"coco/annotations/instances_{split}2017.json", instances)
        folder.write_json(f"coco/annotations/captions_{split}2017.json", {**head, "annotations": captions})
        counts[f"{split}2017"] = {"images": len(images), "boxes": len(boxes), "captions": len(captions),
                                  "images_without_boxes": sum(not p.scene.objects for p in chosen)}
    return counts
