"""DETR's image encoder: a ResNet backbone, a 1x1 projection and a transformer encoder over the
flattened feature map, optionally with a learned token per task in front (UniT Sec. 3.1, Eq. 1-2)."""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.models.encoders.detr_weights import load_image_encoder_weights
from unimm.models.encoded_sequence import EncodedSequence
from unimm.modules.backbone import BackboneName, ConvBackbone
from unimm.modules.position_encoding import PositionEmbeddingSine
from unimm.modules.task_tokens import TaskTokens
from unimm.modules.transformer_encoder import TransformerEncoder
from unimm.registry import ENCODERS


class DetrImageEncoder(nn.Module):
    """``h^v = E_v(P_{b->e}(B(I)), w_v^task)``.

    The backbone ``B`` gives a feature map ``x^v`` (Eq. 1); ``P_{b->e}`` (``input_proj``) maps it
    to the encoder width; it is flattened, the task token is prefixed, DETR's encoder runs with
    sine position encodings computed from the pixel mask, and the token is stripped (Eq. 2).

    Args:
        backbone: the convolutional backbone.
        encoder: the transformer encoder ``E_v`` of width ``D``.
        task_tokens: per-dataset tokens, or None to run without a task embedding.
    """

    def __init__(self, backbone: ConvBackbone, encoder: TransformerEncoder, task_tokens: TaskTokens | None) -> None:
        super().__init__()
        hidden = encoder.hidden_size
        if hidden % 2:
            raise ConfigError(f"{hidden} must be even (sine position encoding splits it between y and x)",
                              key="hidden_size")
        self.backbone = backbone
        self.input_proj = nn.Conv2d(backbone.num_channels, hidden, kernel_size=1)
        self.position = PositionEmbeddingSine(hidden // 2, normalize=True)
        self.encoder = encoder
        self.task_tokens = task_tokens

    @property
    def hidden_size(self) -> int:
        return self.encoder.hidden_size

    def forward(self, image: Tensor, pixel_mask: Tensor | None, dataset_name: str | None = None) -> EncodedSequence:
        """Encode a batch of images.

        Args:
            image: ``[B, 3, H, W]`` normalised pixels, zero-padded.
            pixel_mask: ``[B, H, W]`` (bool or 0/1), True / 1 on real pixels; None = no padding.
            dataset_name: selects the task token (needed only with task tokens).

        Returns:
            ``EncodedSequence`` with ``L = h * w`` positions (the feature map, row-major):
            hidden ``[B, L, D]``, padding_mask ``[B, L]``, pos ``[B, L, D]``.
        """
        if image.dim() != 4:
            raise ValueError(f"image must be [B, 3, H, W], got shape {tuple(image.shape)}")
        if pixel_mask is None:
            padding = torch.zeros(image.shape[0], *image.shape[-2:], dtype=torch.bool, device=image.device)
        else:
            padding = ~pixel_mask.bool()
        features, padding = self.backbone(image, padding)  # [B, C, h, w], [B, h, w]
        pos = self.position(padding).to(features.dtype)  # [B, D, h, w]
        x = self.input_proj(features).flatten(2).transpose(1, 2)  # [B, h*w, D]
        pos = pos.flatten(2).transpose(1, 2)  # [B, h*w, D]
        padding = padding.flatten(1)  # [B, h*w]
        if self.task_tokens is None:
            return EncodedSequence(self.encoder(x, padding, pos), padding, pos)
        x_t, padding_t, pos_t = self.task_tokens.prepend(x, padding, pos, dataset_name)  # [B, 1+h*w, D]
        hidden = TaskTokens.strip(self.encoder(x_t, padding_t, pos_t))  # [B, h*w, D]
        return EncodedSequence(hidden, padding, pos)


@ENCODERS.register()
def detr_image_encoder(
    task_names: Sequence[str] | None = None,
    backbone: BackboneName = "resnet50",
    dilation: bool = False,
    frozen_batch_norm: bool = True,
    trainable_stages: int = 3,
    hidden_size: int = 256,
    num_layers: int = 6,
    num_heads: int = 8,
    ffn_size: int = 2048,
    dropout: float = 0.1,
    pretrained_path: str | None = None,
    pretrained_format: Literal["torchvision", "detr"] = "detr",
) -> DetrImageEncoder:
    """ResNet + DETR transformer encoder, with a learned token per task when ``task_names`` are given.

    Args:
        task_names: one learned token ``w_v^task`` per name (UniT Eq. 2), prefixed to the
            sequence and stripped from the output; None = no task tokens (plain DETR). A model
            with per-dataset tasks passes its dataset names.
        backbone: ``resnet50`` (paper), ``resnet18`` or ``tiny`` (tests); random init.
        dilation: dilate the last stage (C5), as UniT does (DETR-DC5).
        frozen_batch_norm: keep BatchNorm frozen (DETR); False trains it.
        trainable_stages: backbone stages that learn, counted from layer4 (DETR: 3).
        hidden_size: encoder width ``d_v^e`` (paper: 256).
        num_layers: encoder layers ``N_v`` (paper: 6).
        num_heads: attention heads (paper: 8).
        ffn_size: feed-forward width (paper: 2048).
        dropout: dropout rate (paper: 0.1).
        pretrained_path: a local checkpoint to initialise from (never downloaded).
        pretrained_format: ``torchvision`` (a ResNet state dict: the backbone) or ``detr``
            (a DETR checkpoint: backbone, input projection and transformer encoder).
    """
    trunk = ConvBackbone(backbone, dilation=dilation, frozen_batch_norm=frozen_batch_norm,
                         trainable_stages=trainable_stages)
    encoder = TransformerEncoder(hidden_size, num_layers, num_heads, ffn_size, dropout)
    tokens = None if task_names is None else TaskTokens(list(task_names), hidden_size)
    module = DetrImageEncoder(trunk, encoder, tokens)
    if pretrained_path:
        load_image_encoder_weights(module, pretrained_path, pretrained_format)
    return module
