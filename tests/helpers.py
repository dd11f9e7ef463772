"""Small helpers shared by tests (not fixtures)."""
from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch.multiprocessing as mp


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now (for gloo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_rank(rank: int, fn: Callable, args: tuple, done_dir: str) -> None:
    fn(rank, *args)
    Path(done_dir, str(rank)).touch()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every check passed: leave without running interpreter and C++ static teardown, where
    # torch's gloo and autograd threads can abort a finished process ("terminate called
    # without an active exception"), which would fail a run whose assertions all held.
    os._exit(0)


def spawn_ranks(fn: Callable, args: tuple, world: int, start_method: str = "spawn") -> None:
    """Run ``fn(rank, *args)`` in ``world`` processes; an assertion in any rank fails the test.

    A process that dies from a signal is reported with the ranks that had finished every check.
    """
    with tempfile.TemporaryDirectory() as done_dir:
        try:
            mp.start_processes(_run_rank, args=(fn, args, done_dir), nprocs=world, join=True,
                               start_method=start_method)
        except mp.ProcessExitedException as error:
            finished = sorted(int(p.name) for p in Path(done_dir).iterdir())
            raise AssertionError(f"{error} (ranks that had passed every check: {finished})") from error
