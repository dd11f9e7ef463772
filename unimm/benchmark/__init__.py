"""Benchmarks a run generates before it starts, and the table of a run's results beside their baselines.

A benchmark is a registered part (``BENCHMARKS``) named by ``env.benchmark``: its builder takes
the node's settings and returns an object whose ``prepare(data_dir)`` writes the data in the
official dataset layouts under ``data_dir`` (or keeps an identical copy that is already there).
The embedded one is ``shapes`` (``unimm.benchmark.shapes``); ``baseline_table`` (a callback)
prints a run's final metrics beside a benchmark's ``baselines.json``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from unimm.benchmark import baseline_table  # noqa: F401  (callbacks: baseline_table)
from unimm.config.errors import ConfigError
from unimm.registry import BENCHMARKS

logger = logging.getLogger("unimm")


@dataclass(frozen=True)
class ShapesBenchmark:
    """The embedded synthetic benchmark at one size and seed (see ``unimm.benchmark.shapes``)."""

    size: str = "default"
    seed: int = 0

    def prepare(self, data_dir: str) -> None:
        """Write it under ``<data_dir>/shapes`` unless the same one is already there."""
        from unimm.benchmark.shapes import generate_shapes

        start = time.perf_counter()
        try:
            summary = generate_shapes(data_dir, size=self.size, seed=self.seed)
        except FileExistsError as err:
            raise ConfigError(f"env.benchmark: {err}; or set env.data_dir to another folder") from None
        if summary["reused"]:
            logger.info("benchmark: using %s (size %s, seed %d)", summary["path"], self.size, self.seed)
        else:
            logger.info("benchmark: generated %s (size %s, seed %d) in %.1fs", summary["path"], self.size,
                        self.seed, time.perf_counter() - start)


@BENCHMARKS.register()
def shapes(size: Literal["tiny", "default", "large"] = "default", seed: int = 0) -> ShapesBenchmark:
    """The embedded "shapes" benchmark, written under ``<data_dir>/shapes`` in the official layouts.

    Args:
        size: ``tiny`` (tests, about a second), ``default`` (the main job's, within a minute on
            2 cores) or ``large``.
        seed: the same seed and size always give byte-identical files.
    """
    return ShapesBenchmark(size, seed)
