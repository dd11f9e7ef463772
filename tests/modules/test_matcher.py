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
