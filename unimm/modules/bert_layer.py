"""BERT's post-LN transformer layer, with an optional cross-attention block between its self-attention
and its feed-forward network (METER's fusion layers, REFERENCE_NOTES 1.1).

The module names are BERT's (``attention.self.query``, ``attention.output.LayerNorm``,
``crossattention.*``, ``intermediate.dense``, ``output.dense``, ``output.LayerNorm``), as in METER's
``BertCrossLayer`` and in Hugging Face ``BertLayer``, so that their weights load by name and the
parameter-group rules that match names (METER's ``LayerNorm.weight`` no-decay rule) apply unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def key_mask(padding_mask: Tensor | None) -> Tensor | None:
    """bool ``[B, S]`` (True on padding) -> the attention mask ``[B, 1, 1, S]`` (True where attended)."""
    if padding_mask is None:
        return None
    return (~padding_mask.bool())[:, None, None, :]


def attention_mask(padding_mask: Tensor | None, queries: int, keys: int, causal: bool,
                   device: torch.device) -> Tensor | None:
    """The boolean mask ``scaled_dot_product_attention`` takes (True where attended), or None for none.

    Args:
        padding_mask: bool ``[B, S]``, True on keys never attended; None: none.
        queries: ``T``; keys: ``S``.
        causal: query ``t`` attends to keys ``0..t`` only (a decoder's self-attention, ``T == S``).
        device: where the causal mask is made.

    Returns:
        ``[B, 1, 1, S]`` (padding only), ``[T, S]`` (causal only), ``[B, 1, T, S]`` (both) or None.
    """
    mask = key_mask(padding_mask)
    if not causal:
        return mask
    if queries != keys:
        raise ValueError(f"causal attention needs as many queries as keys, got {queries} and {keys}")
    order = torch.ones(queries, keys, dtype=torch.bool, device=device).tril()  # [T, S]
    return order if mask is None else mask & order


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with BERT's separate ``query`` / ``key`` / ``value`` projections.

    Args:
        hidden_size: ``D`` (queries, keys and values are ``D`` wide; ``D / heads`` per head).
        num_heads: attention heads.
        dropout: dropout on the attention probabilities (training only).
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)

    def forward(self, queries: Tensor, keys: Tensor, key_padding: Tensor | None = None,
                causal: bool = False) -> Tensor:
        """``queries`` ``[B, T, D]`` attend over ``keys`` ``[B, S, D]`` (also the values).

        Args:
            queries: ``[B, T, D]``.
            keys: ``[B, S, D]``.
            key_padding: bool ``[B, S]``, True on keys never attended (padding); None: none.
            causal: query ``t`` sees keys ``0..t`` only (a decoder's self-attention; ``T == S``).

        Returns:
            ``[B, T, D]``, the heads' outputs concatenated (before BERT's output projection).
        """
        batch, length, width = queries.shape
        heads, head_size = self.num_heads, width // self.num_heads

        def split(x: Tensor) -> Tensor:  # [B, L, D] -> [B, nh, L, hs]
            return x.view(batch, -1, heads, head_size).transpose(1, 2)

        q, k, v = split(self.query(queries)), split(self.key(keys)), split(self.value(keys))
        mask = attention_mask(key_padding, length, keys.shape[1], causal, queries.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)  # [B, nh, T, hs]
        return out.transpose(1, 2).reshape(batch, length, width)  # [B, T, D]


class ResidualNorm(nn.Module):
    """BERT's ``*Output``: ``LayerNorm(x + Dropout(W h + b))`` (post-LN residual)."""

    def __init__(self, input_size: int, hidden_size: int, dropout: float = 0.1, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.dense = nn.Linear(input_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)  # BERT's name (checkpoints, no-decay rules)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: Tensor, residual: Tensor) -> Tensor:
        """``hidden`` ``[B, T, D_in]``, ``residual`` ``[B, T, D]`` -> ``[B, T, D]``."""
        return self.LayerNorm(residual + self.dropout(self.dense(hidden)))


class AttentionBlock(nn.Module):
    """BERT's ``BertAttention``: multi-head attention, output projection, residual, post-LN."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.1, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.self = MultiHeadAttention(hidden_size, num_heads, dropout)  # BERT's (and METER's) name
        self.output = ResidualNorm(hidden_size, hidden_size, dropout, layer_norm_eps)

    def forward(self, x: Tensor, context: Tensor, context_padding: Tensor | None = None,
                causal: bool = False) -> Tensor:
        """``x`` ``[B, T, D]`` attends over ``context`` ``[B, S, D]`` (``x`` itself in self-attention) -> ``[B, T, D]``.

        ``context_padding`` is bool ``[B, S]``, True on keys never attended; ``causal`` limits position
        ``t`` to the context's first ``t + 1`` positions (a decoder's self-attention).
        """
        return self.output(self.self(x, context, context_padding, causal), x)


class Intermediate(nn.Module):
    """BERT's ``BertIntermediate``: ``GELU(W x + b)`` into the feed-forward width."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T, D]`` -> ``[B, T, D_ff]`` (exact erf GELU, as BERT)."""
        return F.gelu(self.dense(x))


class BertLayer(nn.Module):
    """One post-LN layer: self-attention, then (with ``cross_attention``) cross-attention, then the FFN.

    Without cross-attention it is a BERT encoder layer (7,087,872 parameters at 768 / 3072); with it,
    METER's ``BertCrossLayer`` (9,451,776 at 768 / 3072, REFERENCE_NOTES 1.1), where the queries come
    from the layer's own stream and the keys and values from the other stream (METER Sec. 3.3, Fig. 2a).

    Args:
        hidden_size: ``D``.
        num_heads: heads of both attention blocks.
        intermediate_size: the FFN width.
        dropout: dropout on attention probabilities and on each block's output.
        layer_norm_eps: the LayerNorms' epsilon (BERT and METER: 1e-12).
        cross_attention: add the cross-attention block.
    """

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, dropout: float = 0.1,
                 layer_norm_eps: float = 1e-12, cross_attention: bool = False) -> None:
        super().__init__()
        self.attention = AttentionBlock(hidden_size, num_heads, dropout, layer_norm_eps)
        self.crossattention = (AttentionBlock(hidden_size, num_heads, dropout, layer_norm_eps) if cross_attention
                               else None)
        self.intermediate = Intermediate(hidden_size, intermediate_size)
        self.output = ResidualNorm(intermediate_size, hidden_size, dropout, layer_norm_eps)

    def forward(self, x: Tensor, padding: Tensor | None = None, other: Tensor | None = None,
                other_padding: Tensor | None = None) -> Tensor:
        """Update one stream.

        Args:
            x: ``[B, T, D]``, this stream.
            padding: bool ``[B, T]``, True on this stream's padding (its keys in self-attention).
            other: ``[B, S, D]``, the other stream (keys and values of the cross-attention); needed
                exactly when the layer has cross-attention.
            other_padding: bool ``[B, S]``, True on the other stream's padding.

        Returns:
            ``[B, T, D]``.
        """
        if (other is None) != (self.crossattention is None):
            raise ValueError("give the other stream exactly when the layer has cross-attention")
        x = self.attention(x, x, padding)  # [B, T, D]
        if self.crossattention is not None:
            x = self.crossattention(x, other, other_padding)  # [B, T, D]
        return self.output(self.intermediate(x), x)  # [B, T, D]


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's (and METER's ``objectives.init_weights``) initialisation, for ``module.apply``.

    Linear and embedding weights ``N(0, std)``, biases 0, LayerNorm weight 1 and bias 0.
    """
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
