"""How well a ``cell_classifier`` labels the feature cells of a detection dataset's pictures."""
from __future__ import annotations

from typing import Any, Mapping

import torch

from unimm.registry import METRICS
from unimm.training import distributed as dist


@METRICS.register(outputs=lambda **_: ["cell_accuracy", "background_accuracy", "attribute_accuracy"])
class cell_accuracy:  # noqa: N801 (registered name == builder name)
    """Per-cell accuracies of a backbone stage, pooled over the split and the ranks.

    Reports ``cell_accuracy`` (object cells whose arg-max class is their object's),
    ``background_accuracy`` (background cells called background: a model that paints objects
    everywhere scores well on the first and badly here) and, with an attribute head,
    ``attribute_accuracy`` (object cells whose attributes thresholded at probability 0.5 are
    exactly the true ones). Every cell weighs the same, whatever its picture or batch; padding
    cells are skipped.

    Args:
        logits_key, labels_key: output entries with the class logits ``[B, C + 1, h, w]`` (the
            last class is background) and the cell labels ``[B, h, w]`` (-100 on padding).
        attribute_logits_key, attributes_key: output entries with the attribute logits
            ``[B, A, h, w]`` and the true multi-hot attributes ``[B, h, w, A]``; skipped when the
            output has none.
    """

    def __init__(self, logits_key: str = "cell_logits", labels_key: str = "cell_labels",
                 attribute_logits_key: str = "cell_attribute_logits", attributes_key: str = "cell_attributes") -> None:
        self.logits_key, self.labels_key = logits_key, labels_key
        self.attribute_logits_key, self.attributes_key = attribute_logits_key, attributes_key
        self.reset()

    def reset(self) -> None:
        # right and seen: object cells, background cells, object cells' attribute sets
        self.counts = torch.zeros(6, dtype=torch.float64)

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None:
        logits, labels = output[self.logits_key], output[self.labels_key]
        background = logits.shape[1] - 1
        predicted = logits.argmax(1)
        objects, empty = (labels >= 0) & (labels < background), labels == background
        counts = [((predicted == labels) & objects).sum(), objects.sum(),
                  ((predicted == background) & empty).sum(), empty.sum()]
        if self.attribute_logits_key in output and self.attributes_key in output:
            guessed = output[self.attribute_logits_key].permute(0, 2, 3, 1)[objects] > 0  # logit 0 = probability 0.5
            wanted = output[self.attributes_key][objects] > 0.5
            counts += [(guessed == wanted).all(-1).sum(), objects.sum()]
        else:
            counts += [torch.zeros(()), torch.zeros(())]
        self.counts += torch.stack([c.detach().double().cpu() for c in counts])

    def compute(self) -> dict[str, float]:
        right_objects, objects, right_empty, empty, right_sets, sets = dist.all_reduce_sum(self.counts).tolist()
        result = {"cell_accuracy": right_objects / objects if objects else 0.0,
                  "background_accuracy": right_empty / empty if empty else 0.0}
        if sets:
            result["attribute_accuracy"] = right_sets / sets
        return result
