"""The picture sets of the benchmark: which scenes exist, their ids and splits.

Official datasets share pictures (VQAv2 and Visual Genome use COCO pictures; SNLI-VE and the
Flickr30k retrieval split share Flickr30k pictures), and so do ours: each set is sampled once
here and every writer that needs it asks for the same set again.
"""
from __future__ import annotations

from dataclasses import dataclass

from unimm.benchmark.shapes.lexicon import SHAPES
from unimm.benchmark.shapes.sizes import BenchmarkSize
from unimm.benchmark.shapes.world import Scene, sample_scene, sample_single_object_scene
from unimm.benchmark.shapes.writers.files import rng_for

FLICKR_FIRST_ID = 1_000_000_000  # Flickr30k ids are ten-digit photo ids


@dataclass(frozen=True)
class Picture:
    """One picture: its id in its dataset, its split, and what it shows."""

    image_id: int
    split: str
    scene: Scene


def _spread_ids(seed: int, stream: str, count: int) -> list[int]:
    """``count`` distinct ids, not contiguous and not in order (like COCO's), from 1 to about 10x count."""
    rng = rng_for(seed, stream)
    return [int(i) + 1 for i in rng.choice(10 * max(count, 1), size=count, replace=False)]


def coco_pictures(seed: int, size: BenchmarkSize) -> list[Picture]:
    """COCO pictures: ``size.coco`` pictures in splits "train" and "val" (2017 names; 2014 shares them)."""
    counts = dict(zip(("train", "val"), size.coco))
    ids = _spread_ids(seed, "coco-ids", sum(counts.values()))
    pictures, index = [], 0
    for split, count in counts.items():
        for _ in range(count):
            scene = sample_scene(rng_for(seed, "coco-scene", index), size.image_size)
            pictures.append(Picture(ids[index], split, scene))
            index += 1
    return pictures


def vg_only_pictures(seed: int, size: BenchmarkSize) -> list[Picture]:
    """Visual Genome pictures that are not in COCO (ids are given later, with the COCO ones)."""
    scenes = [sample_scene(rng_for(seed, "vg-scene", i), size.image_size) for i in range(size.vg_only)]
    return [Picture(0, "train", scene) for scene in scenes]


def flickr_pictures(seed: int, size: BenchmarkSize) -> list[Picture]:
    """Flickr30k pictures in splits "train", "dev", "test" (SNLI-VE's names for the Karpathy splits)."""
    counts = dict(zip(("train", "dev", "test"), size.flickr))
    ids = _spread_ids(seed, "flickr-ids", sum(counts.values()))
    pictures, index = [], 0
    for split, count in counts.items():
        for _ in range(count):
            scene = sample_scene(rng_for(seed, "flickr-scene", index), size.image_size)
            pictures.append(Picture(FLICKR_FIRST_ID + ids[index], split, scene))
            index += 1
    return pictures


def class_pictures(seed: int, size: BenchmarkSize, split: str, per_class: int) -> list[Picture]:
    """Image-folder pictures: ``per_class`` one-object pictures per shape; ``image_id`` counts per class."""
    pictures = []
    for class_index, shape in enumerate(SHAPES):
        for k in range(per_class):
            rng = rng_for(seed, f"imagefolder-{split}", class_index, k)
            pictures.append(Picture(k, split, sample_single_object_scene(rng, size.image_size, shape)))
    return pictures
