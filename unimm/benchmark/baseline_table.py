"""The final metrics of a run beside a benchmark's baselines, as one table (a registered callback)."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from unimm.config.errors import ConfigError
from unimm.config.refs import MetricKey
from unimm.registry import CALLBACKS, current_path
from unimm.utils.fileio import atomic_write_text

logger = logging.getLogger("unimm")


@CALLBACKS.register()
class baseline_table:  # noqa: N801 (registered name == builder name)
    """At the end of training, one table of the final metrics beside each task's baselines.

    Args:
        baselines: a JSON file mapping a task to its baselines, e.g. the shapes
            benchmark's ``baselines.json``: ``{"vqa2": {"chance": 0.05, "majority":
            {"accuracy": 0.2}, "question_only_prior": 0.43, ...}}``.
        rows: metric key (``<dataset>/<metric>``) -> task name in ``baselines``.
        output: where to write the table as ``<output>.md`` and ``<output>.json``
            (None: print only).
    """

    def __init__(self, baselines: str, rows: dict[MetricKey, str], output: str | None = None) -> None:
        self.path = current_path()  # where this callback sits in the config, for errors at the end of training
        self.baselines_path = Path(baselines)
        self.rows = dict(rows)
        self.output = output
        self.results: dict[str, float] = {}

    def on_eval(self, update: int, results: dict[str, float]) -> None:
        self.results = dict(results)

    def on_train_end(self, update: int) -> None:
        from unimm.training import distributed as dist  # torch: the benchmark package imports without it

        if not dist.is_main_process() or not self.results:
            return
        table = self.table()
        lines = [f"| metric | ours | best baseline | baselines |", "|---|---|---|---|"]
        for row in table:
            ours = "missing" if row["ours"] is None else f"{row['ours']:.4f}"
            shown = ", ".join(f"{k} {v:.4f}" for k, v in row["baselines"].items())
            lines.append(f"| {row['metric']} | {ours} | {row['best_baseline']:.4f} | {shown} |")
        text = "\n".join(lines) + "\n"
        logger.info("results at update %d beside the baselines:\n%s", update, text)
        if self.output:
            atomic_write_text(f"{self.output}.md", text)
            atomic_write_text(f"{self.output}.json", json.dumps(table, indent=1, sort_keys=True) + "\n")

    def table(self) -> list[dict[str, Any]]:
        try:
            baselines = json.loads(self.baselines_path.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"{self.path}: baseline_table cannot read {self.baselines_path}: {err}; generate the benchmark "
                              "first (env.benchmark: {type: shapes})") from None
        table = []
        for metric, task in self.rows.items():
            if task not in baselines:
                raise ConfigError(f"{self.path}.rows.{metric}: task '{task}' is not in "
                                  f"{self.baselines_path} (it has: {', '.join(sorted(baselines))})")
            values = numeric_baselines(baselines[task])
            table.append({"metric": metric, "task": task, "ours": self.results.get(metric),
                          "baselines": values, "best_baseline": max(values.values(), default=0.0)})
        return table


def numeric_baselines(entry: dict[str, Any]) -> dict[str, float]:
    """Every number in a task's baselines (``{"majority": {"accuracy": x}}`` counts as ``majority``)."""
    values = {}
    for key, value in entry.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values[key] = float(value)
        elif isinstance(value, dict) and isinstance(value.get("accuracy"), (int, float)):
            values[key] = float(value["accuracy"])
    return values
