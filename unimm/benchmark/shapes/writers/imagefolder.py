"""Image-folder classification: ``imagefolder/{train,val}/<shape>/<shape>_<k:05d>.jpg``.

Each picture holds one medium or large shape on a random background; the class is the shape.
"""
from __future__ import annotations

from unimm.benchmark.shapes.pictures import class_pictures
from unimm.benchmark.shapes.sizes import BenchmarkSize
from unimm.benchmark.shapes.writers.files import BenchmarkFolder


def write_imagefolder(folder: BenchmarkFolder, seed: int, size: BenchmarkSize) -> tuple[dict, dict]:
    """Write both splits.

    Returns:
        ``(counts, records)``: pictures per split, and per split the list of class names.
    """
    counts, records = {}, {}
    for split, per_class in zip(("train", "val"), size.imagefolder):
        labels = []
        for picture in class_pictures(seed, size, split, per_class):
            shape = picture.scene.objects[0].shape
            name = f"imagefolder/{split}/{shape}/{shape}_{picture.image_id:05d}.jpg"
            folder.write_picture(name, picture.scene, "jpg")
            labels.append(shape)
        counts[split] = len(labels)
        records[split] = labels
    return counts, records
