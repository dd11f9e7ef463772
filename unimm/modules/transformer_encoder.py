"""DETR's transformer encoder: post-norm self-attention layers with positions added to q and k."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class TransformerEncoderLayer(nn.Module):
    """One post-norm encoder layer (DETR ``forward_post``).

    ``x = norm1(x + drop(attn(q=x+pos, k=x+pos, v=x)))``, then
    ``x = norm2(x + drop(linear2(drop(relu(linear1(x))))))``. Sub-module names follow DETR's
    so that its checkpoints load by a prefix rename.

    Args:
        hidden_size: model width ``D``.
        num_heads: attention heads (``D`` must be divisible by it).
        ffn_size: width of the feed-forward block.
        dropout: dropout in attention, after each sub-block and inside the feed-forward block.
    """

    def __init__(self, hidden_size: int, num_heads: int, ffn_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(hidden_size, num_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(hidden_size, ffn_size)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn_size, hidden_size)
        self.norm1 = nn.LayerNorm(hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None, pos: Tensor | None) -> Tensor:
        """Encode a sequence.

        Args:
            x: ``[B, S, D]``.
            padding_mask: bool ``[B, S]``, True on positions to ignore as keys; or None.
            pos: ``[B, S, D]`` position embeddings added to queries and keys; or None.

        Returns:
            ``[B, S, D]``.
        """
        qk = x if pos is None else x + pos
        attended = self.self_attn(qk, qk, x, key_padding_mask=padding_mask, need_weights=False)[0]
        x = self.norm1(x + self.dropout1(attended))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(x))))
        return self.norm2(x + self.dropout2(ffn))


class TransformerEncoder(nn.Module):
    """A stack of post-norm encoder layers (no final norm, as DETR's post-norm encoder).

    Args:
        hidden_size, num_heads, ffn_size, dropout: see ``TransformerEncoderLayer``.
        num_layers: number of layers.
    """

    def __init__(self, hidden_size: int, num_layers: int, num_heads: int, ffn_size: int,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(hidden_size, num_heads, ffn_size, dropout) for _ in range(num_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # DETR initialises every matrix of its transformer with Xavier-uniform.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, pos: Tensor | None = None) -> Tensor:
        """``[B, S, D]`` -> ``[B, S, D]``; see ``TransformerEncoderLayer.forward``."""
        for layer in self.layers:
            x = layer(x, padding_mask, pos)
        return x
