"""How many CPU threads torch uses: a deterministic choice made once, before any work.

torch defaults to one thread per core. On a machine shared with one other busy process that makes
every parallel region wait for the busy core: an update of the benchmark's UniT took 250-400 ms with
2 threads on 2 cores beside one CPU-bound process, against 83 ms with 1 thread (85 ms quiet with 1,
65-80 ms quiet with 2; ``tools/bench_step.py``). ``env.num_threads: auto`` leaves one core to the rest
of the machine and to the data loader workers. The thread count changes the order of floating-point
sums (gradients differ in their last bits), so it is chosen from the machine alone, never from
timings, and a run logs it: two runs compare bit for bit only with the same count.
"""
from __future__ import annotations

import logging
import os

import torch

logger = logging.getLogger("unimm")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), not every core of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_threads(setting: int | str, num_workers: int = 0, cores: int | None = None) -> int:
    """The thread count for ``env.num_threads`` (``auto``: cores - 1 - workers, at least 1)."""
    if setting != "auto":
        return int(setting)
    cores = available_cores() if cores is None else cores
    return max(1, cores - 1 - num_workers)


def set_threads(setting: int | str, num_workers: int = 0) -> int:
    """Apply ``env.num_threads``; return the count."""
    count = choose_threads(setting, num_workers)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    logger.info("torch CPU threads: %d (env.num_threads=%s, %d cores available)", count, setting, available_cores())
    return count
