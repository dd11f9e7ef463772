"""Visual Genome attribute prediction (UniT Eq. 7), in the style of BUTD (Anderson et al., 2018)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unimm.registry import HEADS


class AttributeHead(nn.Module):
    """``a^l = attr_head(h^{dec,l}, c^l)`` (Eq. 7): attributes of a box given its object class.

    The class (a target class while training, the predicted class at test time, as BUTD does)
    is embedded, concatenated with the decoder state, and passed through
    ``Linear -> ReLU -> Linear`` to attribute logits. This is BUTD's Caffe attribute branch
    (``cls_embedding`` 256, ``fc_attr`` 512 + ReLU, ``attr_score``); MMF's UniT port puts the ReLU
    after the last layer instead, which clips logits at 0; we keep BUTD's order. Weights start
    from N(0, 0.01) and biases from 0, as in both.

    Args:
        hidden_size: decoder width ``D``.
        num_classes: object classes ``C``; the embedding has ``C + 1`` rows ("no object" too).
        num_attributes: attribute classes ``K``.
        class_embed_size: class embedding width (BUTD: 256).
        inner_size: hidden width (BUTD: 512).
    """

    def __init__(self, hidden_size: int, num_classes: int, num_attributes: int, class_embed_size: int = 256,
                 inner_size: int = 512) -> None:
        super().__init__()
        self.class_embed = nn.Embedding(num_classes + 1, class_embed_size)
        self.linear1 = nn.Linear(hidden_size + class_embed_size, inner_size)
        self.linear2 = nn.Linear(inner_size, num_attributes)
        for weight in (self.class_embed.weight, self.linear1.weight, self.linear2.weight):
            nn.init.normal_(weight, std=0.01)
        nn.init.zeros_(self.linear1.bias)
        nn.init.zeros_(self.linear2.bias)

    def forward(self, hidden: Tensor, classes: Tensor) -> Tensor:
        """Attribute logits.

        Args:
            hidden: ``[..., D]`` decoder states.
            classes: long ``[...]`` object classes in ``[0, C]``.

        Returns:
            ``[..., K]`` logits.
        """
        x = torch.cat([hidden, self.class_embed(classes).to(hidden.dtype)], dim=-1)  # [..., D + E]
        return self.linear2(F.relu(self.linear1(x)))


@HEADS.register()
def attribute_head(num_classes: int, num_attributes: int, hidden_size: int = 768, class_embed_size: int = 256,
                   inner_size: int = 512) -> AttributeHead:
    """BUTD-style attribute head: attribute logits of a box from its decoder state and object class.

    Args:
        num_classes: object classes ``C`` (a detection dataset's categories).
        num_attributes: attribute classes ``K``.
        hidden_size: decoder width.
        class_embed_size: class embedding width (BUTD: 256).
        inner_size: hidden width (BUTD: 512).
    """
    return AttributeHead(hidden_size, num_classes, num_attributes, class_embed_size, inner_size)
