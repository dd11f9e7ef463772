"""What the reproduction scripts of the projects share: runs reused by folder, chains of stages, tables over seeds.

Imported by ``tools/reproduce_<project>.py`` (which put ``tools/`` and the repository on ``sys.path``);
not a command of its own.
"""
from __future__ import annotations

import functools
import json
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unimm.utils.fileio import atomic_write_text

RECORD = "reproduce.json"  # what a script notes in a run folder: config, seconds, final metrics


@dataclass
class Runs:
    """Runs configs of one project folder with ``variant`` under ``<out>/seed<seed>/<name>``.

    A run whose folder holds its record is not run again: its metrics are read back.
    """

    project: Path
    variant: str
    out: Path
    data_dir: Path
    seed: int
    dry_run: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.out / f"seed{self.seed}"

    def run(self, name: str, config: str, overrides: list[str]) -> dict[str, float]:
        """Run ``config`` (relative to the project) into ``<root>/<name>``; its final metrics ({} in a dry run)."""
        from unimm import session

        folder = self.root / name
        record = folder / RECORD
        if record.is_file():
            return json.loads(record.read_text())["metrics"]
        cfg, text = session.prepare(self.project / config, [f"env.data_dir={self.data_dir}",
                                                            f"env.save_dir={folder}", *overrides],
                                    variant=self.variant)
        if self.dry_run:
            print(f"ok  {name}: {config} -> {folder}")
            return {}
        start = time.perf_counter()
        metrics = session.execute(cfg, text)
        took = time.perf_counter() - start
        self.timings[name] = took
        atomic_write_text(record, json.dumps({"config": config, "seconds": took, "metrics": metrics}, indent=1) + "\n")
        return metrics


def passed_on(overrides: list[str], depth: int) -> str:
    """``vars.stage_overrides``' value for a run ``depth`` stages above the first: what each passes down."""
    inner = overrides if depth == 1 else overrides + ["vars.stage_overrides=" + passed_on(overrides, depth - 1)]
    return "[" + ",".join(json.dumps(item) for item in inner) + "]"


@functools.lru_cache(maxsize=None)
def weight_keys(run: Path) -> tuple[str, ...]:
    """The keys of the run's last checkpoint, read once per run."""
    from unimm.training.checkpoint import read_weights

    _, weights = read_weights(run / "checkpoints" / "last")
    return tuple(weights)


def has_weights(run: Path, pattern: str) -> bool:
    """Whether the run's last checkpoint holds a weight whose key matches ``pattern``."""
    return any(re.search(pattern, key) for key in weight_keys(run))


def start_from(source: Path | None, keep: list[str] | None = None) -> list[str]:
    """The overrides of a downstream run: ``source``'s last checkpoint (only ``keep``'s regexes when
    given), or random init for None; never a chained ``init_run``."""
    overrides = ["checkpoint.init_run.config=null"]
    if source is None:
        return overrides + ["checkpoint.init_from=null", "~checkpoint.init_include", "checkpoint.init_resize=[]"]
    overrides.append(f"checkpoint.init_from={source}/checkpoints/last")
    if keep is not None:
        overrides.append(f"checkpoint.init_include={json.dumps(keep)}")
    return overrides


Rows = dict[str, dict[str, Any]]  # task -> column -> a metric in [0, 1] (None: not measured)


def summarise(per_seed: list[Rows]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """task -> column -> (mean, standard deviation over seeds, seeds), in percent."""
    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    for task in per_seed[0]:
        for column in per_seed[0][task]:
            values = [100 * r[task][column] for r in per_seed if r[task].get(column) is not None]
            if values:
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                out.setdefault(task, {})[column] = (statistics.fmean(values), spread, len(values))
    return out


def fmt(value: tuple[float, float, int] | None) -> str:
    """``mean ± spread`` (the spread only over several seeds), or ``-``."""
    if value is None:
        return "-"
    mean, spread, n = value
    return f"{mean:.1f}" + (f" ± {spread:.1f}" if n > 1 else "")


def accuracy_baselines(entry: dict[str, Any]) -> str:
    """A classification task's baselines from the benchmark's baselines.json entry, in percent."""
    parts = {"chance": entry["chance"], "majority": entry["majority"]["accuracy"]}
    parts.update({k: v for k, v in entry.items() if k in ("bag_of_words", "question_only_prior")})
    return ", ".join(f"{k} {100 * v:.1f}" for k, v in parts.items())


def command_line(doc: str, commands: dict[str, Any], everything: list[str], make_runner: Any, render: Any,
                 baselines: Any, default_out: str, argv: list[str] | None = None) -> int:
    """The shared command line of the reproduction scripts.

    Args:
        doc: the script's docstring (its first paragraph is the description).
        commands: command name -> ``f(runner) -> Rows``.
        everything: the commands ``all`` runs, in order.
        make_runner: ``(out, data_dir, seed, dry_run) -> Runs``.
        render: ``(command, summarise(per_seed), baselines(data_dir), seeds) -> markdown``.
        baselines: ``data_dir -> {task: text}``.
        default_out: the ``--out`` default.
    """
    import argparse
    import os

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=[*commands, "all"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--out", type=Path, default=Path(default_out))
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("UNIMM_DATA_DIR", "data")),
                        help="env.data_dir: the benchmark is generated under it when absent")
    parser.add_argument("--dry-run", action="store_true", help="validate the configs of the plan, run nothing")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    chosen = everything if args.command == "all" else [args.command]
    per_seed = []
    for seed in args.seeds:
        runner = make_runner(args.out.resolve(), args.data_dir.resolve(), seed, args.dry_run)
        rows: Rows = {}
        for command in chosen:
            for task, columns in commands[command](runner).items():
                rows.setdefault(task, {}).update(columns)
        per_seed.append(rows)
        for name, took in runner.timings.items():
            print(f"seed {seed}: {name} took {took:.0f} s")
    if args.dry_run:
        print("dry run: every config of the plan validates")
        return 0
    text = render(args.command, summarise(per_seed), baselines(args.data_dir.resolve()), args.seeds)
    text += f"\nwall time {time.perf_counter() - start:.0f} s\n"
    print(text)
    atomic_write_text(args.out / f"{args.command}.md", text)
    atomic_write_text(args.out / f"{args.command}.json", json.dumps(per_seed, indent=1) + "\n")
    return 0
