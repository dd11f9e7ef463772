"""Fixed 2-D sine position encoding of a feature map, computed from its padding mask (DETR)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """Sine / cosine encodings of each pixel's (y, x) position, as in "Attention is all you need".

    Positions count real pixels only (a cumulative sum over the non-padded mask), and with
    ``normalize`` they are scaled to ``[0, scale]`` by the real height / width of each image,
    so a pixel's encoding does not depend on how much padding its batch added.

    Args:
        num_pos_feats: channels per axis; the output has ``2 * num_pos_feats`` channels
            (y first, then x), equal to the transformer width.
        temperature: base of the geometric frequency progression.
        normalize: scale positions by the real image extent (DETR uses True).
        scale: the extent positions are scaled to when normalising.
    """

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, normalize: bool = True,
                 scale: float = 2 * math.pi) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale

    def forward(self, padding_mask: Tensor) -> Tensor:
        """Encode positions.

        Args:
            padding_mask: bool ``[B, H, W]``, True on padding.

        Returns:
            float ``[B, 2 * num_pos_feats, H, W]``.
        """
        real = (~padding_mask).float()
        y = real.cumsum(1)  # [B, H, W], 1-based row index among real pixels
        x = real.cumsum(2)  # [B, H, W]
        if self.normalize:
            eps = 1e-6
            y = y / (y[:, -1:, :] + eps) * self.scale
            x = x / (x[:, :, -1:] + eps) * self.scale
        dim = torch.arange(self.num_pos_feats, dtype=torch.float32, device=padding_mask.device)
        freq = self.temperature ** (2 * torch.div(dim, 2, rounding_mode="floor") / self.num_pos_feats)
        pos_x = x[..., None] / freq  # [B, H, W, F]
        pos_y = y[..., None] / freq  # [B, H, W, F]
        # interleave sin on even channels and cos on odd channels
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)  # [B, H, W, F]
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)  # [B, H, W, F]
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)  # [B, 2F, H, W]
