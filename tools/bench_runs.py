"""Training time and memory of runs side by side: worker counts, code revisions, a busy neighbour.

    python tools/bench_runs.py config=projects/unit/all8.yaml variant=shapes --updates 600 --rounds 2
    python tools/bench_runs.py config=... --workers 0 1 2 [key=value ...]
    python tools/bench_runs.py config=... --arms 28d53fe work           # the code then against now
    python tools/bench_runs.py config=... --arms work "work env.num_threads=2"
    python tools/bench_runs.py config=... --neighbours 0 1              # alone, then beside a busy process

Runs the config once per arm, an arm being a combination of a code revision with overrides of its
own (``--arms``, each "REVISION [key=value ...]"; ``work`` is the working tree, anything else a git
revision, checked out in a temporary worktree and run from there, with its own benchmark and save
folders so that it generates and pre-trains as its code says), a DataLoader worker count and a
number of CPU-bound neighbour processes (each a Python loop, started before the
run and stopped after it). The arms alternate within each of ``--rounds`` rounds (A B A B, so a change
in the machine's load hits all of them), each run in its own process and save folder with
``training.max_updates=--updates`` (``--updates 0`` keeps the config's own count: the whole job).
Prints, per run, the training time the run itself logs ("trained N updates in T s"), the wall time
and the peak resident memory of the run and its worker processes together (read from /proc every
half second; pages shared between them are counted in each), then the median per arm and its speed
against the first arm. Batches are the same for every worker count (``unimm.training.streams``).
``--logs DIR`` keeps every run's output there. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRAINED = re.compile(r"trained (\d+) updates in ([0-9.]+)s")
WORK = "work"


@dataclass(frozen=True)
class Arm:
    revision: str
    overrides: tuple[str, ...]
    workers: int
    neighbours: int

    def __str__(self) -> str:
        own = "".join(f" {o}" for o in self.overrides)
        busy = f", {self.neighbours} busy neighbour{'s' * (self.neighbours != 1)}" if self.neighbours else ""
        return f"{self.revision}{own}, {self.workers} workers{busy}"


def arms_of(specs: list[str], workers: list[int], neighbours: list[int]) -> list[Arm]:
    """Every combination of an ``--arms`` entry ("REVISION [key=value ...]"), a worker count and a
    neighbour count, in the order they alternate within a round."""
    parsed = []
    for spec in specs:
        words = spec.split()
        if not words or "=" in words[0]:
            raise SystemExit(f"--arms {spec!r}: an arm starts with a git revision or '{WORK}', then its overrides")
        parsed.append((words[0], tuple(words[1:])))
    return [Arm(revision, own, count, busy)
            for (revision, own), count, busy in itertools.product(parsed, workers, neighbours)]


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


def checkout(revision: str, folder: Path) -> Path:
    """The code to run: the working tree, or ``revision`` checked out (detached) under ``folder``."""
    if revision == WORK:
        return REPO
    tree = folder / f"code_{revision}"
    if not tree.exists():
        made = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), revision],
                              capture_output=True, text=True)
        if made.returncode != 0:
            raise SystemExit(f"--arms: cannot check out revision {revision!r} ({made.stderr.strip()}); give a commit, "
                             f"branch or tag of {REPO}, or '{WORK}' for the working tree")
    return tree


def run_once(overrides: list[str], arm: Arm, updates: int, code: Path, save_dir: Path,
             shared: Path) -> tuple[float, float, int]:
    """(training seconds as logged, wall seconds, peak KiB of the run and its children)."""
    cmd = [sys.executable, "-m", "unimm.cli.run", *overrides, *arm.overrides, f"training.num_workers={arm.workers}",
           f"env.save_dir={save_dir}"]
    if updates:
        cmd.append(f"training.max_updates={updates}")
    env = {**os.environ, "PYTHONPATH": str(code)}
    if code != REPO:  # a revision generates its own benchmark and trains its own stages
        env.update(UNIMM_DATA_DIR=str(shared / "data"), UNIMM_SAVE_DIR=str(shared / "save"))
    log = save_dir.with_suffix(".log")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(arm.neighbours)]
    try:
        start, peak = time.perf_counter(), 0
        with log.open("w") as out, subprocess.Popen(cmd, cwd=code, stdout=out, stderr=subprocess.STDOUT,
                                                    env=env) as proc:
            while proc.poll() is None:
                peak = max(peak, resident_kib(proc.pid) + sum(resident_kib(c) for c in children(proc.pid)))
                time.sleep(0.5)
        wall = time.perf_counter() - start
    finally:
        for neighbour in busy:
            neighbour.kill()
            neighbour.wait()
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"run ({arm}) failed (exit {proc.returncode}); the end of its output:\n{tail}")
    found = TRAINED.findall(log.read_text())
    if not found:
        raise SystemExit(f"no 'trained N updates' line in {log}")
    return float(found[-1][1]), wall, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=600, help="updates a run (0: the config's own)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0])
    parser.add_argument("--arms", nargs="+", default=[WORK],
                        help=f"each 'REVISION [key=value ...]': a git revision ('{WORK}': the working tree, uncommitted "
                             "changes included) and overrides for its runs alone")
    parser.add_argument("--neighbours", type=int, nargs="+", default=[0],
                        help="CPU-bound processes running beside each run")
    parser.add_argument("--logs", type=Path, default=None, help="a folder to keep each run's output in")
    args, overrides = parser.parse_known_args(argv)
    if not any(o.startswith("config=") for o in overrides):
        parser.error("give config=<file.yaml> (and any key=value overrides)")
    arms = arms_of(args.arms, args.workers, args.neighbours)
    times: dict[Arm, list[float]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            for round_ in range(1, args.rounds + 1):
                for k, arm in enumerate(arms):
                    code = checkout(arm.revision, folder)
                    trained, wall, peak = run_once(overrides, arm, args.updates, code, folder / f"run{k}_r{round_}",
                                                   folder / f"shared_{arm.revision}")
                    times[arm].append(trained)
                    if args.logs:
                        args.logs.mkdir(parents=True, exist_ok=True)
                        shutil.copy(folder / f"run{k}_r{round_}.log", args.logs / f"run{k}_r{round_}.log")
                    print(f"round {round_}, {arm} (run{k}_r{round_}): trained in {trained:.1f} s, wall {wall:.1f} s, "
                          f"peak resident memory {peak / 2**20:.2f} GiB", flush=True)
        finally:
            for revision in {arm.revision for arm in arms}:
                if (folder / f"code_{revision}").exists():
                    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                    str(folder / f"code_{revision}")], check=False)
    base = statistics.median(times[arms[0]])
    for arm, values in times.items():
        median = statistics.median(values)
        print(f"{arm}: median {median:.1f} s ({base / median:.2f}x the speed of {arms[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
