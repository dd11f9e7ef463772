"""UniT's classifier head (Eq. 8-9) for VQA, visual entailment and GLUE-style tasks."""
from __future__ import annotations

from typing import Any, Literal, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.models.dataset_info import infer_task, info_of, num_classes_of
from unimm.modules.mlp import GeluClassifier
from unimm.registry import HEADS

LossName = Literal["cross_entropy", "soft_bce"]
TARGET_KEYS = {"cross_entropy": "label", "soft_bce": "answer_scores"}
IGNORE = -100


class MLPClassifierHead(nn.Module):
    """``p = W1 . GeLU(W2 . h_1^{dec,N_d} + b2) + b1`` (Eq. 8) on the first query of the top layer.

    Losses:

    * ``cross_entropy`` (Eq. 9) against ``batch["label"]`` ``[B]``; labels < 0 are ignored;
    * ``soft_bce`` for VQA: binary cross-entropy with logits against the soft scores
      ``batch["answer_scores"]`` ``[B, A]``, averaged over the ``B * A`` entries and multiplied
      by ``A``, i.e. summed over answers and averaged over questions. This is what MMF's UniT
      and its VQA losses do (``loss *= targets.size(1)``).

    Args:
        hidden_size: decoder width ``D``.
        num_classes: classes ``C`` (answers ``A`` for VQA).
        loss: ``cross_entropy`` or ``soft_bce``.
        dropout: dropout after the GeLU.
        all_layers: also apply the classifier (the same weights) to the first query of every
            lower decoder layer and add those losses as ``aux_<loss>``, summed over the
            layers, as DETR's auxiliary detection losses (UniT Table 4 line 6, "losses on all
            decoder layers"). Predictions still come from the top layer.
    """

    task = "classification"

    def __init__(self, hidden_size: int, num_classes: int, loss: LossName = "cross_entropy",
                 dropout: float = 0.1, all_layers: bool = False) -> None:
        super().__init__()
        if loss not in TARGET_KEYS:
            raise ConfigError(f"mlp_classifier_head loss {loss!r}: use one of {', '.join(TARGET_KEYS)}")
        self.classifier = GeluClassifier(hidden_size, num_classes, dropout)
        self.loss = loss
        self.all_layers = all_layers

    def forward(self, hidden_states: Tensor, batch: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Classify and, when the batch has the target, compute the loss.

        Args:
            hidden_states: ``[L, B, Q, D]`` decoder states; ``[-1, :, 0]`` is used.
            batch: may hold ``label`` long ``[B]`` or ``answer_scores`` float ``[B, A]``.

        Returns:
            ``({"logits": [B, C]}, {"cross_entropy" | "soft_bce": scalar})``; with ``all_layers``
            and more than one layer the losses also hold ``aux_<loss>``.
        """
        logits = self.classifier(hidden_states[-1, :, 0])  # [B, C]
        target = batch.get(TARGET_KEYS[self.loss])
        if target is None:
            return {"logits": logits}, {}
        losses = {self.loss: self.loss_of(logits, target)}
        if self.all_layers and hidden_states.shape[0] > 1:
            lower = self.classifier(hidden_states[:-1, :, 0])  # [L-1, B, C]
            losses[f"aux_{self.loss}"] = sum(self.loss_of(layer, target) for layer in lower)
        return {"logits": logits}, losses

    def loss_of(self, logits: Tensor, target: Tensor) -> Tensor:
        """The loss of ``logits`` ``[B, C]`` against ``label`` ``[B]`` or ``answer_scores`` ``[B, C]``."""
        if self.loss == "cross_entropy":
            labels = target.long().masked_fill(target < 0, IGNORE)  # [B]
            value = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE, reduction="sum")
            return value / (labels != IGNORE).sum().clamp(min=1)  # mean over labelled samples, 0 if none
        if target.shape != logits.shape:
            raise ValueError(f"answer_scores has shape {tuple(target.shape)} but the head predicts "
                             f"{tuple(logits.shape)}; the answer vocabulary sizes differ")
        return F.binary_cross_entropy_with_logits(logits.float(), target.float()) * target.shape[1]


@HEADS.register()
def mlp_classifier_head(
    dataset: str,
    dataset_info: dict[str, dict[str, Any]],
    hidden_size: int = 768,
    dropout: float = 0.1,
    loss: LossName | None = None,
    task: Literal["vqa", "classification"] | None = None,
    all_layers: bool = False,
) -> MLPClassifierHead:
    """Two-layer GeLU classifier sized from the dataset's info.

    Args:
        dataset: the dataset key in ``dataset_info``; its ``num_answers`` / ``answer_vocab``
            (VQA) or ``num_classes`` sizes the output.
        dataset_info: per dataset, its ``info()`` (run time).
        hidden_size: decoder width (the classifier's hidden width too, as in the paper).
        dropout: dropout after the GeLU.
        loss: None = ``soft_bce`` for VQA datasets, ``cross_entropy`` otherwise.
        task: ``vqa`` or ``classification``; None = told from the dataset's info.
        all_layers: add the losses of every lower decoder layer (Table 4 line 6).
    """
    info = info_of(dataset_info, dataset)
    task = task or infer_task(info, dataset)
    if task == "detection":
        raise ConfigError(f"dataset '{dataset}' is a detection dataset; give it a detection_head, "
                          "not an mlp_classifier_head")
    loss = loss or ("soft_bce" if task == "vqa" else "cross_entropy")
    return MLPClassifierHead(hidden_size, num_classes_of(info, dataset, task, "mlp_classifier_head"),
                             loss, dropout, all_layers)
