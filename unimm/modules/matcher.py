"""Hungarian matching of predicted boxes to target boxes (DETR, UniT Sec. 3.4)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from unimm.modules.box_ops import box_cxcywh_to_xyxy, generalized_box_iou

Match = tuple[Tensor, Tensor]  # (prediction indices, target indices), long [K] each


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to targets minimising a weighted matching cost.

    ``cost = class_cost * (-p(target class)) + l1_cost * |b - b_t|_1 + giou_cost * (-GIoU(b, b_t))``,
    with ``p`` the softmax over the ``C + 1`` classes. Only each image's own block of costs is
    computed (its ``Q`` queries against its ``N_i`` targets), for the whole batch at once with the
    targets padded to the largest ``N_i``: DETR's reference scores every query against every target
    of the batch and keeps the diagonal blocks, ``B`` times the work. The costs go to the host in
    one transfer, and the assignment is solved per image (``scipy.optimize.linear_sum_assignment``).

    Args:
        class_cost: weight of the classification cost (DETR: 1).
        l1_cost: weight of the L1 box distance (DETR: 5).
        giou_cost: weight of the negative generalized IoU (DETR: 2).
    """

    def __init__(self, class_cost: float = 1.0, l1_cost: float = 5.0, giou_cost: float = 2.0) -> None:
        super().__init__()
        if class_cost == 0 and l1_cost == 0 and giou_cost == 0:
            raise ValueError("the matcher needs at least one non-zero cost weight")
        self.class_cost, self.l1_cost, self.giou_cost = class_cost, l1_cost, giou_cost

    @torch.no_grad()
    def forward(self, pred_logits: Tensor, pred_boxes: Tensor,
                targets: Sequence[Mapping[str, Any]]) -> list[Match]:
        """Match every image's queries to its targets.

        Args:
            pred_logits: ``[B, Q, C + 1]`` class logits (the last class is "no object").
            pred_boxes: ``[B, Q, 4]`` boxes (cx, cy, w, h) in [0, 1].
            targets: B dicts with ``labels`` long ``[N_i]`` and ``boxes`` ``[N_i, 4]`` (cx, cy, w, h).

        Returns:
            B pairs ``(pred_idx, target_idx)`` of long tensors of length ``min(Q, N_i)``:
            query ``pred_idx[k]`` is assigned target ``target_idx[k]``. Empty for ``N_i = 0``.
        """
        batch, queries = pred_logits.shape[:2]
        sizes = [len(t["boxes"]) for t in targets]
        if len(targets) != batch:
            raise ValueError(f"got {len(targets)} targets for a batch of {batch} predictions")
        empty = torch.empty(0, dtype=torch.long)
        if sum(sizes) == 0:
            return [(empty, empty) for _ in range(batch)]
        prob = pred_logits.float().softmax(-1)  # [B, Q, C+1]
        boxes = pred_boxes.float()  # [B, Q, 4]
        labels, target_boxes = padded_targets(targets, max(sizes), boxes)  # [B, M], [B, M, 4]
        real = labels[labels >= 0]
        if len(real) and (int(real.max()) >= prob.shape[-1] - 1 or int(real.min()) < 0):
            raise ValueError(f"target labels must lie in [0, {prob.shape[-1] - 1}) (the head's classes), "
                             f"got {int(real.min())}..{int(real.max())}")
        class_prob = prob.gather(2, labels.clamp(min=0)[:, None, :].expand(-1, queries, -1))  # [B, Q, M]
        cost = (self.class_cost * -class_prob
                + self.l1_cost * torch.cdist(boxes, target_boxes, p=1)
                - self.giou_cost * generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(target_boxes)))
        cost = cost.cpu()  # [B, Q, M], one host transfer

        matches = []
        for i, size in enumerate(sizes):
            rows, cols = linear_sum_assignment(cost[i, :, :size].numpy())
            matches.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)))
        return matches


# a box every padding slot holds, so the padded costs are finite (they are never read)
PAD_BOX = (0.5, 0.5, 1.0, 1.0)


def padded_targets(targets: Sequence[Mapping[str, Any]], width: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Labels ``[B, M]`` (-1 on padding) and boxes ``[B, M, 4]`` of every image, padded to ``width``."""
    batch = len(targets)
    counts = torch.tensor([len(t["boxes"]) for t in targets])
    rows = torch.arange(batch).repeat_interleave(counts)  # [K] the image of each target
    cols = torch.arange(len(rows)) - (counts.cumsum(0) - counts).repeat_interleave(counts)  # [K] its slot
    rows, cols = rows.to(like.device), cols.to(like.device)
    labels = torch.full((batch, width), -1, dtype=torch.long, device=like.device)
    boxes = like.new_tensor(PAD_BOX).expand(batch, width, 4).clone()
    labels[rows, cols] = torch.cat([t["labels"] for t in targets]).to(labels.device)  # one copy each, not B
    boxes[rows, cols] = torch.cat([t["boxes"] for t in targets]).to(boxes)
    return labels, boxes
