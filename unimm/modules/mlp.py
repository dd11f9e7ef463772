"""Small multi-layer perceptrons: DETR's ReLU MLP (box head) and a GeLU classifier (UniT Eq. 8)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (DETR's box-regression FFN).

    Args:
        input_size: input features.
        hidden_size: width of the hidden layers.
        output_size: output features.
        num_layers: number of linear layers (>= 1).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got num_layers={num_layers}")
        sizes = [input_size] + [hidden_size] * (num_layers - 1) + [output_size]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: Tensor) -> Tensor:
        """``[..., input_size]`` -> ``[..., output_size]``."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class GeluClassifier(nn.Module):
    """``Linear -> GeLU -> Dropout -> Linear``: UniT's two-layer classifier (Eq. 8).

    ``p = W1 . GeLU(W2 . h + b2) + b1``, with dropout after the GeLU (Sec. 3.4: "followed by
    dropout") and the hidden width equal to the input width.

    Args:
        input_size: input features ``D`` (the decoder width).
        num_classes: output logits ``C``.
        dropout: dropout rate after the GeLU.
    """

    def __init__(self, input_size: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dense = nn.Linear(input_size, input_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(input_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """``[..., D]`` -> ``[..., C]`` logits."""
        return self.out(self.dropout(F.gelu(self.dense(x))))
