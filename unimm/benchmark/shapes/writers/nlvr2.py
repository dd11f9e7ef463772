"""NLVR2: a statement about two pictures, true or false.

Writes ``nlvr2/{train,dev,test1}.json`` (one JSON object per line, NLVR2's fields) and the
pictures ``nlvr2/images/<split>/<stem>-img0.png`` and ``-img1.png``, where ``stem`` is the
identifier without its last part (identifier ``dev-12-1-0`` -> ``dev-12-1-img0.png``), as in the
official release. Each statement is shown with two pairs (``-0-`` and ``-1-``): one makes it
true, the other false (see ``two_images.contrasting_pair``).
"""
from __future__ import annotations

from unimm.benchmark.shapes import two_images
from unimm.benchmark.shapes.sizes import BenchmarkSize
from unimm.benchmark.shapes.world import sample_scene
from unimm.benchmark.shapes.writers.files import BenchmarkFolder, rng_for

SPLITS = ("train", "dev", "test1")


def write_nlvr2(folder: BenchmarkFolder, seed: int, size: BenchmarkSize) -> tuple[dict, dict]:
    """Write pictures and statements for every split.

    Returns:
        ``(counts, records)``: examples per split, and per split ``(sentence, label)`` pairs.
    """
    counts, records = {}, {}
    for split, statements in zip(SPLITS, size.nlvr2):
        rows = []
        for s in range(statements):
            rng = rng_for(seed, f"nlvr2-{split}", s)
            pairs = [(sample_scene(rng, size.image_size), sample_scene(rng, size.image_size))]
            statement = two_images.sample_statement(rng, *pairs[0])
            contrast = two_images.contrasting_pair(rng, statement, *pairs[0])
            if contrast is None:  # rare: no small edit flips it, so draw a fresh pair (either label)
                contrast = (sample_scene(rng, size.image_size), sample_scene(rng, size.image_size))
            pairs.append(contrast)
            for p, (left, right) in enumerate(pairs):
                stem = f"{split}-{s}-{p}"
                for side, scene in (("img0", left), ("img1", right)):
                    folder.write_picture(f"nlvr2/images/{split}/{stem}-{side}.png", scene, "png")
                rows.append({
                    "identifier": f"{stem}-0",
                    "label": str(statement.holds(left, right)),
                    "left_url": f"shapes://nlvr2/{split}/{stem}-img0.png",
                    "query": f"shapes {s}",
                    "right_url": f"shapes://nlvr2/{split}/{stem}-img1.png",
                    "sentence": statement.text(),
                    "synset": "n00027807",
                    "writer": str(s % 7),
                })
        folder.write_jsonl(f"nlvr2/{split}.json", rows)
        counts[split] = len(rows)
        records[split] = [(row["sentence"], row["label"]) for row in rows]
    return counts, records
