"""METER's (and ViLT's) classifier on pooled joint features: Linear -> LayerNorm -> GELU -> Linear."""
from __future__ import annotations

from typing import Annotated, Any, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.refs import Range
from unimm.interfaces import TargetLoss
from unimm.modules.bert_layer import init_bert_weights
from unimm.registry import HEADS, LOSSES


class VLClassifierHead(nn.Module):
    """``logits = W_2 GELU(LN(W_1 f + b_1)) + b_2`` on pooled features, and the loss of its target.

    METER's ``vqa_classifier`` (VQAv2, 3,129 answers with soft BCE: 7,173,177 parameters at 1536) and
    ``snli_classifier`` (3 classes, cross-entropy), REFERENCE_NOTES 1.1; NLVR2's takes the 3072-d pair.
    The LayerNorm has PyTorch's default epsilon (1e-5), as METER's ``nn.LayerNorm``.

    Args:
        input_size: the pooled feature width (METER: 1536).
        hidden_size: the hidden width (METER: the input width, 1536).
        num_classes: classes (answers for VQA).
        loss: reads the batch entry its ``target_key`` names (``answer_scores`` for ``soft_bce``).
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, loss: TargetLoss) -> None:
        super().__init__()
        self.dense = nn.Linear(input_size, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size)
        self.out = nn.Linear(hidden_size, num_classes)
        self.loss = loss
        self.apply(init_bert_weights)  # METER: objectives.init_weights

    def forward(self, features: Tensor, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Classify; with the loss's target in ``batch``, compute the loss.

        Args:
            features: ``[B, D_in]``.
            batch: may hold the target (``answer_scores`` ``[B, A]``, ``label`` ``[B]``).

        Returns:
            ``({"logits": [B, C]}, {<loss name>: scalar})`` (no loss without the target).
        """
        logits = self.out(F.gelu(self.layer_norm(self.dense(features))))  # [B, C]
        target = batch.get(self.loss.target_key)
        if target is None:
            return {"logits": logits}, {}
        return {"logits": logits}, {self.loss.name: self.loss(logits, target)}


@HEADS.register(parts={"loss": LOSSES})
def vl_classifier_head(num_classes: Annotated[int, Range(ge=1)], input_size: Annotated[int, Range(ge=1)] = 1536,
                       hidden_size: Annotated[int, Range(ge=1)] | None = None,
                       loss: Any = "cross_entropy") -> VLClassifierHead:
    """Linear -> LayerNorm -> GELU -> Linear on pooled joint features (METER's VQA / SNLI-VE / NLVR2 heads).

    Args:
        num_classes: output classes (a VQA dataset's answers; a model passes them).
        input_size: pooled feature width (METER: 1536; a model passes its own).
        hidden_size: hidden width (None: ``input_size``, as METER).
        loss: a ``losses`` node: ``soft_bce`` (VQA, summed over answers as METER's BCE x 3129) or
            ``cross_entropy``.
    """
    if isinstance(loss, (str, Mapping)):
        loss = LOSSES.build(loss)
    return VLClassifierHead(input_size, hidden_size or input_size, num_classes, loss)
