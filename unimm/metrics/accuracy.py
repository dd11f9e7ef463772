"""Top-1 accuracy of a classifier's logits against integer labels."""
from __future__ import annotations

from typing import Any, Mapping

import torch

from unimm.registry import METRICS
from unimm.training import distributed as dist


@METRICS.register()
class accuracy:  # noqa: N801 (registered name == builder name)
    """Fraction of samples whose arg-max logit equals the label.

    Args:
        logits_key: output entry with logits ``[B, C]``.
        target_key: batch entry with labels ``[B]`` (ints; negative labels are ignored).
    """

    def __init__(self, logits_key: str = "logits", target_key: str = "label") -> None:
        self.logits_key, self.target_key = logits_key, target_key
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None:
        labels = batch[self.target_key]
        keep = labels >= 0
        pred = output[self.logits_key].argmax(dim=-1)
        self.correct += int((pred[keep] == labels[keep]).sum())
        self.total += int(keep.sum())

    def compute(self) -> dict[str, float]:
        counts = dist.all_reduce_sum(torch.tensor([self.correct, self.total], dtype=torch.float64))
        return {"accuracy": float(counts[0] / counts[1]) if counts[1] > 0 else 0.0}
