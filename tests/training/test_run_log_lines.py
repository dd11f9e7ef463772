"""What a run's log says at each log step, and the curves of a resumed run."""
from __future__ import annotations

import json
import logging

from unimm.training import run_log
from unimm.training.run_log import RunLog, train_line


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def captured() -> Lines:
    handler = Lines()
    log = logging.getLogger("unimm")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def test_each_log_step_writes_one_line_with_the_losses_and_lr(tmp_path):
    handler = captured()
    try:
        log = RunLog(tmp_path, total_updates=20, tensorboard=False)
        for update in range(1, 11):
            log.progress(update, {"blobs/cross_entropy": 0.5})
        log.scalars(10, {"blobs/cross_entropy": 0.5, "mask/sparsity": 0.25, "lr": 3e-4}, phase="train")
        log.scalars(10, {"blobs/accuracy": 0.9}, phase="val")  # evaluations are logged by the trainer's table
        log.close()
    finally:
        logging.getLogger("unimm").removeHandler(handler)
    assert handler.lines == ["update 10/20  blobs/cross_entropy 0.5  lr 0.0003"]


def test_a_line_stays_short_with_eight_datasets():
    losses = {f"d{i}/{loss}": float(i) for i in range(8) for loss in ("ce", "aux")}
    line = train_line(40, 100, {**losses, "lr": 1e-4}, dict.fromkeys(losses))
    assert line == "update 40/100  total 56  d0 0  d1 2  d2 4  (+5 more)  lr 0.0001"


def test_one_dataset_with_many_losses_shows_the_first_ones():
    losses = {f"coco/{k}": 1.0 for k in ("ce", "bbox", "giou", "aux_ce", "aux_bbox")}
    line = train_line(5, 10, losses, dict.fromkeys(losses))
    assert line == "update 5/10  total 5  coco/ce 1  coco/bbox 1  coco/giou 1  (+2 more)"


def test_a_resumed_run_draws_its_curves_from_the_whole_run(tmp_path, monkeypatch):
    first = RunLog(tmp_path, total_updates=4, tensorboard=False)
    for update in (1, 2, 3):  # killed after update 3, with its last checkpoint at 2
        first.scalars(update, {"a/loss": 1.0 / update}, phase="train")
    first._jsonl.close()
    drawn = []
    monkeypatch.setattr(run_log, "plot_curves", lambda history, path: drawn.append(list(history)))
    resumed = RunLog(tmp_path, total_updates=4, tensorboard=False, start_update=2)
    for update in (3, 4):
        resumed.scalars(update, {"a/loss": 0.1}, phase="train")
    resumed.close()
    assert [row["update"] for row in drawn[0]] == [1, 2, 3, 4]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["update"] for row in rows] == [1, 2, 3, 4]  # update 3 once
