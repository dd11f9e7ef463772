"""BERT's masked-language-model prediction head, untied (METER) or tied to the word embeddings (MoMo).

BERT's ``BertLMPredictionHead``: ``Linear(D, D) -> GELU -> LayerNorm -> Linear(D, V)`` with an output
bias of its own, and the mean cross-entropy over the masked tokens (METER §3.2 / REFERENCE_NOTES 1.2;
MoMo Eq. 2, as the mean BERT and FLAVA take; ViT-BERT's MLM head).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from unimm.registry import HEADS

IGNORE = -100


class MLMHead(nn.Module):
    """Token logits over the vocabulary from the hidden states of a text (or a text decoder).

    ``logits = W_dec LN(GELU(W h + b)) + b_dec``, where ``W`` is ``[D, D_in]``: BERT's ``[D, D]`` transform
    when the input is as wide as the embeddings, and otherwise the projection from the input width that
    a tied decoder needs (MoMo: a 512-wide decoder before a 768-wide tied table, REFERENCE_NOTES 2.1's
    recommendation ``Linear(512 -> 768) + GELU + LN``, then the tied ``768 -> V`` matrix with its own
    bias). When tied, ``decoder.weight`` *is* the embedding table's parameter (one tensor, trained by
    both uses); the output bias is always the head's own and starts at zero, as BERT's.

    Args:
        vocab_size: ``V``.
        hidden_size: ``D``, the width of the transform and of the decoder's input (the embedding width
            when tied).
        input_size: ``D_in``, the width of the hidden states; None: ``D``.
        layer_norm_eps: the LayerNorm's epsilon (BERT: 1e-12).
        tied_embedding: a ``[V, D]`` word embedding whose weight becomes the decoder's; None: an
            independent decoder (METER, REFERENCE_NOTES 1.5 item 5).
    """

    def __init__(self, vocab_size: int, hidden_size: int = 768, input_size: int | None = None,
                 layer_norm_eps: float = 1e-12, tied_embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        input_size = hidden_size if input_size is None else input_size
        if tied_embedding is not None and tuple(tied_embedding.weight.shape) != (vocab_size, hidden_size):
            raise ValueError(f"the tied embedding is {tuple(tied_embedding.weight.shape)} but the head needs "
                             f"(vocab_size, hidden_size) = ({vocab_size}, {hidden_size}); set hidden_size to the "
                             "embedding width and input_size to the width of the hidden states")
        self.vocab_size = vocab_size
        self.tied = tied_embedding is not None
        self.dense = nn.Linear(input_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        nn.init.zeros_(self.decoder.bias)
        if tied_embedding is not None:
            self.decoder.weight = tied_embedding.weight  # one Parameter, shared

    def forward(self, hidden: Tensor, labels: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Predict every token and, given labels, the loss of the labelled ones.

        Args:
            hidden: ``[B, T, D_in]``.
            labels: long ``[B, T]``, the original id at predicted positions and -100 elsewhere; None: no loss.

        Returns:
            ``logits`` ``[B, T, V]`` and ``{"mlm": mean CE over labelled tokens}`` (``{}`` without labels);
            the loss is 0, with a graph, when no token is labelled.
        """
        logits = self.decoder(self.norm(F.gelu(self.dense(hidden))))  # [B, T, V]
        if labels is None:
            return logits, {}
        if labels.shape != logits.shape[:-1]:
            raise ValueError(f"labels {tuple(labels.shape)} do not match the hidden states {tuple(hidden.shape[:-1])}")
        flat = labels.reshape(-1).long()  # [B*T]
        total = F.cross_entropy(logits.reshape(-1, self.vocab_size).float(), flat, ignore_index=IGNORE,
                                reduction="sum")
        return logits, {"mlm": total / (flat != IGNORE).sum().clamp(min=1)}


@HEADS.register()
def mlm_head(vocab_size: int, hidden_size: int = 768, input_size: int | None = None, layer_norm_eps: float = 1e-12,
             tied_embedding: nn.Embedding | None = None) -> MLMHead:
    """BERT's MLM prediction head (dense + GELU + LayerNorm + decoder), optionally tied to the word embeddings.

    Args:
        vocab_size: output vocabulary ``V``.
        hidden_size: transform / decoder width ``D`` (the word-embedding width when tied).
        input_size: width of the hidden states when it differs from ``D`` (MoMo's 512-wide decoder).
        layer_norm_eps: LayerNorm epsilon.
        tied_embedding: passed by the parent model (not the config) to share its word-embedding table
            as the decoder weight (MoMo); None keeps an untied decoder (METER).
    """
    return MLMHead(vocab_size, hidden_size, input_size, layer_norm_eps, tied_embedding)
