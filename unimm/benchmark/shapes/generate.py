"""Generate the whole shapes benchmark under ``<root>/shapes`` atomically.

Everything is written into a temporary folder beside the target and renamed into place at the end,
so an interrupted run never leaves a half-written benchmark; a failed run removes its temporary
folder. The same seed and size give byte-identical files.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from unimm.benchmark.shapes import pictures
from unimm.benchmark.shapes.baselines import all_baselines, detection_baselines
from unimm.benchmark.shapes.sizes import SIZES, BenchmarkSize, resolve_size
from unimm.benchmark.shapes.writers.coco import write_coco
from unimm.benchmark.shapes.writers.files import BenchmarkFolder, dumps
from unimm.benchmark.shapes.writers.glue import write_glue
from unimm.benchmark.shapes.writers.imagefolder import write_imagefolder
from unimm.benchmark.shapes.writers.karpathy import write_karpathy
from unimm.benchmark.shapes.writers.nlvr2 import write_nlvr2
from unimm.benchmark.shapes.writers.readme import readme_text
from unimm.benchmark.shapes.writers.snli_ve import write_snli_ve
from unimm.benchmark.shapes.writers.text_files import write_corpus, write_vocab
from unimm.benchmark.shapes.writers.visual_genome import write_visual_genome
from unimm.benchmark.shapes.writers.vqa2 import write_vqa2

FORMAT_VERSION = 3  # 2: MNLI premises of two families; mismatched genres in known words. 3: template priors
FOLDER_NAME = "shapes"


def _size_name(size: str | BenchmarkSize, spec: BenchmarkSize) -> str:
    if isinstance(size, str) and SIZES[size] == spec:
        return size
    return next((name for name, preset in SIZES.items() if preset == spec), "custom")


def _write_all(folder: BenchmarkFolder, seed: int, spec: BenchmarkSize) -> tuple[dict, dict]:
    """Run every writer; returns ``(counts, baselines)``."""
    coco = pictures.coco_pictures(seed, spec)
    flickr = pictures.flickr_pictures(seed, spec)
    counts, records = {}, {}
    counts["coco"] = write_coco(folder, seed, coco)
    counts["vqa2"], records["vqa2"] = write_vqa2(folder, seed, coco, spec.questions_per_image)
    vg_only = pictures.vg_only_pictures(seed, spec)
    counts["visual_genome"] = write_visual_genome(folder, seed, coco, vg_only, spec.vg_questions_per_image)
    counts["snli_ve"], records["snli_ve"] = write_snli_ve(folder, seed, flickr)
    counts["karpathy"] = write_karpathy(folder, seed, coco, flickr)
    counts["nlvr2"], records["nlvr2"] = write_nlvr2(folder, seed, spec)
    counts["imagefolder"], records["imagefolder"] = write_imagefolder(folder, seed, spec)
    counts["glue"], records["glue"] = write_glue(folder, seed, spec)
    counts["corpus"] = write_corpus(folder, seed, spec)
    counts["vocab"] = write_vocab(folder)
    # the detection baselines read the annotation files just written, as the detection datasets do
    return counts, all_baselines(records, counts["karpathy"], detection_baselines(folder.root))


def _existing_summary(target: Path) -> dict | None:
    try:
        return json.loads((target / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def generate_shapes(
    root: str | os.PathLike,
    size: str | BenchmarkSize = "default",
    seed: int = 0,
    *,
    image_size: int | None = None,
    overwrite: bool = False,
    workers: int | None = None,
) -> dict:
    """Generate the shapes benchmark in the official dataset layouts under ``<root>/shapes``.

    Args:
        root: the data root (``env.data_dir``); the benchmark goes to ``<root>/shapes``.
        size: "tiny" (tests, about a second), "default" (within a minute on 2 cores), "large", or a
            custom ``BenchmarkSize``.
        seed: the same seed and size always give byte-identical files.
        image_size: short side of the pictures in pixels; the size preset's (64) when ``None``.
        overwrite: regenerate even if ``<root>/shapes`` exists (it is replaced only once the new
            one is complete). Without it, a benchmark generated with the same settings is kept and
            its summary returned, and anything else there is an error.
        workers: processes drawing pictures (None: up to 2, as many as there are CPUs). The files
            do not depend on it.

    Returns:
        The summary written to ``summary.json`` (settings, counts per dataset, file count) plus
        ``"path"`` (the benchmark folder) and ``"reused"`` (true if an identical benchmark was
        already there and nothing was written).

    Raises:
        FileExistsError: ``<root>/shapes`` holds something else and ``overwrite`` is false.
        ValueError: an unknown size name or a too small ``image_size``.
    """
    spec = resolve_size(size, image_size)
    root = Path(root)
    target = root / FOLDER_NAME
    settings = {"format_version": FORMAT_VERSION, "seed": int(seed), "size": _size_name(size, spec),
                "spec": asdict(spec)}
    settings = json.loads(dumps(settings))  # as summary.json will hold them (tuples become lists)
    if target.exists() and not overwrite:
        existing = _existing_summary(target)
        if existing is not None and all(existing.get(k) == v for k, v in settings.items()):
            return {**existing, "path": str(target), "reused": True}
        raise FileExistsError(
            f"{target} already holds a benchmark with other settings (or something else); "
            "pass overwrite=True (--overwrite on the command line) to replace it, or choose another root"
        )
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f".{FOLDER_NAME}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    workers = min(2, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    try:
        with BenchmarkFolder(temporary, workers) as folder:
            counts, baselines = _write_all(folder, int(seed), spec)
            folder.write_json("baselines.json", baselines)
            folder.write_text("README.md", readme_text(settings))
            summary = {**settings, "counts": counts, "files": folder.files + 1}
            folder.write_text("summary.json", dumps(summary) + "\n")
        _swap_into_place(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return {**summary, "path": str(target), "reused": False}


def _swap_into_place(temporary: Path, target: Path) -> None:
    """Rename ``temporary`` to ``target``, replacing an old ``target`` only once the new one is complete."""
    if not target.exists():
        os.replace(temporary, target)
        return
    retired = target.with_name(f".{FOLDER_NAME}.old-{os.getpid()}")
    _remove(retired)
    os.replace(target, retired)
    os.replace(temporary, target)
    _remove(retired)


def _remove(path: Path) -> None:
    """Delete a folder tree or a file, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
