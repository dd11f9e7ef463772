"""Hungarian matcher + set criterion at DETR size: ours against DETR's reference design, side by side.

    python tools/bench_matcher.py [--batch 16 --queries 100 --classes 91 --layers 6 --repeats 15]

DETR's reference matcher scores every query of the batch against every target of the batch and
keeps each image's diagonal block, and its criterion takes the GIoU of its K matched pairs as the
diagonal of a K x K matrix, gathering targets image by image; the reference here is written that way,
with DETR's box overlaps on ``[..., 2]`` coordinate pairs. Ours computes only the blocks (targets
padded to the largest count), the GIoU of the pairs alone, and gathers targets with one index. Both run on the same random predictions and targets (about 7 boxes an image, as COCO);
the matches and losses are checked equal, then the two are timed alternately (A B A B ...) and
the medians printed with their ratio. Nothing is written.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy.optimize import linear_sum_assignment

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch.nn.functional as F  # noqa: E402

from unimm.losses.set_criterion import SetCriterion, matched_queries  # noqa: E402
from unimm.modules.box_ops import box_cxcywh_to_xyxy  # noqa: E402
from unimm.modules.matcher import HungarianMatcher  # noqa: E402


def pair_boxes_giou(boxes1, boxes2):
    """DETR's ``generalized_box_iou``: all pairs, on ``[N, M, 2]`` coordinate pairs."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    wh = (torch.min(boxes1[:, None, 2:], boxes2[:, 2:]) - torch.max(boxes1[:, None, :2], boxes2[:, :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2 - inter
    iou = inter / union
    wh = (torch.max(boxes1[:, None, 2:], boxes2[:, 2:]) - torch.min(boxes1[:, None, :2], boxes2[:, :2])).clamp(min=0)
    area = wh[..., 0] * wh[..., 1]
    return iou - (area - union) / area


class DetrCriterion(SetCriterion):
    """DETR's criterion as written there: targets gathered image by image, the matched pairs' GIoU as the
    diagonal of the K x K matrix of all of them."""

    def layer_losses(self, pred_logits, pred_boxes, targets, match, num_boxes):
        batch_idx, query_idx = matched_queries(match, pred_logits.device)
        target_classes = torch.full(pred_logits.shape[:2], self.num_classes, dtype=torch.long)
        target_classes[batch_idx, query_idx] = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, match)])
        class_ce = F.cross_entropy(pred_logits.transpose(1, 2).float(), target_classes, weight=self.class_weights)
        boxes = pred_boxes[batch_idx, query_idx].float()
        target_boxes = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, match)]).to(boxes)
        box_l1 = F.l1_loss(boxes, target_boxes, reduction="sum") / num_boxes
        giou = torch.diag(pair_boxes_giou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(target_boxes)))
        raw = {"class_ce": class_ce, "box_l1": box_l1, "box_giou": (1 - giou).sum() / num_boxes}
        return {name: raw[name] * self.weights[name] for name in raw}

    def forward(self, pred_logits, pred_boxes, targets):
        num_boxes = max(float(sum(len(t["boxes"]) for t in targets)), 1.0)
        losses, matches, top = {}, [], pred_logits.shape[0] - 1
        for layer in range(top + 1):
            match = self.matcher(pred_logits[layer], pred_boxes[layer], targets)
            matches.append(match)
            for name, value in self.layer_losses(pred_logits[layer], pred_boxes[layer], targets, match,
                                                 num_boxes).items():
                key = name if layer == top else f"aux_{name}"
                losses[key] = losses[key] + value if key in losses else value
        return losses, matches


class AllPairsMatcher(HungarianMatcher):
    """DETR's reference design: the (batch x queries) x (all targets) cost matrix, then its diagonal blocks."""

    @torch.no_grad()
    def forward(self, pred_logits, pred_boxes, targets):
        batch, queries = pred_logits.shape[:2]
        sizes = [len(t["boxes"]) for t in targets]
        prob = pred_logits.flatten(0, 1).float().softmax(-1)
        boxes = pred_boxes.flatten(0, 1).float()
        labels = torch.cat([t["labels"] for t in targets])
        target_boxes = torch.cat([t["boxes"] for t in targets])
        cost = (self.class_cost * -prob[:, labels] + self.l1_cost * torch.cdist(boxes, target_boxes, p=1)
                - self.giou_cost * pair_boxes_giou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(target_boxes)))
        cost = cost.view(batch, queries, -1).cpu()
        out = []
        for i, block in enumerate(cost.split(sizes, -1)):
            rows, cols = linear_sum_assignment(block[i].numpy())
            out.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)))
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--classes", type=int, default=91)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    counts = torch.poisson(torch.full((args.batch,), 7.0), generator=g).long().clamp(min=1).tolist()
    targets = [{"labels": torch.randint(args.classes, (n,), generator=g),
                "boxes": torch.rand(n, 4, generator=g) * 0.4 + 0.2} for n in counts]
    logits = torch.randn(args.layers, args.batch, args.queries, args.classes + 1, generator=g)
    boxes = torch.rand(args.layers, args.batch, args.queries, 4, generator=g) * 0.4 + 0.2
    ours = SetCriterion(args.classes, HungarianMatcher())
    reference = DetrCriterion(args.classes, AllPairsMatcher())
    (ours_losses, ours_matches), (ref_losses, ref_matches) = ours(logits, boxes, targets), reference(logits, boxes, targets)
    same = all(torch.equal(a, b) for layer_a, layer_b in zip(ours_matches, ref_matches)
               for pair_a, pair_b in zip(layer_a, layer_b) for a, b in zip(pair_a, pair_b))
    same_losses = all(torch.equal(ours_losses[k], ref_losses[k]) for k in ours_losses)
    times: dict[str, list[float]] = {"ours": [], "reference": []}
    for _ in range(args.repeats):
        for name, criterion in (("ours", ours), ("reference", reference)):
            start = time.perf_counter()
            criterion(logits, boxes, targets)
            times[name].append(time.perf_counter() - start)
    ours_ms, ref_ms = (1000 * statistics.median(times[k]) for k in ("ours", "reference"))
    print(f"batch {args.batch}, {args.queries} queries, {args.classes + 1} logits, {args.layers} layers, "
          f"{sum(counts)} targets; torch threads {torch.get_num_threads()}")
    print(f"  matches equal: {same}; losses equal: {same_losses}")
    print(f"  matcher + criterion: ours {ours_ms:.2f} ms, DETR's design {ref_ms:.2f} ms: {ref_ms / ours_ms:.2f}x")
    return 0 if same and same_losses else 1


if __name__ == "__main__":
    sys.exit(main())
