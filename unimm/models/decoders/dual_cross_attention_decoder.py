"""A sequence decoder over two encoded streams, vision and text (METER Sec. 4.3, Fig. 3).

METER's encoder-decoder variant: "each decoding layer has two separate cross-attention blocks that attend
to the vision and text representations, respectively". The paper gives no more; our reading follows the
encoder it sits on (BERT post-LN layers, as METER's co-attention) and VL-T5 / T5, which it cites, for the
decoder's order of blocks. One layer is

    x = LN(x + Drop(W_o CausalSelfAttention(x)))        the decoder's own tokens, t sees 0..t
    x = LN(x + Drop(W_o CrossAttention(x, vision)))     the vision stream's encoder output
    x = LN(x + Drop(W_o CrossAttention(x, text)))       the text stream's encoder output
    x = LN(x + Drop(W_2 GELU(W_1 x)))                   the feed-forward network

11,815,680 parameters at 768 / 3072 (three attention blocks of 2,363,904 and the FFN's 4,723,968; one
more attention block than METER's ``BertCrossLayer``, 9,451,776). The vision-before-text order is the
paper's wording; VL-T5 has a single memory (both modalities concatenated), so it gives none.

The decoder takes token embeddings (its caller owns the word-embedding table, shared with the text
encoder in METER) and adds BERT's embedding block minus the word lookup: learned absolute positions
(T5 uses relative position biases; absolute positions match the BERT-style layers around it), a
LayerNorm and dropout.
"""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.modules.bert_layer import AttentionBlock, Intermediate, ResidualNorm, init_bert_weights
from unimm.registry import DECODERS


class DualCrossAttentionLayer(nn.Module):
    """Causal self-attention, cross-attention to vision, cross-attention to text, FFN; each post-LN.

    Module names are BERT's (``attention``, ``intermediate``, ``output``, each with ``LayerNorm``), so that
    METER's no-decay rule on ``LayerNorm.weight`` applies as to its encoder layers.

    Args:
        hidden_size: ``D``.
        num_heads: heads of every attention block.
        intermediate_size: the FFN width.
        dropout: dropout on attention probabilities and on each block's output.
        layer_norm_eps: the LayerNorms' epsilon.
    """

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, dropout: float = 0.1,
                 layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.attention = AttentionBlock(hidden_size, num_heads, dropout, layer_norm_eps)
        self.vision_attention = AttentionBlock(hidden_size, num_heads, dropout, layer_norm_eps)
        self.text_attention = AttentionBlock(hidden_size, num_heads, dropout, layer_norm_eps)
        self.intermediate = Intermediate(hidden_size, intermediate_size)
        self.output = ResidualNorm(intermediate_size, hidden_size, dropout, layer_norm_eps)

    def forward(self, x: Tensor, padding: Tensor | None, vision: Tensor, vision_padding: Tensor | None,
                text: Tensor, text_padding: Tensor | None) -> Tensor:
        """Update the decoder's tokens.

        Args:
            x: ``[B, L, D]``, the decoder's tokens.
            padding: bool ``[B, L]``, True on the decoder's padding (never attended); None: none.
            vision: ``[B, N, D]``; vision_padding: bool ``[B, N]`` or None.
            text: ``[B, T, D]``; text_padding: bool ``[B, T]`` or None.

        Returns:
            ``[B, L, D]``; position ``t`` depends on the decoder's tokens ``0..t`` only.
        """
        x = self.attention(x, x, padding, causal=True)  # [B, L, D]
        x = self.vision_attention(x, vision, vision_padding)  # [B, L, D]
        x = self.text_attention(x, text, text_padding)  # [B, L, D]
        return self.output(self.intermediate(x), x)  # [B, L, D]


class DecoderEmbeddings(nn.Module):
    """``Dropout(LN(tokens + P[0..L-1]))``: BERT's embedding block without its word lookup."""

    def __init__(self, hidden_size: int, max_positions: int, dropout: float, layer_norm_eps: float) -> None:
        super().__init__()
        self.position_embeddings = nn.Embedding(max_positions, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)  # BERT's name (no-decay rules)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor) -> Tensor:
        """``[B, L, D]`` -> ``[B, L, D]``."""
        length, limit = tokens.shape[1], self.position_embeddings.num_embeddings
        if length > limit:
            raise ValueError(f"{length} decoder tokens, but the decoder has {limit} positions; raise the "
                             "decoder's max_positions")
        positions = self.position_embeddings(torch.arange(length, device=tokens.device))  # [L, D]
        return self.dropout(self.LayerNorm(tokens + positions))


