"""BUTD's attribute loss (Anderson et al., 2018), as UniT's Visual Genome attribute head uses it (Eq. 7)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def attribute_loss(logits: Tensor, attributes: Tensor) -> Tensor:
    """BUTD's attribute loss: softmax cross-entropy per annotated attribute.

    Each box with ``n >= 1`` annotated attributes contributes the mean of its ``n``
    cross-entropies (each attribute a separate softmax target, not a multi-label sigmoid);
    the loss is half the mean over such boxes (BUTD weighs it by 0.5, MMF's UniT too).

    Args:
        logits: ``[N, K]`` attribute logits of N boxes.
        attributes: long ``[N, M]`` attribute ids, -1 padded.

    Returns:
        A scalar; zero (keeping the graph) when no box has an attribute.
    """
    valid = attributes >= 0  # [N, M]
    per_box = valid.sum(dim=1)  # [N]
    if logits.shape[0] == 0 or not bool((per_box > 0).any()):
        return logits.sum() * 0.0
    slots = attributes.shape[1]
    expanded = logits.float().repeat_interleave(slots, dim=0)  # [N*M, K]
    ce = F.cross_entropy(expanded, attributes.flatten().clamp(min=0), reduction="none")  # [N*M]
    ce = (ce * valid.flatten()).view(-1, slots).sum(dim=1)  # [N], summed over valid slots
    has_any = per_box > 0
    return 0.5 * (ce[has_any] / per_box[has_any]).mean()
