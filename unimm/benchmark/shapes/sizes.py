"""How much the generator writes: named presets of per-dataset sample counts."""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class BenchmarkSize:
    """Sample counts of one benchmark size. Pairs and triples are per split, in official split order.

    Attributes:
        image_size: short side of the pictures in pixels (some are 5:4, so the long side is 1.25x).
        coco: pictures in (train2017, val2017); VQAv2 (train2014, val2014) and Visual Genome reuse them.
        vg_only: extra Visual Genome pictures that are not COCO pictures (all in the train split).
        questions_per_image: VQAv2 questions per picture.
        vg_questions_per_image: Visual Genome question-answer pairs per picture.
        flickr: Flickr30k pictures in (train, dev, test); SNLI-VE writes three hypotheses for each.
        nlvr2: NLVR2 statements in (train, dev, test1); each comes with two picture pairs.
        imagefolder: pictures per class in (train, val).
        sst2, qnli, qqp, rte: rows in (train, dev, test).
        mnli: premises in (train, dev_matched, dev_mismatched, test_matched, test_mismatched);
            three hypotheses each.
        corpus: documents in (train, val).
    """

    image_size: int
    coco: tuple[int, int]
    vg_only: int
    questions_per_image: int
    vg_questions_per_image: int
    flickr: tuple[int, int, int]
    nlvr2: tuple[int, int, int]
    imagefolder: tuple[int, int]
    sst2: tuple[int, int, int]
    qnli: tuple[int, int, int]
    qqp: tuple[int, int, int]
    rte: tuple[int, int, int]
    mnli: tuple[int, int, int, int, int]
    corpus: tuple[int, int]


SIZES = {
    "tiny": BenchmarkSize(
        image_size=64,
        coco=(24, 12),
        vg_only=6,
        questions_per_image=5,
        vg_questions_per_image=3,
        flickr=(24, 8, 8),
        nlvr2=(12, 6, 6),
        imagefolder=(4, 2),
        sst2=(2000, 400, 50),
        qnli=(300, 100, 50),
        qqp=(300, 100, 50),
        rte=(100, 50, 50),
        mnli=(100, 30, 30, 10, 10),
        corpus=(40, 10),
    ),
    "default": BenchmarkSize(
        image_size=64,
        coco=(3000, 500),
        vg_only=600,
        questions_per_image=5,
        vg_questions_per_image=3,
        flickr=(1600, 250, 250),
        nlvr2=(800, 150, 150),
        imagefolder=(400, 100),
        sst2=(8000, 872, 1000),
        qnli=(8000, 1000, 1000),
        qqp=(8000, 1000, 1000),
        rte=(2500, 277, 300),
        mnli=(4000, 350, 350, 300, 300),
        corpus=(3000, 300),
    ),
}
SIZES["large"] = replace(
    SIZES["default"],
    coco=(12000, 2000),
    vg_only=2400,
    flickr=(6400, 1000, 1000),
    nlvr2=(4000, 800, 800),
    imagefolder=(1600, 400),
    sst2=(32000, 872, 1821),
    qnli=(32000, 2000, 2000),
    qqp=(32000, 2000, 2000),
    rte=(2500, 277, 3000),
    mnli=(16000, 1000, 1000, 1000, 1000),
    corpus=(12000, 1000),
)


def resolve_size(size: str | BenchmarkSize, image_size: int | None = None) -> BenchmarkSize:
    """The counts for a preset name (or a custom ``BenchmarkSize``), with an optional picture size."""
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown benchmark size {size!r}; choose one of: {', '.join(SIZES)}")
        size = SIZES[size]
    if image_size is not None:
        if image_size < 32:
            raise ValueError(f"image_size={image_size} is too small to draw shapes; use 32 or more")
        size = replace(size, image_size=image_size)
    return size
