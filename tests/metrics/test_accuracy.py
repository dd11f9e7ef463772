"""Accuracy and its per-class recalls."""
from __future__ import annotations

import pytest
import torch

from unimm.metrics.accuracy import accuracy


class ThreeLabels:
    def info(self) -> dict:
        return {"labels": ["contradiction", "neutral", "entailment"]}


def one_hot(predictions: list[int], classes: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predictions), classes).float()


def test_accuracy_ignores_negative_labels():
    metric = accuracy()
    metric.update({"label": torch.tensor([0, 1, -1, 2])}, {"logits": one_hot([0, 2, 1, 2])})
    assert metric.compute() == {"accuracy": pytest.approx(2 / 3)}


def test_per_class_recall_shows_a_text_only_reader_of_an_entailment_task():
    # right on every neutral and entailment pair, never on a contradiction: 2/3 accuracy
    metric = accuracy(per_class=True, dataset=ThreeLabels())
    labels = [0, 0, 1, 1, 2, 2]
    metric.update({"label": torch.tensor(labels[:3])}, {"logits": one_hot([2, 1, 1])})
    metric.update({"label": torch.tensor(labels[3:])}, {"logits": one_hot([1, 2, 2])})
    assert metric.compute() == {"accuracy": pytest.approx(4 / 6), "recall/contradiction": 0.0,
                                "recall/neutral": 1.0, "recall/entailment": 1.0}
    metric.reset()
    metric.update({"label": torch.tensor([1])}, {"logits": one_hot([0])})
    assert metric.compute() == {"accuracy": 0.0, "recall/neutral": 0.0}  # unseen classes are left out


def test_per_class_recall_names_classes_by_index_without_labels():
    metric = accuracy(per_class=True)
    metric.update({"label": torch.tensor([0, 1, 1, -1])}, {"logits": one_hot([0, 0, 1, 0], classes=2)})
    assert metric.compute() == {"accuracy": pytest.approx(2 / 3), "recall/0": 1.0, "recall/1": 0.5}
