"""GLUE's scores beyond accuracy: binary F1 (MRPC, QQP) and Pearson / Spearman correlation (STS-B).

MoMo Table 2/3: MRPC and QQP accuracy/F1, STS-B Pearson/Spearman (and the average of each pair).
The definitions are GLUE's official metrics: sklearn's ``f1_score`` (binary) and scipy's
``pearsonr`` / ``spearmanr``, which the tests compare against.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from unimm.metrics.base import Sums, ratio
from unimm.registry import METRICS
from unimm.training import distributed as dist


@METRICS.register(outputs=lambda **_: ["accuracy", "f1", "accuracy_f1_mean"])
class f1:  # noqa: N801 (registered name == builder name)
    """Accuracy and F1 of one positive class, and their mean (GLUE MRPC and QQP).

    ``f1 = 2 tp / (2 tp + fp + fn)`` for the class ``positive`` against all others (sklearn's
    ``f1_score(average="binary", pos_label=positive)``); 0.0 when undefined (0 / 0: no sample is
    labelled positive and none is predicted positive; sklearn's value too). MoMo Table 3 reports MRPC and QQP as
    accuracy/F1 and their average, ``accuracy_f1_mean``. Counts are ``Sums``: exact under DDP.

    Args:
        logits_key: output entry with logits ``[B, C]`` (the arg-max is the prediction) or
            ``[B]``, one logit of class 1 (class 1 when above 0, else class 0).
        target_key: batch entry with labels ``[B]`` (ints; negative labels are ignored).
        positive: the class whose F1 is reported.
    """

    def __init__(self, logits_key: str = "logits", target_key: str = "label", positive: int = 1) -> None:
        self.logits_key, self.target_key = logits_key, target_key
        self.positive = positive
        self.sums = Sums("tp", "fp", "fn", "correct", "total")

    def reset(self) -> None:
        self.sums.reset()

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None:
        logits = output[self.logits_key]
        if logits.dim() == 2:
            pred = logits.argmax(dim=-1)
        elif logits.dim() == 1:
            pred = (logits > 0).long()
        else:
            raise ValueError(f"f1: output '{self.logits_key}' must be [B, C] or [B], "
                             f"got shape {tuple(logits.shape)}")
        labels = torch.as_tensor(batch[self.target_key], device=pred.device)
        keep = labels >= 0
        pred, labels = pred[keep], labels[keep]
        pred_pos, label_pos = pred == self.positive, labels == self.positive
        counts = torch.stack([(pred_pos & label_pos).sum(), (pred_pos & ~label_pos).sum(),
                              (~pred_pos & label_pos).sum(), (pred == labels).sum(), keep.sum()])
        for name, value in zip(("tp", "fp", "fn", "correct", "total"), counts.tolist()):  # one device sync
            self.sums.add(name, value)

    def compute(self) -> dict[str, float]:
        t = self.sums.totals()
        accuracy = ratio(t["correct"], t["total"])
        score = ratio(2 * t["tp"], 2 * t["tp"] + t["fp"] + t["fn"])
        return {"accuracy": accuracy, "f1": score, "accuracy_f1_mean": (accuracy + score) / 2}


@METRICS.register(outputs=lambda **_: ["pearson", "spearman", "pearson_spearman_mean"])
class correlation:  # noqa: N801 (registered name == builder name)
    """Pearson and Spearman correlation of predicted scores with the labels, and their mean (GLUE STS-B).

    MoMo Table 2/3 reports STS-B as Pearson/Spearman. Pearson is scipy's ``pearsonr``; Spearman is
    ``spearmanr``: the Pearson correlation of the ranks, tied values sharing their mean rank. Both
    are computed in float64 over the whole split: ``compute`` gathers every rank's samples.
    A correlation with constant predictions or constant labels (zero variance, where scipy returns
    NaN) is reported as 0.0; any NaN or infinite prediction or label makes both NaN.

    Args:
        logits_key: output entry with the predicted scores ``[B]`` or ``[B, 1]``.
        target_key: batch entry with the float labels ``[B]``.
    """

    def __init__(self, logits_key: str = "logits", target_key: str = "label") -> None:
        self.logits_key, self.target_key = logits_key, target_key
        self.reset()

    def reset(self) -> None:
        self.predictions: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None:
        scores = output[self.logits_key]
        if scores.dim() == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]  # [B, 1] -> [B]: a regression head's single output
        if scores.dim() != 1:
            raise ValueError(f"correlation: output '{self.logits_key}' must be [B] or [B, 1], "
                             f"got shape {tuple(scores.shape)}")
        labels = torch.as_tensor(batch[self.target_key], dtype=torch.float64)  # a list stays exact
        if labels.shape != scores.shape:
            raise ValueError(f"correlation: batch '{self.target_key}' must be [B] = {tuple(scores.shape)} "
                             f"like the predictions, got shape {tuple(labels.shape)}")
        self.predictions.append(scores.detach().to("cpu", torch.float64))
        self.labels.append(labels.detach().to("cpu", torch.float64))

    def compute(self) -> dict[str, float]:
        predictions, labels = [], []
        for preds, labs in dist.all_gather_object((self.predictions, self.labels)):  # rank order
            predictions += preds
            labels += labs
        x = torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.float64)
        y = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.float64)
        if x.numel() < 2:
            raise ValueError(f"correlation: needs at least 2 samples to correlate, got {x.numel()}")
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            nan = float("nan")
            return {"pearson": nan, "spearman": nan, "pearson_spearman_mean": nan}
        r = pearson(x, y)
        rho = pearson(average_ranks(x), average_ranks(y))
        return {"pearson": r, "spearman": rho, "pearson_spearman_mean": (r + rho) / 2}


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation of two float64 vectors ``[N]``; 0.0 when either is constant."""
    if bool((x == x[0]).all()) or bool((y == y[0]).all()):  # exact test: a mean can be off by rounding
        return 0.0
    dx, dy = x - x.mean(), y - y.mean()
    r = (dx * dy).sum() / torch.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float(r.clamp(-1.0, 1.0))  # rounding can overshoot by an ulp


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N of ``values`` ``[N]``; tied values share the mean of their ranks (float64 ``[N]``)."""
    n = values.numel()
    order = torch.argsort(values, stable=True)
    ordered = values[order]
    starts = torch.ones(n, dtype=torch.bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    group = torch.cumsum(starts.long(), 0) - 1  # [N]: tie group of each sorted position
    positions = torch.arange(1, n + 1, dtype=torch.float64)
    mean_rank = torch.zeros(int(group[-1]) + 1, dtype=torch.float64).index_add_(0, group, positions)
    mean_rank /= torch.bincount(group).to(torch.float64)
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = mean_rank[group]
    return ranks
