"""Evaluation and prediction passes over one split of every dataset."""
from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Mapping

import torch
from torch import nn

from unimm.cli.errors import add_where
from unimm.config.errors import ConfigError
from unimm.interfaces import DrawsPredictions, FormatsPredictions, WritesSubmission
from unimm.training import distributed as dist
from unimm.training.streams import eval_batches
from unimm.utils.fileio import atomic_write_text

logger = logging.getLogger("unimm")


@contextlib.contextmanager
def where(text: str) -> Iterator[None]:
    """An exception inside says where it happened (``unimm_run`` shows it; see ``unimm.cli.errors``)."""
    try:
        yield
    except Exception as err:
        add_where(err, text)
        raise


@torch.no_grad()
def evaluate(model: nn.Module, datasets: Mapping[str, Any], metrics: Mapping[str, list[Any]], *,
             batch_size: int, to_device: Callable[[dict], dict], autocast: Callable[[], ContextManager],
             max_batches: int | None = None, num_workers: int = 0) -> dict[str, float]:
    """Mean losses and metric values, keyed ``<dataset>/<name>``, averaged over ranks.

    Metrics receive every batch and output; ``compute`` reduces over ranks itself and returns the
    same values on every rank (``unimm.interfaces.Metric``; ``unimm.metrics.base.Sums`` does it).
    An exception in a metric names its config path (``evaluation.metrics.<dataset>[i]``).
    """
    was_training = model.training
    model.eval()
    results: dict[str, float] = {}
    for name, dataset in datasets.items():
        sums: dict[str, float] = {}
        count = 0
        for i, metric in enumerate(metrics.get(name, [])):
            with where(f"evaluation.metrics.{name}[{i}], its reset"):
                metric.reset()
        loader = eval_batches(dataset, batch_size=batch_size, rank=dist.get_rank(),
                              world_size=dist.get_world_size(), max_batches=max_batches,
                              num_workers=num_workers)
        for batch in loader:
            batch = to_device(batch)
            with autocast():
                output = model(batch)
            for key, value in output.get("losses", {}).items():
                sums[key] = sums.get(key, 0.0) + float(value)
            count += 1
            for i, metric in enumerate(metrics.get(name, [])):
                with where(f"evaluation.metrics.{name}[{i}], its update"):
                    metric.update(batch, output)
        losses = dist.reduce_dict({k: v / max(count, 1) for k, v in sums.items()})
        results.update({k: float(v) for k, v in losses.items()})
        for i, metric in enumerate(metrics.get(name, [])):
            with where(f"evaluation.metrics.{name}[{i}], its compute"):
                results.update({f"{name}/{k}": float(v) for k, v in metric.compute().items()})
    model.train(was_training)
    return results


@torch.no_grad()
def predict(model: nn.Module, datasets: Mapping[str, Any], *, folder: Path, split: str,
            batch_size: int, to_device: Callable[[dict], dict], autocast: Callable[[], ContextManager],
            max_batches: int | None = None) -> list[Path]:
    """Write ``<folder>/predictions/<dataset>_<split>.json`` for datasets that format predictions.

    A dataset opts in with ``format_predictions(batch, output) -> list[dict]`` (the
    ``FormatsPredictions`` Protocol); its rows of all ranks are gathered and the main process
    writes them. A dataset that also has ``draw_predictions(rows, path) -> Path | None`` gets a
    picture of them beside the JSON, ``<dataset>_<split>.png`` (detection datasets: boxes drawn
    on the first images); one with ``write_submission(rows, folder, split)`` (the
    ``WritesSubmission`` Protocol) also writes the file its benchmark server reads (GLUE's TSVs,
    VQA's results file, NLVR2's CSV) under ``<folder>/predictions/``. Datasets without
    ``format_predictions`` are skipped with a warning naming them.

    Returns:
        The files written (on the main process; an empty list on the others).

    Raises:
        ConfigError: no dataset of the run formats predictions (nothing would be written).
    """
    skipped = [name for name, dataset in datasets.items() if not isinstance(dataset, FormatsPredictions)]
    if not datasets:
        raise ConfigError("run_type=predict: no dataset is configured; add datasets.<name>.type=<dataset builder>",
                          rooted=True)
    if len(skipped) == len(datasets):
        listed = ", ".join(f"datasets.{n} ({type(datasets[n]).__name__})" for n in skipped)
        raise ConfigError(f"run_type=predict: no dataset of this run writes predictions: {listed} "
                          f"{'has' if len(skipped) == 1 else 'have'} no "
                          "format_predictions(batch, output) -> list[dict] (the FormatsPredictions contract in "
                          "unimm/interfaces.py); add that method to the dataset, or use run_type=val for metrics",
                          rooted=True)
    if skipped and dist.is_main_process():
        logger.warning("run_type=predict: no predictions for %s: %s no format_predictions (the FormatsPredictions "
                       "contract in unimm/interfaces.py)", ", ".join(f"datasets.{n}" for n in skipped),
                       "it has" if len(skipped) == 1 else "they have")
    model.eval()
    written = []
    for name, dataset in datasets.items():
        if name in skipped:
            continue
        rows: list[dict] = []
        for batch in eval_batches(dataset, batch_size=batch_size, rank=dist.get_rank(),
                                  world_size=dist.get_world_size(), max_batches=max_batches):
            batch = to_device(batch)
            with autocast():
                output = model(batch)
            with where(f"datasets.{name}, its format_predictions"):
                rows.extend(dataset.format_predictions(batch, output))
        rows = [row for part in dist.all_gather_object(rows) for row in part]
        if dist.is_main_process():
            path = folder / "predictions" / f"{name}_{split}.json"
            atomic_write_text(path, json.dumps(rows, sort_keys=True))
            logger.info("predictions of datasets.%s (%s split): %d rows in %s", name, split, len(rows), path)
            written.append(path)
            if isinstance(dataset, WritesSubmission):
                with where(f"datasets.{name}, its write_submission"):
                    made = [Path(p) for p in dataset.write_submission(rows, path.parent, split)]
                for made_path in made:
                    logger.info("submission file of datasets.%s: %s", name, made_path)
                written.extend(made)
            if isinstance(dataset, DrawsPredictions):
                picture = dataset.draw_predictions(rows, path.with_suffix(".png"))
                if picture is not None:
                    written.append(Path(picture))
    return written
