"""Top-1 accuracy of a classifier's logits against integer labels."""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from unimm.registry import METRICS
from unimm.training import distributed as dist


@METRICS.register(outputs=lambda per_class=False, result_name="accuracy", **_: [result_name] + (
    ["recall/*"] if per_class else []))
class accuracy:  # noqa: N801 (registered name == builder name)
    """Fraction of samples whose arg-max logit equals the label, and optionally each class's recall.

    Args:
        logits_key: output entry with logits ``[B, C]``.
        target_key: batch entry with labels ``[B]`` (ints; negative labels are ignored), or an output
            entry when the batch has none (labels a model makes itself: MoMo's MLM and ITM targets).
        per_class: also report ``recall/<label>``, the accuracy on the samples of each class
            (named by the dataset's ``info()["labels"]``, else by index). It tells a model that
            reads only the text of an entailment task (perfect on "neutral", never right on
            "contradiction") from one that uses the picture at the same accuracy.
        dataset: the evaluated dataset (run time), for the label names.
        result_name: the key it reports (``<dataset>/<result_name>``), to tell two accuracies of
            one dataset apart (METER pre-training: ``itm_accuracy`` and ``mlm_accuracy``, the latter
            over the masked tokens of ``[B, T, V]`` logits).
    """

    def __init__(self, logits_key: str = "logits", target_key: str = "label", per_class: bool = False,
                 dataset: Any = None, result_name: str = "accuracy") -> None:
        self.logits_key, self.target_key = logits_key, target_key
        self.result_name = result_name
        self.per_class = per_class
        info = dataset.info() if dataset is not None else {}
        self.labels = [str(label) for label in info.get("labels") or ()]
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0
        self.per_class_counts = torch.zeros(2, len(self.labels), dtype=torch.float64)  # [right; seen] per class

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None:
        labels = batch[self.target_key] if self.target_key in batch else output[self.target_key]
        keep = labels >= 0
        logits = output[self.logits_key]
        pred = logits.argmax(dim=-1)
        right = pred[keep] == labels[keep]
        self.correct += int(right.sum())
        self.total += int(keep.sum())
        if self.per_class:
            kept, classes = labels[keep].long().cpu(), logits.shape[-1]  # same width on every rank
            seen = torch.stack([torch.bincount(kept, weights=right.cpu().double(), minlength=classes),
                                torch.bincount(kept, minlength=classes).double()])
            grow = seen.shape[1] - self.per_class_counts.shape[1]
            self.per_class_counts = F.pad(self.per_class_counts, (0, max(grow, 0))) + seen

    def compute(self) -> dict[str, float]:
        counts = dist.all_reduce_sum(torch.tensor([self.correct, self.total], dtype=torch.float64))
        result = {self.result_name: float(counts[0] / counts[1]) if counts[1] > 0 else 0.0}
        if self.per_class:
            per = dist.all_reduce_sum(self.per_class_counts)
            for c in range(per.shape[1]):
                if per[1, c] > 0:
                    name = self.labels[c] if c < len(self.labels) else str(c)
                    result[f"recall/{name}"] = float(per[0, c] / per[1, c])
        return result
