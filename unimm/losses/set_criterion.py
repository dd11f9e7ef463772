"""DETR's set prediction loss: Hungarian matching, then class, L1 and GIoU losses per decoder
layer (UniT Sec. 3.4: the DETR losses on the outputs of Eq. 5-6 of every layer)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import Tensor, nn

from unimm.modules.box_ops import box_cxcywh_to_xyxy, paired_generalized_box_iou
from unimm.modules.matcher import HungarianMatcher, Match

LOSS_NAMES = ("class_ce", "box_l1", "box_giou")


class SetCriterion(nn.Module):
    """Matches every decoder layer's predictions to the targets and sums the weighted losses.

    Per layer, with ``n`` the number of target boxes (at least 1), averaged over ranks in
    training mode:

    * ``class_ce``: cross-entropy over all ``B * Q`` queries, unmatched ones labelled
      "no object" (index ``C``) with weight ``no_object_weight``; a weighted mean;
    * ``box_l1``: summed L1 distance of matched (cx, cy, w, h) boxes, divided by ``n``;
    * ``box_giou``: summed ``1 - GIoU`` of matched boxes, divided by ``n``.

    Each value is multiplied by its weight. The top layer's losses keep these names; the
    lower layers' (auxiliary) losses are summed into ``aux_<name>``.

    Args:
        num_classes: object classes ``C``, without "no object".
        matcher: assigns queries to targets.
        class_weight, l1_weight, giou_weight: loss weights (DETR: 1, 5, 2).
        no_object_weight: class weight of the "no object" class (DETR: 0.1).
    """

    def __init__(self, num_classes: int, matcher: HungarianMatcher, class_weight: float = 1.0,
                 l1_weight: float = 5.0, giou_weight: float = 2.0, no_object_weight: float = 0.1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher
        self.weights = {"class_ce": class_weight, "box_l1": l1_weight, "box_giou": giou_weight}
        class_weights = torch.ones(num_classes + 1)
        class_weights[-1] = no_object_weight
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, pred_logits: Tensor, pred_boxes: Tensor, targets: Sequence[Mapping[str, Any]],
                ) -> tuple[dict[str, Tensor], list[list[Match]]]:
        """Losses of every decoder layer.

        Args:
            pred_logits: ``[L, B, Q, C + 1]``, layer ``L - 1`` on top.
            pred_boxes: ``[L, B, Q, 4]`` (cx, cy, w, h) in [0, 1].
            targets: B dicts with ``labels`` long ``[N_i]`` and ``boxes`` ``[N_i, 4]``.

        Returns:
            ``(losses, matches)``: weighted losses (``class_ce``, ``box_l1``, ``box_giou`` and,
            with ``L > 1``, ``aux_*``), and each layer's matching (``matches[l][b]``).
        """
        # Only training steps average over ranks: every rank runs each training step, while
        # evaluation shards may hold different numbers of batches and a collective could hang.
        num_boxes = average_box_count(targets, pred_boxes.device, across_ranks=self.training)
        losses: dict[str, Tensor] = {}
        matches = []
        top = pred_logits.shape[0] - 1
        flat = FlatTargets.of(targets, pred_logits.device)  # once for every layer
        for layer in range(top + 1):
            match = self.matcher(pred_logits[layer], pred_boxes[layer], targets)
            matches.append(match)
            layer_losses = self.layer_losses(pred_logits[layer], pred_boxes[layer], flat, match, num_boxes)
            for name, value in layer_losses.items():
                key = name if layer == top else f"aux_{name}"
                losses[key] = losses[key] + value if key in losses else value
        return losses, matches

    def layer_losses(self, pred_logits: Tensor, pred_boxes: Tensor,
                     targets: FlatTargets, match: Sequence[Match], num_boxes: float) -> dict[str, Tensor]:
        """Weighted losses of one layer: ``[B, Q, C + 1]`` logits, ``[B, Q, 4]`` boxes, the batch's targets
        concatenated once for all layers."""
        batch_idx, query_idx = matched_queries(match, pred_logits.device)
        target_idx = targets.index(match)  # [K] each matched target's row in the flat targets
        target_classes = torch.full(pred_logits.shape[:2], self.num_classes, dtype=torch.long,
                                    device=pred_logits.device)  # [B, Q], "no object" everywhere
        target_classes[batch_idx, query_idx] = targets.labels[target_idx]
        class_ce = F.cross_entropy(pred_logits.transpose(1, 2).float(), target_classes,
                                   weight=self.class_weights.to(pred_logits.device))

        boxes = pred_boxes[batch_idx, query_idx].float()  # [K, 4]
        target_boxes = targets.boxes[target_idx].to(boxes)  # [K, 4]
        box_l1 = F.l1_loss(boxes, target_boxes, reduction="sum") / num_boxes
        if len(boxes):
            # DETR takes diag() of the K x K matrix of all matched boxes; the pairs alone give the same numbers
            giou = paired_generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(target_boxes))
            box_giou = (1 - giou).sum() / num_boxes
        else:
            box_giou = boxes.sum()  # zero that keeps the graph
        raw = {"class_ce": class_ce, "box_l1": box_l1, "box_giou": box_giou}
        return {name: raw[name] * self.weights[name] for name in LOSS_NAMES}


def matched_queries(match: Sequence[Match], device: torch.device) -> tuple[Tensor, Tensor]:
    """Flatten per-image matches into ``(batch_idx [K], query_idx [K])`` for advanced indexing."""
    sizes = torch.tensor([len(src) for src, _ in match])
    batch_idx = torch.arange(len(match)).repeat_interleave(sizes)
    query_idx = torch.cat([src for src, _ in match])
    return batch_idx.to(device), query_idx.to(device)


class FlatTargets:
    """A batch's targets concatenated once (``labels`` ``[N]``, ``boxes`` ``[N, 4]``), so that each decoder
    layer gathers its matched targets with one index instead of one per image."""

    def __init__(self, labels: Tensor, boxes: Tensor, sizes: Tensor) -> None:
        self.labels, self.boxes = labels, boxes
        self.offsets = sizes.cumsum(0) - sizes  # [B] each image's first row

    @classmethod
    def of(cls, targets: Sequence[Mapping[str, Any]], device: torch.device) -> FlatTargets:
        sizes = torch.tensor([len(t["boxes"]) for t in targets])
        labels = torch.cat([t["labels"] for t in targets]).to(device)
        boxes = torch.cat([t["boxes"] for t in targets]).to(device)
        return cls(labels, boxes, sizes)

    def index(self, match: Sequence[Match]) -> Tensor:
        """Rows of the matched targets ``[K]``, image by image in the match's order."""
        sizes = torch.tensor([len(tgt) for _, tgt in match])
        local = torch.cat([tgt for _, tgt in match])
        return (local + self.offsets.repeat_interleave(sizes)).to(self.labels.device)


def average_box_count(targets: Sequence[Mapping[str, Any]], device: torch.device,
                      across_ranks: bool = True) -> float:
    """Target boxes per rank, averaged over all ranks and at least 1 (DETR's normaliser).

    All ranks then divide their box losses by the same number, so the gradient averaged by
    data parallelism is that of the global mean. ``across_ranks=False`` counts locally.
    """
    count = torch.tensor([float(sum(len(t["boxes"]) for t in targets))], device=device)
    if across_ranks and tdist.is_available() and tdist.is_initialized():
        if tdist.get_backend() == "gloo":
            count = count.cpu()
        tdist.all_reduce(count)
        count = count / tdist.get_world_size()
    return max(float(count.item()), 1.0)
