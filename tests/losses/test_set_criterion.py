import math

import pytest
import torch

from unimm.modules.matcher import HungarianMatcher
from unimm.losses.set_criterion import SetCriterion


def make_criterion(num_classes=1):
    return SetCriterion(num_classes, HungarianMatcher(), class_weight=1, l1_weight=5, giou_weight=2,
                        no_object_weight=0.1)


def test_values_on_hand_checkable_inputs():
    # one image, two queries, one class; the target is matched to query 0 (cheaper boxes)
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])[None]  # [L=1, B=1, Q=2, C+1=2]
    boxes = torch.tensor([[[0.6, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]]])[None]  # [1, 1, 2, 4]
    target = {"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}
    losses, matches = make_criterion()(logits, boxes, [target])
    assert matches[0][0][0].tolist() == [0]
    # class: CE(q0 -> class 0) = log(1 + e^-2), CE(q1 -> no object) = log 2 with weight 0.1,
    # weighted mean over weights 1 + 0.1
    expected_ce = (math.log(1 + math.exp(-2)) + 0.1 * math.log(2)) / 1.1
    assert losses["class_ce"].item() == pytest.approx(expected_ce, rel=1e-5)
    # L1: |0.6 - 0.5| = 0.1 over 1 box, times 5
    assert losses["box_l1"].item() == pytest.approx(0.5, rel=1e-5)
    # GIoU of the half-overlapping boxes is 1/3: (1 - 1/3) * 2
    assert losses["box_giou"].item() == pytest.approx(4 / 3, rel=1e-5)
    assert set(losses) == {"class_ce", "box_l1", "box_giou"}


def test_aux_losses_sum_over_lower_layers_and_empty_targets():
    g = torch.Generator().manual_seed(0)
    logits, boxes = torch.randn(3, 2, 5, 4, generator=g), torch.rand(3, 2, 5, 4, generator=g) * 0.4 + 0.2
    targets = [{"labels": torch.tensor([0, 2]), "boxes": torch.rand(2, 4, generator=g) * 0.4 + 0.2},
               {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}]
    criterion = SetCriterion(3, HungarianMatcher())
    losses, matches = criterion(logits, boxes, targets)
    assert len(matches) == 3 and all(len(m[1][0]) == 0 for m in matches)
    per_layer = [criterion(logits[i:i + 1], boxes[i:i + 1], targets)[0] for i in range(3)]
    assert losses["box_l1"].item() == pytest.approx(per_layer[2]["box_l1"].item())
    assert losses["aux_box_giou"].item() == pytest.approx(per_layer[0]["box_giou"].item()
                                                          + per_layer[1]["box_giou"].item(), rel=1e-5)
    # no target anywhere: only the no-object classification loss remains
    empty = [targets[1], targets[1]]
    losses, _ = criterion(logits, boxes, empty)
    assert losses["box_l1"].item() == 0 and losses["box_giou"].item() == 0
    assert losses["class_ce"].item() > 0
