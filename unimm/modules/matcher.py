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
    with ``p`` the softmax over the ``C + 1`` classes. Costs of the whole batch are computed in
    one pass over all predictions and all targets; the assignment is then solved per image
    (``scipy.optimize.linear_sum_assignment``) on its block of the cost matrix.

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
        prob = pred_logits.flatten(0, 1).float().softmax(-1)  # [B*Q, C+1]
        boxes = pred_boxes.flatten(0, 1).float()  # [B*Q, 4]
        target_labels = torch.cat([t["labels"] for t in targets]).to(prob.device)  # [N]
        target_boxes = torch.cat([t["boxes"] for t in targets]).to(boxes)  # [N, 4]
        if int(target_labels.max()) >= prob.shape[-1] - 1 or int(target_labels.min()) < 0:
            raise ValueError(f"target labels must lie in [0, {prob.shape[-1] - 1}) (the head's classes), "
                             f"got {int(target_labels.min())}..{int(target_labels.max())}")

        cost = (self.class_cost * -prob[:, target_labels]
                + self.l1_cost * torch.cdist(boxes, target_boxes, p=1)
                - self.giou_cost * generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(target_boxes)))
        cost = cost.view(batch, queries, -1).cpu()  # [B, Q, N]

        matches = []
        for i, block in enumerate(cost.split(sizes, dim=-1)):  # block: [B, Q, N_i]
            rows, cols = linear_sum_assignment(block[i].numpy())
            matches.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)))
        return matches
