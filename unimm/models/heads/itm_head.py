"""Image-text matching: is the image the caption's? A binary classifier on pooled joint features."""
from __future__ import annotations

from typing import Annotated

import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.refs import Range
from unimm.modules.bert_layer import init_bert_weights
from unimm.registry import HEADS


class ITMHead(nn.Module):
    """``logits = W f + b`` over {mismatched (0), matched (1)} and their cross-entropy (METER Sec. 3.2).

    METER's ``ITMHead``: one ``Linear(2D, 2)`` (``fc``) on ``cls_feats``, the concatenation of both
    streams' pooled vectors (1536-d at paper size, REFERENCE_NOTES 1.5 item 8), 3,074 parameters.

    Args:
        input_size: the width of the pooled features.
    """

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(input_size, 2)
        self.apply(init_bert_weights)  # METER: objectives.init_weights

    def forward(self, features: Tensor, labels: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``features`` ``[B, D_in]``, ``labels`` long ``[B]`` (1: matched) -> logits ``[B, 2]``, ``{"itm": CE}``."""
        logits = self.fc(features)  # [B, 2]
        if labels is None:
            return logits, {}
        return logits, {"itm": F.cross_entropy(logits.float(), labels.long())}


@HEADS.register()
def itm_head(input_size: Annotated[int, Range(ge=1)] = 1536) -> ITMHead:
    """Image-text matching: Linear(input_size, 2) and cross-entropy against matched / mismatched labels.

    Args:
        input_size: pooled feature width (METER: 1536, both poolers concatenated); a model passes its own.
    """
    return ITMHead(input_size)
