"""A two-layer GeLU classifier on a decoder's first query (UniT Eq. 8-9), for VQA, visual
entailment and GLUE-style tasks."""
from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from unimm.interfaces import TargetLoss
from unimm.modules.mlp import GeluClassifier
from unimm.registry import HEADS, LOSSES


class MLPClassifierHead(nn.Module):
    """``p = W1 . GeLU(W2 . h_1^{dec,N_d} + b2) + b1`` (Eq. 8) on the first query of the top layer.

    The loss (e.g. ``cross_entropy``, Eq. 9, against ``batch["label"]``, or ``soft_bce`` against
    VQA's ``batch["answer_scores"]``) reads the batch entry its ``target_key`` names and is
    reported under its ``name``.

    Args:
        hidden_size: decoder width ``D``.
        num_classes: classes ``C`` (answers ``A`` for VQA).
        loss: the loss of the logits against the batch target.
        dropout: dropout after the GeLU.
        all_layers: also apply the classifier (the same weights) to the first query of every
            lower decoder layer and add those losses as ``aux_<loss>``, summed over the
            layers, as DETR's auxiliary detection losses (UniT Table 4 line 6, "losses on all
            decoder layers"). Predictions still come from the top layer.
    """

    def __init__(self, hidden_size: int, num_classes: int, loss: TargetLoss, dropout: float = 0.1,
                 all_layers: bool = False) -> None:
        super().__init__()
        self.classifier = GeluClassifier(hidden_size, num_classes, dropout)
        self.loss = loss
        self.all_layers = all_layers

    def forward(self, hidden_states: Tensor, batch: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Classify and, when the batch has the target, compute the loss.

        Args:
            hidden_states: ``[L, B, Q, D]`` decoder states; ``[-1, :, 0]`` is used.
            batch: may hold the loss's target (``label`` long ``[B]``, ``answer_scores`` float ``[B, A]``).

        Returns:
            ``({"logits": [B, C]}, {<loss name>: scalar})``; with ``all_layers`` and more than
            one layer the losses also hold ``aux_<loss name>``.
        """
        logits = self.classifier(hidden_states[-1, :, 0])  # [B, C]
        target = batch.get(self.loss.target_key)
        if target is None:
            return {"logits": logits}, {}
        losses = {self.loss.name: self.loss(logits, target)}
        if self.all_layers and hidden_states.shape[0] > 1:
            lower = self.classifier(hidden_states[:-1, :, 0])  # [L-1, B, C]
            losses[f"aux_{self.loss.name}"] = sum(self.loss(layer, target) for layer in lower)
        return {"logits": logits}, losses


@HEADS.register(parts={"loss": LOSSES})
def mlp_classifier_head(
    num_classes: int,
    hidden_size: int = 768,
    dropout: float = 0.1,
    loss: Any = "cross_entropy",
    all_layers: bool = False,
) -> MLPClassifierHead:
    """Two-layer GeLU classifier on the first query of the top decoder layer (UniT Eq. 8).

    Args:
        num_classes: output classes (a VQA dataset's answers).
        hidden_size: decoder width (the classifier's hidden width too, as in the paper).
        dropout: dropout after the GeLU.
        loss: a ``losses`` node: ``cross_entropy`` (Eq. 9) or ``soft_bce`` (VQA soft scores).
        all_layers: add the losses of every lower decoder layer (Table 4 line 6).
    """
    if isinstance(loss, (str, Mapping)):
        loss = LOSSES.build(loss)
    return MLPClassifierHead(hidden_size, num_classes, loss, dropout, all_layers)
