"""Deterministic file writing under one benchmark folder.

JSON is written with sorted keys and compact separators, floats are rounded by the callers, TSV
rows are joined by tabs with no quoting (GLUE style), and nothing records a time. Pictures can be
drawn by worker processes: a picture's bytes depend only on its scene, so the files are the same
whichever process writes them. Written files are tallied so the generator can report them.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import zlib
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from unimm.benchmark.shapes.render import encode, render_scene
from unimm.benchmark.shapes.world import Scene

PICTURES_PER_JOB = 64


def rng_for(seed: int, stream: str, *index: int) -> np.random.Generator:
    """An independent random generator for one named stream and item.

    Streams are separated by name, so adding items to one task never changes another task's data.
    ``zlib.crc32`` (not ``hash``) keeps stream keys the same in every Python process.
    """
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), *index])


def dumps(obj) -> str:
    """JSON text that depends only on ``obj``: sorted keys, no spaces, ASCII only."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def draw_pictures(jobs: list[tuple[str, Scene, str]]) -> None:
    """Render and write ``(path, scene, image_format)`` jobs (runs in a worker process or inline)."""
    for path, scene, image_format in jobs:
        Path(path).write_bytes(encode(render_scene(scene), image_format))


class BenchmarkFolder:
    """Writes files below ``root``, creating parent folders on the way.

    Use it as a context manager: leaving the block waits for every picture and makes the hard
    links (see ``link``); an error cancels the pictures still queued.

    Args:
        root: the folder that will hold the benchmark (a temporary folder while generating).
        workers: processes that draw pictures; 1 draws them in this process. Workers are forked,
            so more than 1 needs a platform with ``fork`` (else pictures are drawn inline).
    """

    def __init__(self, root: Path, workers: int = 1) -> None:
        self.root = Path(root)
        self.files = 0
        self._jobs: list[tuple[str, Scene, str]] = []
        self._futures: list[Future] = []
        self._links: list[tuple[str, str]] = []
        self._pool = None
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))

    def __enter__(self) -> "BenchmarkFolder":
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        failed = error_type is not None
        try:
            if not failed:
                self._submit()
                for future in self._futures:
                    future.result()  # re-raises a worker's error
        except BaseException:
            failed = True
            raise
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=failed)
        if not failed:
            self._make_links()

    def _make_links(self) -> None:
        for relative, existing in self._links:
            target, source = self.path(relative), self.root / existing
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)

    def write_picture(self, relative: str, scene: Scene, image_format: str) -> None:
        """Queue drawing ``scene`` into ``relative`` as "png" or "jpg"; done by the end of the block."""
        self._jobs.append((str(self.path(relative)), scene, image_format))
        self.files += 1
        if len(self._jobs) >= PICTURES_PER_JOB:
            self._submit()

    def _submit(self) -> None:
        jobs, self._jobs = self._jobs, []
        if not jobs:
            return
        if self._pool is None:
            draw_pictures(jobs)
        else:
            self._futures.append(self._pool.submit(draw_pictures, jobs))

    def path(self, relative: str) -> Path:
        """The absolute path of ``relative``, with its parent folder created."""
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write ``data`` to ``relative``."""
        self.path(relative).write_bytes(data)
        self.files += 1

    def write_text(self, relative: str, text: str) -> None:
        """Write ``text`` as UTF-8 with the newlines given (no platform translation)."""
        self.write_bytes(relative, text.encode("utf-8"))

    def write_json(self, relative: str, obj) -> None:
        """Write ``obj`` as one line of deterministic JSON (see ``dumps``)."""
        self.write_text(relative, dumps(obj) + "\n")

    def write_jsonl(self, relative: str, rows: Iterable[dict]) -> None:
        """Write one JSON object per line."""
        self.write_text(relative, "".join(dumps(row) + "\n" for row in rows))

    def write_tsv(self, relative: str, header: Sequence[str] | None, rows: Iterable[Sequence]) -> None:
        """A GLUE-style TSV: tab separated, no quoting, one header line unless ``header`` is None."""
        lines = [] if header is None else ["\t".join(header)]
        for row in rows:
            cells = [str(cell) for cell in row]
            if any(("\t" in cell or "\n" in cell) for cell in cells):
                raise ValueError(f"a TSV cell of {relative} holds a tab or newline: {cells}")
            lines.append("\t".join(cells))
        self.write_text(relative, "\n".join(lines) + "\n")

    def link(self, relative: str, existing: str) -> None:
        """Make ``relative`` the same file as ``existing`` (a hard link, or a copy where links fail).

        Official layouts name one picture differently per dataset (COCO 2017, COCO 2014, Visual
        Genome); a hard link stores it once. Links are made at the end of the block, when every
        queued picture exists.
        """
        self._links.append((relative, existing))
        self.files += 1


def disk_usage(root: Path) -> tuple[int, int]:
    """``(bytes, files)`` under ``root``, counting hard-linked files once."""
    seen, total, files = set(), 0, 0
    for folder, _, names in os.walk(root):
        for name in names:
            stat = os.stat(os.path.join(folder, name))
            files += 1
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total, files
