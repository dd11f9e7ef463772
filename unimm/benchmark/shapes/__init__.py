"""The embedded "shapes" benchmark: a synthetic world written in the official dataset layouts.

``generate_shapes(root, size="default", seed=0)`` renders pictures of coloured shapes (circle,
square, triangle, diamond, star, cross; six colours; three sizes; varied backgrounds) and writes,
under ``<root>/shapes/``, COCO detection and captions, Visual Genome objects / attributes / QA,
VQAv2, SNLI-VE, Karpathy retrieval, NLVR2, an image folder, GLUE-style text tasks, a text corpus and
a WordPiece vocabulary, plus ``baselines.json`` and ``summary.json``. See the README.md it writes
for the exact file names. This package needs only numpy, Pillow and pycocotools (never torch).
"""
from unimm.benchmark.shapes.generate import generate_shapes
from unimm.benchmark.shapes.sizes import SIZES, BenchmarkSize

__all__ = ["SIZES", "BenchmarkSize", "generate_shapes"]
