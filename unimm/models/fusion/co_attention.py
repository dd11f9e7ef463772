"""Co-attention fusion (METER Sec. 3.1 and 3.3, Fig. 2a): one stack of layers per modality, each layer
self-attention, cross-attention to the other modality and a feed-forward network."""
from __future__ import annotations

from typing import Annotated

from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.modules.bert_layer import BertLayer, init_bert_weights
from unimm.registry import FUSIONS


class CoAttention(nn.Module):
    """``M`` layers per stream, no weight sharing between the streams (METER's default fusion).

    Layer ``m`` of each stream is a post-LN ``BertLayer`` with cross-attention: the text layer's
    queries are the text states and its keys / values the image states, and the other way round.
    **Both streams are updated from the previous layer's outputs** (METER's reference code:
    ``x1 = text_layer(x, y); y1 = image_layer(y, x)``), not one after the other: the image stream
    of layer ``m`` never sees the text output of layer ``m`` (REFERENCE_NOTES 1.5 item 7).

    Args:
        hidden_size: ``D`` of both streams (METER: 768).
        num_layers: ``M_co``, layers per stream (METER: 6, so 12 in all).
        num_heads: attention heads (METER: 12).
        intermediate_size: FFN width (METER: 3072).
        dropout: attention and hidden dropout (METER: 0.1).
        layer_norm_eps: LayerNorm epsilon (BERT's 1e-12).
    """

    def __init__(self, hidden_size: int = 768, num_layers: int = 6, num_heads: int = 12, intermediate_size: int = 3072,
                 dropout: float = 0.1, layer_norm_eps: float = 1e-12) -> None:
        super().__init__()
        self.hidden_size = hidden_size

        def stack() -> nn.ModuleList:
            return nn.ModuleList(BertLayer(hidden_size, num_heads, intermediate_size, dropout, layer_norm_eps,
                                           cross_attention=True) for _ in range(num_layers))

        self.text_layers = stack()
        self.image_layers = stack()
        self.apply(init_bert_weights)  # METER: objectives.init_weights on both stacks

    def forward(self, text: Tensor, text_padding: Tensor | None, image: Tensor,
                image_padding: Tensor | None) -> tuple[Tensor, Tensor]:
        """Fuse the two streams.

        Args:
            text: ``[B, T, D]`` text states.
            text_padding: bool ``[B, T]``, True on padding tokens; None: none.
            image: ``[B, N, D]`` image states.
            image_padding: bool ``[B, N]``, True on padding; None: none.

        Returns:
            ``(text [B, T, D], image [B, N, D])`` after the last layer.
        """
        x, y = text, image
        for text_layer, image_layer in zip(self.text_layers, self.image_layers):
            # both from the previous (x, y): a simultaneous update, as METER's infer()
            x, y = text_layer(x, text_padding, y, image_padding), image_layer(y, image_padding, x, text_padding)
        return x, y


@FUSIONS.register()
def co_attention(hidden_size: Annotated[int, Range(ge=1)] = 768, num_layers: Annotated[int, Range(ge=1)] = 6,
                 num_heads: Annotated[int, Range(ge=1)] = 12, intermediate_size: Annotated[int, Range(ge=1)] = 3072,
                 dropout: Annotated[float, Range(ge=0, lt=1)] = 0.1,
                 layer_norm_eps: Annotated[float, Range(gt=0)] = 1e-12) -> CoAttention:
    """Co-attention: per stream, M layers of self-attention + cross-attention + FFN (METER Fig. 2a).

    Args:
        hidden_size: width of both streams (METER: 768). A model passes its own.
        num_layers: layers per stream, ``M_co`` (METER: 6, 12 layers in all; 113,421,312 parameters).
        num_heads: attention heads (METER: 12).
        intermediate_size: FFN width (METER: 3072).
        dropout: attention and hidden dropout (METER: 0.1).
        layer_norm_eps: LayerNorm epsilon.
    """
    if hidden_size % num_heads:
        raise ConfigError(f"{hidden_size} is not a multiple of num_heads={num_heads}", key="hidden_size")
    return CoAttention(hidden_size, num_layers, num_heads, intermediate_size, dropout, layer_norm_eps)
