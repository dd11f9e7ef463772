"""Merged-attention fusion (METER Sec. 3.1 and 4.2, Fig. 2b): one stack of self-attention layers over
the concatenated text and image sequences."""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.modules.bert_layer import BertLayer, init_bert_weights
from unimm.registry import FUSIONS


class MergedAttention(nn.Module):
    """``M`` BERT layers (self-attention + FFN) over ``[text; image]``, shared by both modalities.

    METER adds "a modality embedding to the input features before feeding them to the top
    transformer" (Sec. 4.2). That embedding is the model's: METER's model adds its token-type
    embedding (text 0, image 1) to both streams before any fusion, so this module adds none of its
    own (a model that does not should add one before calling it).

    Args:
        hidden_size: ``D`` (METER: 768).
        num_layers: ``M_merged`` (METER: 12, 85,054,464 parameters, "roughly comparable" to the
            113,421,312 of co-attention with ``M_co = 6``).
        num_heads: attention heads.
        intermediate_size: FFN width.
        dropout: attention and hidden dropout.
        layer_norm_eps: LayerNorm epsilon.
    """

    def __init__(self, hidden_size: int = 768, num_layers: int = 12, num_heads: int = 12,
                 intermediate_size: int = 3072, dropout: float = 0.1, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.layers = nn.ModuleList(BertLayer(hidden_size, num_heads, intermediate_size, dropout, layer_norm_eps)
                                    for _ in range(num_layers))
        self.apply(init_bert_weights)

    def forward(self, text: Tensor, text_padding: Tensor | None, image: Tensor,
                image_padding: Tensor | None) -> tuple[Tensor, Tensor]:
        """Fuse the two streams by joint self-attention.

        Args:
            text: ``[B, T, D]``; text_padding: bool ``[B, T]`` (True on padding) or None.
            image: ``[B, N, D]``; image_padding: bool ``[B, N]`` or None.

        Returns:
            ``(text [B, T, D], image [B, N, D])``: the joint sequence's states, split back.
        """
        length = text.shape[1]
        x = torch.cat([text, image], dim=1)  # [B, T+N, D]
        if text_padding is None and image_padding is None:
            padding = None
        else:
            t_pad = text_padding if text_padding is not None else text.new_zeros(text.shape[:2], dtype=torch.bool)
            i_pad = image_padding if image_padding is not None else image.new_zeros(image.shape[:2], dtype=torch.bool)
            padding = torch.cat([t_pad.bool(), i_pad.bool()], dim=1)  # [B, T+N]
        for layer in self.layers:
            x = layer(x, padding)
        return x[:, :length], x[:, length:]


@FUSIONS.register()
def merged_attention(hidden_size: Annotated[int, Range(ge=1)] = 768, num_layers: Annotated[int, Range(ge=1)] = 12,
                     num_heads: Annotated[int, Range(ge=1)] = 12,
                     intermediate_size: Annotated[int, Range(ge=1)] = 3072,
                     dropout: Annotated[float, Range(ge=0, lt=1)] = 0.1,
                     layer_norm_eps: Annotated[float, Range(gt=0)] = 1e-12) -> MergedAttention:
    """Merged attention: M self-attention layers over the concatenated text and image (METER Fig. 2b).

    Args:
        hidden_size: width of both streams (METER: 768). A model passes its own.
        num_layers: ``M_merged`` (METER: 12).
        num_heads: attention heads (METER: 12).
        intermediate_size: FFN width (METER: 3072).
        dropout: attention and hidden dropout.
        layer_norm_eps: LayerNorm epsilon.
    """
    if hidden_size % num_heads:
        raise ConfigError(f"{hidden_size} is not a multiple of num_heads={num_heads}", key="hidden_size")
    return MergedAttention(hidden_size, num_layers, num_heads, intermediate_size, dropout, layer_norm_eps)
