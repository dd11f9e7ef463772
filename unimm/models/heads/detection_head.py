"""DETR detection head on every decoder layer (UniT Eq. 5-7): class and box predictions,
optional Visual Genome attributes, and the set-prediction losses."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unimm.losses.attribute import attribute_loss
from unimm.losses.set_criterion import SetCriterion, matched_queries
from unimm.models.heads.attribute_head import AttributeHead, attribute_head
from unimm.modules.matcher import HungarianMatcher, Match
from unimm.modules.mlp import MLP
from unimm.registry import HEADS


class DetectionHead(nn.Module):
    """``c^l = class_head(h^l)`` (Eq. 5), ``b^l = box_head(h^l)`` (Eq. 6), ``a^l = attr_head(h^l, c^l)`` (Eq. 7).

    The class head is a linear layer to ``C + 1`` logits (the last one "no object"); the box
    head a 3-layer ReLU MLP with a sigmoid giving (cx, cy, w, h) in [0, 1]. Both run on every
    decoder layer; the DETR losses apply to each (auxiliary losses), predictions come from the
    top layer (Sec. 3.4: "at test time, we only take the prediction from the top decoder layer").

    Args:
        hidden_size: decoder width ``D``.
        num_classes: object classes ``C``.
        criterion: the set criterion (matcher and loss weights).
        attributes: an attribute head, or None.
        attribute_weight: multiplier of the attribute loss.
    """

    def __init__(self, hidden_size: int, num_classes: int, criterion: SetCriterion,
                 attributes: AttributeHead | None = None, attribute_weight: float = 1.0) -> None:
        super().__init__()
        self.class_embed = nn.Linear(hidden_size, num_classes + 1)
        self.bbox_embed = MLP(hidden_size, hidden_size, 4, num_layers=3)
        self.criterion = criterion
        self.attributes = attributes
        self.attribute_weight = attribute_weight

    def forward(self, hidden_states: Tensor, batch: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Predict boxes and, when the batch has ``targets``, compute the losses.

        Args:
            hidden_states: ``[L, B, Q, D]`` decoder states.
            batch: may hold ``targets``: B dicts with ``labels`` ``[N_i]``, ``boxes``
                ``[N_i, 4]`` (cx, cy, w, h in [0, 1]) and, for attributes, ``attributes``
                ``[N_i, M]`` (-1 padded).

        Returns:
            ``(outputs, losses)``. outputs: ``pred_logits`` ``[B, Q, C + 1]``, ``pred_boxes``
            ``[B, Q, 4]``, ``aux_outputs`` (the same for layers ``0 .. L-2``), and with an
            attribute head ``pred_attributes`` ``[B, Q, K]`` (for the predicted classes).
            losses: the criterion's weighted losses, plus ``attribute_ce`` / ``aux_attribute_ce``.
        """
        logits = self.class_embed(hidden_states)  # [L, B, Q, C+1]
        boxes = self.bbox_embed(hidden_states).sigmoid()  # [L, B, Q, 4]
        outputs: dict[str, Any] = {
            "pred_logits": logits[-1], "pred_boxes": boxes[-1],
            "aux_outputs": [{"pred_logits": c, "pred_boxes": b} for c, b in zip(logits[:-1], boxes[:-1])],
        }
        if self.attributes is not None:
            predicted = logits[-1][..., :-1].argmax(dim=-1)  # [B, Q], best real class
            outputs["pred_attributes"] = self.attributes(hidden_states[-1], predicted)
        targets = batch.get("targets")
        if targets is None:
            return outputs, {}
        losses, matches = self.criterion(logits, boxes, targets)
        if self.attributes is not None and all("attributes" in t for t in targets):
            top = len(matches) - 1
            for layer, match in enumerate(matches):
                key = "attribute_ce" if layer == top else "aux_attribute_ce"
                value = self.attribute_weight * self.matched_attribute_loss(hidden_states[layer], targets, match)
                losses[key] = losses[key] + value if key in losses else value
        return outputs, losses

    def matched_attribute_loss(self, hidden: Tensor, targets: Sequence[Mapping[str, Any]],
                               match: Sequence[Match]) -> Tensor:
        """Attribute loss of matched queries, fed their target classes (BUTD trains on gt classes).

        Args:
            hidden: ``[B, Q, D]`` one layer's states.
        """
        assert self.attributes is not None
        batch_idx, query_idx = matched_queries(match, hidden.device)
        classes = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, match)]).to(hidden.device)  # [K]
        attributes = _pad_cat([t["attributes"][j] for t, (_, j) in zip(targets, match)]).to(hidden.device)
        logits = self.attributes(hidden[batch_idx, query_idx], classes)  # [K, A]
        return attribute_loss(logits, attributes)


def _pad_cat(pieces: list[Tensor]) -> Tensor:
    """Concatenate ``[N_i, M_i]`` attribute tables, padding columns with -1 to the largest ``M_i``."""
    width = max((int(p.shape[1]) for p in pieces if p.dim() == 2), default=1)
    rows = [p if p.dim() == 2 else p.view(-1, 1) for p in pieces]
    return torch.cat([F.pad(p.long(), (0, width - p.shape[1]), value=-1) for p in rows])


@HEADS.register()
def detection_head(
    num_classes: int,
    hidden_size: int = 768,
    class_weight: float = 1.0,
    l1_weight: float = 5.0,
    giou_weight: float = 2.0,
    no_object_weight: float = 0.1,
    num_attributes: int = 0,
    predict_attributes: bool = True,
    attribute_weight: float = 1.0,
) -> DetectionHead:
    """DETR class + box heads with the Hungarian set loss, and BUTD attributes when there are any.

    Args:
        num_classes: object classes ``C`` (label ``i`` is the dataset's ``categories[i]``).
        hidden_size: decoder width.
        class_weight, l1_weight, giou_weight: matching costs and loss weights (DETR: 1, 5, 2).
        no_object_weight: class weight of "no object" (DETR: 0.1).
        num_attributes: attribute classes of the dataset (Visual Genome); 0 = none.
        predict_attributes: add the attribute head when ``num_attributes`` > 0.
        attribute_weight: multiplier of the attribute loss (on top of BUTD's 0.5).
    """
    matcher = HungarianMatcher(class_cost=class_weight, l1_cost=l1_weight, giou_cost=giou_weight)
    criterion = SetCriterion(num_classes, matcher, class_weight=class_weight, l1_weight=l1_weight,
                             giou_weight=giou_weight, no_object_weight=no_object_weight)
    attributes = None
    if predict_attributes and num_attributes:
        attributes = attribute_head(num_classes, num_attributes, hidden_size=hidden_size)
    return DetectionHead(hidden_size, num_classes, criterion, attributes, attribute_weight)
