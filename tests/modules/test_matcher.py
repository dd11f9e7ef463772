import itertools

import torch

from unimm.modules.box_ops import box_cxcywh_to_xyxy, generalized_box_iou
from unimm.modules.matcher import HungarianMatcher


def random_targets(counts, num_classes, generator):
    return [{"labels": torch.randint(num_classes, (n,), generator=generator),
             "boxes": torch.rand(n, 4, generator=generator) * 0.5 + 0.1} for n in counts]


def test_batched_equals_one_by_one():
    g = torch.Generator().manual_seed(0)
    matcher = HungarianMatcher()
    logits, boxes = torch.randn(4, 7, 6, generator=g), torch.rand(4, 7, 4, generator=g) * 0.5 + 0.1
    targets = random_targets([3, 0, 7, 1], 5, g)
    batched = matcher(logits, boxes, targets)
    for i, target in enumerate(targets):
        (rows, cols), = matcher(logits[i:i + 1], boxes[i:i + 1], [target])
        assert torch.equal(batched[i][0], rows) and torch.equal(batched[i][1], cols)
        assert len(rows) == min(7, len(target["labels"]))


def test_assignment_is_optimal():
    g = torch.Generator().manual_seed(1)
    matcher = HungarianMatcher(class_cost=1, l1_cost=5, giou_cost=2)
    logits, boxes = torch.randn(1, 4, 4, generator=g), torch.rand(1, 4, 4, generator=g) * 0.5 + 0.1
    target = random_targets([3], 3, g)[0]
    prob = logits[0].softmax(-1)
    cost = (-prob[:, target["labels"]] + 5 * torch.cdist(boxes[0], target["boxes"], p=1)
            - 2 * generalized_box_iou(box_cxcywh_to_xyxy(boxes[0]), box_cxcywh_to_xyxy(target["boxes"])))
    best = min(itertools.permutations(range(4), 3), key=lambda rows: sum(cost[r, c] for c, r in enumerate(rows)))
    (rows, cols), = matcher(logits, boxes, [target])
    chosen = dict(zip(cols.tolist(), rows.tolist()))
    assert [chosen[c] for c in range(3)] == list(best)


def test_all_targets_empty():
    matcher = HungarianMatcher()
    empty = {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}
    out = matcher(torch.randn(2, 5, 3), torch.rand(2, 5, 4), [empty, empty])
    assert [(len(r), len(c)) for r, c in out] == [(0, 0), (0, 0)]
    assert out[0][0].dtype == torch.long


def reference_matches(logits, boxes, targets, weights=(1.0, 5.0, 2.0)):
    """A straightforward per-image matcher: each image's own cost matrix, solved on its own."""
    from scipy.optimize import linear_sum_assignment

    out = []
    for i, target in enumerate(targets):
        if len(target["labels"]) == 0:
            out.append((torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)))
            continue
        prob = logits[i].float().softmax(-1)
        cost = (weights[0] * -prob[:, target["labels"]] + weights[1] * torch.cdist(boxes[i], target["boxes"], p=1)
                - weights[2] * generalized_box_iou(box_cxcywh_to_xyxy(boxes[i]), box_cxcywh_to_xyxy(target["boxes"])))
        rows, cols = linear_sum_assignment(cost.numpy())
        out.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)))
    return out


def test_the_padded_per_image_blocks_match_a_per_image_reference():
    g = torch.Generator().manual_seed(7)
    matcher = HungarianMatcher()
    for counts in ([3, 0, 12, 1, 5], [0, 0, 2], [20, 20], [1]):
        logits = torch.randn(len(counts), 25, 11, generator=g)
        boxes = torch.rand(len(counts), 25, 4, generator=g) * 0.5 + 0.1
        targets = random_targets(counts, 10, g)
        for (rows, cols), (ref_rows, ref_cols) in zip(matcher(logits, boxes, targets),
                                                      reference_matches(logits, boxes, targets)):
            assert torch.equal(rows, ref_rows) and torch.equal(cols, ref_cols)


def test_a_label_outside_the_head_is_named():
    g = torch.Generator().manual_seed(0)
    targets = random_targets([2], 5, g)
    targets[0]["labels"][1] = 9
    import pytest

    with pytest.raises(ValueError, match=r"target labels must lie in \[0, 5\)"):
        HungarianMatcher()(torch.randn(1, 4, 6, generator=g), torch.rand(1, 4, 4, generator=g) * 0.5 + 0.1, targets)
