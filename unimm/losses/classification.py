"""Losses of a classifier's logits against a batch target: single-label and soft multi-label.

Each is a registered ``losses`` part with a ``name`` (the key it is logged under,
``<dataset>/<name>``) and the ``target_key`` of the batch entry it reads.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from unimm.registry import LOSSES

IGNORE = -100


class CrossEntropy(nn.Module):
    """Softmax cross-entropy (UniT Eq. 9) against ``label`` ``[B]``; labels < 0 are ignored.

    The mean is over labelled samples, and 0 (with a graph) when the batch has none.
    """

    name = "cross_entropy"
    target_key = "label"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``logits`` ``[B, C]``, ``target`` long ``[B]`` -> a scalar."""
        labels = target.long().masked_fill(target < 0, IGNORE)  # [B]
        value = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE, reduction="sum")
        return value / (labels != IGNORE).sum().clamp(min=1)


class SoftBCE(nn.Module):
    """Binary cross-entropy with logits against soft scores ``answer_scores`` ``[B, A]`` (VQA).

    Averaged over the ``B * A`` entries and multiplied by ``A``, i.e. summed over answers and
    averaged over questions, as MMF's UniT and its VQA losses do (``loss *= targets.size(1)``).
    """

    name = "soft_bce"
    target_key = "answer_scores"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``logits`` and ``target`` ``[B, A]`` -> a scalar."""
        if target.shape != logits.shape:
            raise ValueError(f"answer_scores has shape {tuple(target.shape)} but the head predicts "
                             f"{tuple(logits.shape)}; the answer vocabulary sizes differ")
        return F.binary_cross_entropy_with_logits(logits.float(), target.float()) * target.shape[1]


@LOSSES.register()
def cross_entropy() -> CrossEntropy:
    """Softmax cross-entropy against ``batch["label"]`` (labels < 0 ignored)."""
    return CrossEntropy()


@LOSSES.register()
def soft_bce() -> SoftBCE:
    """Soft-score binary cross-entropy against ``batch["answer_scores"]`` (VQA), summed over answers."""
    return SoftBCE()
