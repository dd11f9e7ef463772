"""DETR's transformer decoder: post-norm layers of self-attention, cross-attention and a
feed-forward block, returning the normalised hidden states of every layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TransformerDecoderLayer(nn.Module):
    """One post-norm decoder layer (DETR ``forward_post``).

    Query positions are added to queries and keys of the self-attention and to the queries of
    the cross-attention; memory positions are added to the cross-attention keys. Sub-module
    names follow DETR's.

    Args:
        hidden_size: model width ``D``.
        num_heads: attention heads.
        ffn_size: width of the feed-forward block.
        dropout: dropout rate.
    """

    def __init__(self, hidden_size: int, num_heads: int, ffn_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(hidden_size, num_heads, dropout=dropout, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(hidden_size, num_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(hidden_size, ffn_size)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn_size, hidden_size)
        self.norm1 = nn.LayerNorm(hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.norm3 = nn.LayerNorm(hidden_size)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt: Tensor, memory: Tensor, memory_padding_mask: Tensor | None,
                memory_pos: Tensor | None, query_pos: Tensor) -> Tensor:
        """Decode one layer.

        Args:
            tgt: ``[B, Q, D]`` decoder states.
            memory: ``[B, S, D]`` encoded inputs.
            memory_padding_mask: bool ``[B, S]``, True on memory positions to ignore; or None.
            memory_pos: ``[B, S, D]`` memory position embeddings; or None.
            query_pos: ``[B, Q, D]`` query embeddings.

        Returns:
            ``[B, Q, D]``.
        """
        qk = tgt + query_pos
        attended = self.self_attn(qk, qk, tgt, need_weights=False)[0]
        tgt = self.norm1(tgt + self.dropout1(attended))
        key = memory if memory_pos is None else memory + memory_pos
        attended = self.multihead_attn(tgt + query_pos, key, memory, key_padding_mask=memory_padding_mask,
                                       need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout2(attended))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ffn))


class TransformerDecoder(nn.Module):
    """A stack of decoder layers with one shared final LayerNorm applied to every layer's output.

    Args:
        hidden_size, num_heads, ffn_size, dropout: see ``TransformerDecoderLayer``.
        num_layers: number of layers ``L``.
    """

    def __init__(self, hidden_size: int, num_layers: int, num_heads: int, ffn_size: int,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(hidden_size, num_heads, ffn_size, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # DETR initialises every matrix of its transformer with Xavier-uniform.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, query_pos: Tensor, memory: Tensor, memory_padding_mask: Tensor | None = None,
                memory_pos: Tensor | None = None) -> Tensor:
        """Decode from zero-initialised states (DETR) guided by the query embeddings.

        Args:
            query_pos: ``[B, Q, D]`` query embeddings.
            memory: ``[B, S, D]``.
            memory_padding_mask: bool ``[B, S]``, True on padding; or None.
            memory_pos: ``[B, S, D]`` or None.

        Returns:
            ``[L, B, Q, D]``: the normalised output of every layer, bottom to top.
        """
        tgt = torch.zeros_like(query_pos)
        states = []
        for layer in self.layers:
            tgt = layer(tgt, memory, memory_padding_mask, memory_pos, query_pos)
            states.append(self.norm(tgt))
        return torch.stack(states)  # [L, B, Q, D]
