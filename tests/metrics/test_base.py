"""Sums: a metric's running sums, added up over ranks (one process here, two gloo processes below)."""
from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as tdist

from tests.helpers import free_port, spawn_ranks
from unimm.metrics.base import Sums, ratio

WORLD = 2


class MacroF1:
    """A custom metric as the plugin tutorial writes it, on ``Sums``."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.sums = Sums(tp=classes, fp=classes, fn=classes)

    def reset(self) -> None:
        self.sums.reset()

    def update(self, batch: dict, output: dict) -> None:
        pred, label = output["logits"].argmax(-1), batch["label"]
        right, wrong = pred == label, pred != label
        self.sums.add("tp", torch.bincount(label[right], minlength=self.classes))
        self.sums.add("fp", torch.bincount(pred[wrong], minlength=self.classes))
        self.sums.add("fn", torch.bincount(label[wrong], minlength=self.classes))

    def compute(self) -> dict:
        t = self.sums.totals()
        f1 = 2 * t["tp"] / (2 * t["tp"] + t["fp"] + t["fn"]).clamp(min=1)
        return {"macro_f1": float(f1.mean())}


LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
PREDICTED = torch.tensor([0, 1, 1, 1, 2, 0, 2, 0])


def batch_of(rows: slice) -> tuple[dict, dict]:
    return {"label": LABELS[rows]}, {"logits": torch.nn.functional.one_hot(PREDICTED[rows], 3).float()}


def test_sums_in_one_process():
    sums = Sums("correct", "total", per_class=3, confusion=(2, 2))
    sums.add("correct", 3)
    sums.add("total", torch.tensor(4))
    sums.add("per_class", torch.tensor([1, 0, 2]))
    sums.add("per_class", [1, 1, 1])
    totals = sums.totals()
    assert float(totals["correct"]) == 3 and float(totals["total"]) == 4
    assert totals["per_class"].tolist() == [2, 1, 3] and totals["confusion"].shape == (2, 2)
    assert ratio(totals["correct"], totals["total"]) == 0.75 and ratio(1, 0) == 0.0
    with pytest.raises(ValueError, match=r"sum 'per_class' has shape \(3,\), got a value of shape \(2,\)"):
        sums.add("per_class", [1, 2])
    with pytest.raises(KeyError, match="no sum 'nope'"):
        sums.add("nope", 1)
    sums.reset()
    assert float(sums.totals()["correct"]) == 0


def worker(rank: int, port: int, expected: float) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        sums = Sums("seen", per_class=3)
        if rank == 0:  # rank 1 saw nothing: it still takes part, with zeros
            sums.add("seen", 5)
            sums.add("per_class", [1, 2, 3])
        totals = sums.totals()
        assert float(totals["seen"]) == 5 and totals["per_class"].tolist() == [1, 2, 3]

        metric = MacroF1(3)  # each rank half of the samples, as eval_batches deals them out
        metric.reset()
        metric.update(*batch_of(slice(rank, None, WORLD)))
        assert metric.compute()["macro_f1"] == pytest.approx(expected)  # the whole split's, on every rank

        local = MacroF1(3)  # what a metric that does not reduce would report: its own half
        local.update(*batch_of(slice(rank, None, WORLD)))
        t = local.sums.local()
        own = float((2 * t["tp"] / (2 * t["tp"] + t["fp"] + t["fn"]).clamp(min=1)).mean())
        assert own != pytest.approx(expected)
    finally:
        tdist.destroy_process_group()


@pytest.mark.distributed
def test_sums_add_up_over_two_gloo_processes():
    whole = MacroF1(3)
    whole.update(*batch_of(slice(None)))
    expected = whole.compute()["macro_f1"]
    spawn_ranks(worker, (free_port(), expected), WORLD)