class DualCrossAttentionDecoder(nn.Module):
    """Positions + LayerNorm, then ``num_layers`` ``DualCrossAttentionLayer`` (module docstring).

    Args:
        hidden_size: ``D`` of the tokens and of both streams.
        num_layers: decoder layers (METER's encoder-decoder: 3).
        num_heads: attention heads (METER: 12).
        intermediate_size: FFN width (METER: 3072).
        dropout: dropout (METER: 0.1).
        max_positions: rows of the position table, the longest decoder input.
        layer_norm_eps: LayerNorm epsilon (BERT's 1e-12).
    """

    def __init__(self, hidden_size: int = 768, num_layers: int = 3, num_heads: int = 12,
                 intermediate_size: int = 3072, dropout: float = 0.1, max_positions: int = 128,
                 layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.embeddings = DecoderEmbeddings(hidden_size, max_positions, dropout, layer_norm_eps)
        self.layers = nn.ModuleList(DualCrossAttentionLayer(hidden_size, num_heads, intermediate_size, dropout,
                                                            layer_norm_eps) for _ in range(num_layers))
        self.apply(init_bert_weights)  # as METER's other new top layers (objectives.init_weights)

    def forward(self, tokens: Tensor, padding: Tensor | None, vision: Tensor, vision_padding: Tensor | None,
                text: Tensor, text_padding: Tensor | None) -> Tensor:
        """Decode.

        Args:
            tokens: ``[B, L, D]``, the embedded decoder input (position 0 is never padding: a start or
                class token, so that every causal row attends somewhere).
            padding: bool ``[B, L]``, True on padding; None: none.
            vision: ``[B, N, D]``, the vision stream's encoder output; vision_padding bool ``[B, N]`` or None.
            text: ``[B, T, D]``, the text stream's encoder output; text_padding bool ``[B, T]`` or None.

        Returns:
            ``[B, L, D]``, the last layer's states.
        """
        if tokens.shape[-1] != self.hidden_size:
            raise ValueError(f"decoder tokens are {tokens.shape[-1]} wide, the decoder {self.hidden_size}")
        x = self.embeddings(tokens)  # [B, L, D]
        for layer in self.layers:
            x = layer(x, padding, vision, vision_padding, text, text_padding)
        return x


@DECODERS.register()
def dual_cross_attention_decoder(hidden_size: Annotated[int, Range(ge=1)] = 768,
                                 num_layers: Annotated[int, Range(ge=1)] = 3,
                                 num_heads: Annotated[int, Range(ge=1)] = 12,
                                 intermediate_size: Annotated[int, Range(ge=1)] = 3072,
                                 dropout: Annotated[float, Range(ge=0, lt=1)] = 0.1,
                                 max_positions: Annotated[int, Range(ge=1)] = 128,
                                 layer_norm_eps: Annotated[float, Range(gt=0)] = 1e-12) -> DualCrossAttentionDecoder:
    """METER's encoder-decoder decoder (Sec. 4.3): per layer causal self-attention, cross-attention to the
    vision stream, cross-attention to the text stream, FFN, all post-LN.

    Args:
        hidden_size: width of the tokens and of both streams (METER: 768). A model passes its own.
        num_layers: layers (METER: 3; 35,447,040 parameters at 768 / 3072, plus positions and a LayerNorm).
        num_heads: attention heads (METER: 12).
        intermediate_size: FFN width (METER: 3072).
        dropout: attention and hidden dropout (METER: 0.1).
        max_positions: the longest decoder input (a span target of a 50-token caption is at most 73).
        layer_norm_eps: LayerNorm epsilon.
    """
    if hidden_size % num_heads:
        raise ConfigError(f"{hidden_size} is not a multiple of num_heads={num_heads}; pick num_heads dividing it",
                          key="hidden_size")
    return DualCrossAttentionDecoder(hidden_size, num_layers, num_heads, intermediate_size, dropout, max_positions,
                                     layer_norm_eps)
