"""Training time and memory of a run with and without DataLoader workers, side by side.

    python tools/bench_workers.py config=projects/unit/all8.yaml variant=shapes --updates 600 --rounds 2
    python tools/bench_workers.py config=... --workers 0 1 2 [key=value ...]

Runs the config once per worker count, alternating the counts over ``--rounds`` (A B A B, so a
change in the machine's load hits both), each in its own process and save folder under a temporary
directory, with ``training.max_updates=--updates``. Prints, per run, the training time the run
itself logs ("trained N updates in T s"), the wall time and the peak resident memory of the run and
its worker processes together (read from /proc every half second; pages shared between them are
counted in each), then the median per worker count. The batches are the same for every count
(``unimm.training.streams``); only the time and the memory differ. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRAINED = re.compile(r"trained (\d+) updates in ([0-9.]+)s")


def resident_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def run_once(overrides: list[str], workers: int, updates: int, save_dir: Path) -> tuple[float, float, int]:
    """(training seconds as logged, wall seconds, peak KiB of the run and its children)."""
    cmd = [sys.executable, "-m", "unimm.cli.run", *overrides, f"training.num_workers={workers}",
           f"training.max_updates={updates}", f"env.save_dir={save_dir}"]
    log = save_dir.with_suffix(".log")
    start, peak = time.perf_counter(), 0
    with log.open("w") as out, subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                                env={**os.environ, "PYTHONPATH": str(REPO)}) as proc:
        while proc.poll() is None:
            peak = max(peak, resident_kib(proc.pid) + sum(resident_kib(c) for c in children(proc.pid)))
            time.sleep(0.5)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"run with {workers} workers failed (exit {proc.returncode}); the end of its output:\n{tail}")
    found = TRAINED.findall(log.read_text())
    if not found:
        raise SystemExit(f"no 'trained N updates' line in {log}")
    return float(found[-1][1]), wall, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    args, overrides = parser.parse_known_args(argv)
    if not any(o.startswith("config=") for o in overrides):
        parser.error("give config=<file.yaml> (and any key=value overrides)")
    times: dict[int, list[float]] = {w: [] for w in args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(1, args.rounds + 1):
            for workers in args.workers:
                trained, wall, peak = run_once(overrides, workers, args.updates, Path(tmp) / f"w{workers}_r{round_}")
                times[workers].append(trained)
                print(f"round {round_}, {workers} workers: trained {args.updates} updates in {trained:.1f} s, "
                      f"wall {wall:.1f} s, peak resident memory {peak / 2**20:.2f} GiB", flush=True)
    base = statistics.median(times[args.workers[0]])
    for workers, values in times.items():
        median = statistics.median(values)
        print(f"{workers} workers: median {median:.1f} s ({base / median:.2f}x the {args.workers[0]}-worker speed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
