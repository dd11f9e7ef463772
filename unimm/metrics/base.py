"""Running sums that a metric adds up over every rank: the usual way to be right under DDP.

Under DDP each rank evaluates its own share of a split (``eval_batches`` deals the samples out by
stride), and ``Metric.compute`` must return the value of the whole split, the same on every rank
(``unimm.interfaces.Metric``). A metric made of sums (counts, per-class counts, a confusion matrix,
summed scores) keeps them in a ``Sums`` and computes from ``totals()``, which adds them up over all
ranks in one collective. A metric that keeps per-sample values instead gathers them itself
(``unimm.training.distributed.all_gather_object``).

    @METRICS.register()
    class macro_f1:
        def __init__(self, dataset):
            self.classes = dataset.info()["num_classes"]
            self.sums = Sums(tp=self.classes, fp=self.classes, fn=self.classes)

        def reset(self):
            self.sums.reset()

        def update(self, batch, output):
            pred, label = output["logits"].argmax(-1), batch["label"]
            right, wrong = pred == label, pred != label
            self.sums.add("tp", torch.bincount(label[right], minlength=self.classes))
            self.sums.add("fp", torch.bincount(pred[wrong], minlength=self.classes))
            self.sums.add("fn", torch.bincount(label[wrong], minlength=self.classes))

        def compute(self):
            t = self.sums.totals()  # summed over every rank: the same on each
            f1 = 2 * t["tp"] / (2 * t["tp"] + t["fp"] + t["fn"]).clamp(min=1)
            return {"macro_f1": float(f1.mean())}

(the plugin tutorial, website/docs/plugin_tutorial.md, writes this metric step by step).
"""
from __future__ import annotations

from typing import Any

import torch

from unimm.training import distributed as dist


class Sums:
    """Named running sums of fixed shapes; ``totals()`` adds them up over every rank.

    Args:
        *scalars: names of sums that are single numbers (e.g. ``"correct", "total"``).
        **shaped: name -> the shape of its sum: an int ``C`` (one value per class) or a tuple
            (``(C, C)``: a confusion matrix). Every rank declares the same names and shapes, so a
            rank that saw no sample still takes part in the collective.

    Sums are float64 on the CPU, so counts stay exact and ``update`` costs no device sync beyond
    reading the values it adds.
    """

    def __init__(self, *scalars: str, **shaped: int | tuple[int, ...]) -> None:
        self.shapes: dict[str, tuple[int, ...]] = {name: () for name in scalars}
        for name, shape in shaped.items():
            self.shapes[name] = (shape,) if isinstance(shape, int) else tuple(shape)
        if not self.shapes:
            raise ValueError("Sums needs at least one name, e.g. Sums('correct', 'total')")
        self.reset()

    def reset(self) -> None:
        """Every sum back to zero (at the start of each evaluation pass)."""
        self.values = {name: torch.zeros(shape, dtype=torch.float64) for name, shape in self.shapes.items()}

    def shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name]

    def add(self, name: str, value: Any) -> None:
        """Add ``value`` (a number or a tensor of the sum's shape, on any device) to sum ``name``."""
        if name not in self.values:
            raise KeyError(f"Sums has no sum '{name}'; its sums: {', '.join(self.values)}")
        tensor = torch.as_tensor(value).detach().to("cpu", torch.float64)
        if tensor.shape != self.values[name].shape:
            raise ValueError(f"sum '{name}' has shape {tuple(self.values[name].shape)}, "
                             f"got a value of shape {tuple(tensor.shape)}")
        self.values[name] += tensor

    def local(self) -> dict[str, torch.Tensor]:
        """This rank's sums (copies)."""
        return {name: value.clone() for name, value in self.values.items()}

    def totals(self) -> dict[str, torch.Tensor]:
        """Every sum added up over all ranks (one all-reduce); the same on every rank.

        A collective: every rank must call it, as every rank calls ``Metric.compute``.
        """
        flat = torch.cat([value.reshape(-1) for value in self.values.values()])
        summed = dist.all_reduce_sum(flat)
        out, start = {}, 0
        for name, value in self.values.items():
            out[name] = summed[start:start + value.numel()].reshape(value.shape)
            start += value.numel()
        return out


def ratio(numerator: torch.Tensor | float, denominator: torch.Tensor | float) -> float:
    """``numerator / denominator`` as a float, 0 when the denominator is 0 (a split without samples)."""
    den = float(denominator)
    return float(numerator) / den if den != 0 else 0.0
