"""What a run records: a JSON-lines metrics file, TensorBoard scalars, a progress bar, one log
line per log step (``train.log`` and the console, terminal or not), and a PNG plot of losses
and metrics written at the end (from the whole run, a resumed one included)."""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping

logger = logging.getLogger("unimm")


class RunLog:
    """Records scalars by update; only the main process writes.

    Args:
        folder: the run folder (``metrics.jsonl``, ``tensorboard/``, ``curves.png``).
        total_updates: for the progress bar's ETA and the log lines.
        enabled: False on non-main ranks.
        tensorboard: write TensorBoard event files.
        start_update: the update a resumed run continues from: the rows of ``metrics.jsonl`` up
            to it are kept (later ones, written by a run killed after its checkpoint, dropped)
            and ``curves.png`` is drawn from them and this run's rows.
    """

    def __init__(self, folder: Path, *, total_updates: int, enabled: bool = True,
                 tensorboard: bool = True, start_update: int = 0) -> None:
        self.folder = folder
        self.enabled = enabled
        self.total_updates = total_updates
        self.history: list[dict[str, Any]] = []
        self.loss_keys: dict[str, None] = {}  # every loss key seen by progress(), in order
        self._writer = None
        self._bar = None
        if not enabled:
            return
        folder.mkdir(parents=True, exist_ok=True)
        if start_update > 0:  # a resumed run: rows written after its checkpoint are written again
            self.history = kept_rows(folder / "metrics.jsonl", start_update)
        self._jsonl = open(folder / "metrics.jsonl", "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                # purge_step drops the events a killed run wrote after the checkpoint it resumes from
                self._writer = SummaryWriter(str(folder / "tensorboard"),
                                             purge_step=start_update + 1 if start_update > 0 else None)
            except ImportError:  # tensorboard is optional at run time
                logger.warning("tensorboard is not installed; scalars go to metrics.jsonl only")
        if total_updates > start_update:
            from tqdm import tqdm
            self._bar = tqdm(total=total_updates, initial=start_update, desc="train", unit="upd",
                             dynamic_ncols=True, mininterval=1.0, file=sys.stderr,
                             disable=None)  # None: off when stderr is not a terminal

    def scalars(self, update: int, values: Mapping[str, float], *, phase: str) -> None:
        """Record ``values`` (keys ``<dataset>/<name>``) at ``update``."""
        if not self.enabled:
            return
        row = {"update": update, "phase": phase, "time": round(time.time(), 3),
               **{k: float(v) for k, v in values.items()}}
        self.history.append(row)
        self._jsonl.write(json.dumps(row, sort_keys=True) + "\n")
        self._jsonl.flush()
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(f"{phase}/{key}", float(value), update)
        if phase == "train":
            self.log_line(train_line(update, self.total_updates, values, self.loss_keys))

    def log_line(self, text: str) -> None:
        """Log ``text`` at INFO, with the progress bar (on a terminal) cleared around it."""
        if self._bar is not None:
            self._bar.clear()
        logger.info(text)
        if self._bar is not None:
            self._bar.refresh()

    def progress(self, update: int, losses: Mapping[str, float]) -> None:
        self.loss_keys.update(dict.fromkeys(losses))
        if self._bar is not None:
            self._bar.n = update
            shown = {k.split("/", 1)[-1] if len(losses) > 3 else k: f"{v:.3f}" for k, v in losses.items()}
            self._bar.set_postfix(shown, refresh=False)
            self._bar.refresh()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        if self._writer is not None:
            self._writer.close()
        self._jsonl.close()
        if self.history:
            plot_curves(self.history, self.folder / "curves.png")


SHOWN = 4  # losses written out in a log line; beyond that, their total and the first few groups


def train_line(update: int, total: int, values: Mapping[str, float], loss_keys: Mapping[str, Any]) -> str:
    """One readable line of a training log step: the update, the losses, the learning rate.

    ``values`` are the step's training scalars (``<dataset>/<loss>`` losses averaged since the last
    line, ``lr``, scalars that hooks report); ``loss_keys`` tells losses from the rest (every key
    when empty). Up to ``SHOWN`` losses are written as they are; more are summarised as their total,
    then the first three datasets' sums (or, with one dataset, its first three losses) and a count of
    the rest, so a line stays short for 8 datasets; every value is in metrics.jsonl.
    """
    losses = {k: float(v) for k, v in values.items() if k != "lr" and (not loss_keys or k in loss_keys)}
    parts = [f"update {update}/{total}"]
    if len(losses) <= SHOWN:
        parts += [f"{k} {v:.4g}" for k, v in losses.items()]
    else:
        groups: dict[str, float] = {}
        for key, value in losses.items():
            dataset = key.split("/", 1)[0]
            groups[dataset] = groups.get(dataset, 0.0) + value
        if len(groups) == 1:
            groups = losses
        parts.append(f"total {sum(losses.values()):.4g}")
        parts += [f"{k} {v:.4g}" for k, v in list(groups.items())[:3]]
        if len(groups) > 3:
            parts.append(f"(+{len(groups) - 3} more)")
    if "lr" in values:
        parts.append(f"lr {float(values['lr']):.3g}")
    return "  ".join(parts)


def kept_rows(path: Path, last_update: int) -> list[dict[str, Any]]:
    """Rewrite ``metrics.jsonl`` keeping only the rows up to ``last_update`` (atomically); return them.

    A run killed after its checkpoint at ``last_update`` wrote rows that its resumed run writes again;
    without this, the file would hold those updates twice.
    """
    from unimm.utils.fileio import atomic_write_text

    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [row for row in rows if int(row.get("update", 0)) <= last_update]
    if len(kept) != len(rows):
        atomic_write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in kept))
        logger.info("metrics.jsonl: dropped %d rows written after update %d, the checkpoint this run resumes from",
                    len(rows) - len(kept), last_update)
    return kept


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """One panel per scalar: training losses and evaluation metrics against updates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    for row in history:
        for key, value in row.items():
            if key not in ("update", "phase", "time") and math.isfinite(value):
                series.setdefault(f"{row['phase']}: {key}", []).append((row["update"], value))
    if not series:
        return
    cols = min(4, len(series))
    rows = math.ceil(len(series) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, points) in zip(axes.flat, sorted(series.items())):
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o" if len(xs) < 20 else None, markersize=3)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("update", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(series):]:
        ax.axis("off")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
