"""What a run records: a JSON-lines metrics file, TensorBoard scalars, a progress bar, one log
line per log step (``train.log`` and the console, terminal or not), and a PNG plot of losses
and metrics written at the end (from the whole run, a resumed one included)."""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass
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


@dataclass
class Panel:
    """One plot of ``curves.png``: lines of ``(label, updates, values)`` sharing the update axis."""

    title: str
    lines: list[tuple[str, list[int], list[float]]]
    colour: int = 0  # index into the colour cycle: a dataset's panels share one colour


@dataclass
class CurvesLayout:
    """What ``curves.png`` shows, decided from the history alone (no drawing)."""

    lr: Panel | None
    losses: list[Panel]  # one per training scalar; a loss also evaluated twice or more carries its val line
    metrics: list[Panel]  # one per dataset: its metrics evaluated twice or more, against updates
    table: list[tuple[str, float, int]]  # (key, value, update): metrics evaluated once, drawn as bars
    colours: dict[str, int]  # dataset -> colour index, the same in every panel and bar


def curves_layout(history: list[dict[str, Any]]) -> CurvesLayout:
    """Sort a run's rows into the panels of ``curves.png``.

    Training rows hold the losses (``<dataset>/<loss>``), scalars that hooks report and ``lr``;
    evaluation rows (any other phase) hold the metrics and the evaluated losses. A key found in
    training rows is a loss: it gets a panel, with its evaluation line where it was evaluated at
    least twice. Evaluation keys that no training row has are metrics: those evaluated at least twice
    are lines in their dataset's panel, those evaluated once are bars (a lone dot on an axis reads
    as nothing).
    """
    train: dict[str, list[tuple[int, float]]] = {}
    evaluated: dict[str, dict[str, list[tuple[int, float]]]] = {}  # phase -> key -> points
    for row in history:
        series = train if row.get("phase") == "train" else evaluated.setdefault(str(row.get("phase")), {})
        for key, value in row.items():
            if key in ("update", "phase", "time") or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                series.setdefault(key, []).append((int(row["update"]), float(value)))
    datasets = sorted({_dataset(key) for key in train} | {_dataset(k) for pts in evaluated.values() for k in pts})
    colour = {name: i for i, name in enumerate(datasets)}

    lr = Panel("learning rate", [("lr", *_unzip(train["lr"]))]) if "lr" in train else None
    losses = []
    for key in sorted(k for k in train if k != "lr"):
        lines = [("train", *_unzip(train[key]))]
        for phase, series in evaluated.items():
            if len(series.get(key, ())) >= 2:
                lines.append((phase, *_unzip(series[key])))
        losses.append(Panel(key, lines, colour[_dataset(key)]))

    by_dataset: dict[str, list[tuple[str, list[int], list[float]]]] = {}
    table = []
    for phase, series in evaluated.items():
        for key in sorted(k for k in series if k not in train):
            points = series[key]
            if len(points) >= 2:
                label = key.split("/", 1)[-1] + ("" if phase == "val" else f" ({phase})")
                by_dataset.setdefault(_dataset(key), []).append((label, *_unzip(points)))
            else:
                table.append((key if phase == "val" else f"{key} ({phase})", points[0][1], points[0][0]))
    metrics = [Panel(f"{name} metrics", lines, colour[name]) for name, lines in sorted(by_dataset.items())]
    return CurvesLayout(lr, losses, metrics, table, colour)


def _dataset(key: str) -> str:
    return key.split("/", 1)[0]


def _unzip(points: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    return [x for x, _ in points], [y for _, y in points]


COLUMNS = 5  # panels per row; a run of 8 UniT datasets (23 losses) fills five rows


def curves_figure(layout: CurvesLayout):  # -> matplotlib.figure.Figure
    """Draw ``layout``: the learning rate and the losses first, then the metrics' lines, then the
    bars of the metrics evaluated once, each bar labelled with its value."""
    from matplotlib.figure import Figure

    panels = ([layout.lr] if layout.lr else []) + layout.losses + layout.metrics
    cols = max(1, min(COLUMNS, len(panels)))
    grid_rows = math.ceil(len(panels) / cols)
    bar_height = 0.28 * len(layout.table) + 0.9 if layout.table else 0.0
    width = max(3.6 * cols, 9.0 if layout.table else 0.0)
    fig = Figure(figsize=(width, 2.7 * grid_rows + bar_height), layout="constrained")
    heights = [2.7] * grid_rows + ([bar_height] if layout.table else [])
    if not heights:
        return fig
    spec = fig.add_gridspec(len(heights), cols, height_ratios=heights)
    palette = [f"C{i}" for i in range(10)]
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(spec[i // cols, i % cols])
        many = len(panel.lines) > 1
        for j, (label, xs, ys) in enumerate(panel.lines):
            style = {"color": palette[(panel.colour + j * 3) % 10] if panel is not layout.lr else "0.3"}
            if len(xs) < 20:
                style.update(marker="o", markersize=3)
            ax.plot(xs, ys, label=label, linewidth=1.3, **style)
        ax.set_title(panel.title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("update", fontsize=7)
        ax.grid(alpha=0.3)
        if panel is layout.lr:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            ax.yaxis.get_offset_text().set_fontsize(7)
        if many:
            ax.legend(fontsize=6, frameon=False)
    if layout.table:
        colours = [palette[layout.colours.get(_dataset(key), 0) % 10] for key, _, _ in layout.table]
        _metric_bars(fig.add_subplot(spec[grid_rows, :]), layout.table, colours)
    return fig


def _metric_bars(ax, table: list[tuple[str, float, int]], colours: list[str]) -> None:
    keys = [key for key, _, _ in table]
    values = [value for _, value, _ in table]
    ys = range(len(table))
    ax.barh(ys, values, color=colours, height=0.7)
    ax.set_yticks(list(ys), keys, fontsize=7)
    ax.invert_yaxis()  # first key on top
    low, high = min(0.0, *values), max(1.0, *values)
    ax.set_xlim(low, high + 0.12 * (high - low))
    for y, value in zip(ys, values):
        ax.text(max(value, 0.0) + 0.01 * (high - low), y, f"{value:.4g}", va="center", fontsize=7)
    updates = sorted({update for _, _, update in table})
    at = f"update {updates[0]}" if len(updates) == 1 else "updates " + ", ".join(map(str, updates))
    ax.set_title(f"metrics evaluated once (at {at})", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Draw ``curves.png``: a panel for the learning rate and for each loss (its evaluated values
    beside the training ones), a panel per dataset for metrics evaluated more than once, and bars
    for metrics evaluated once. Nothing is written when the history holds no finite value."""
    layout = curves_layout(history)
    if not (layout.lr or layout.losses or layout.metrics or layout.table):
        return
    fig = curves_figure(layout)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    tmp.replace(path)
