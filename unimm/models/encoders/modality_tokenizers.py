"""Modality tokenizers: an image or token ids -> a sequence of ``D``-wide tokens (ViT-BERT Sec. 3.1.1).

They turn raw inputs into the ``z^0`` that a shared transformer (``shared_transformer``) encodes;
ids come from a data tokenizer (``bert_tokenizer``), these are the learned embeddings. The design
keeps modality-specific parameters minimal: one linear patch projection, or embedding tables.

* ``image_tokenizer`` (Eq. 1): ``[v_cls, v_1 V, ..., v_N V] + V^pos``, the ViT patch embedding
  (16x16 at paper size), a learned [CLS] token and a learned position table of ``1 + N`` rows,
  then dropout. The table is sized for ``image_size``; a checkpoint trained at another resolution
  is loaded with ``checkpoint.init_resize`` (2-D bicubic, [CLS] row kept:
  ``unimm.modules.pos_embed.resize_pos_embed``). 742,656 parameters at 224 and width 768.
* ``text_tokenizer`` (Eq. 2): ``[t_cls, t_1 T, ..., t_M T] + T^pos + T^seg``, word, learned
  position and segment embeddings over a WordPiece vocabulary, then dropout. Eq. 2 has no
  LayerNorm, and the paper's count (23,434,752 for a 30,000 vocabulary, 512 positions, width 768;
  REFERENCE_NOTES 3.1) has none: ``embedding_norm=False`` by default. BERT's embedding LayerNorm
  still has a home when BERT weights are loaded: it becomes the first block's pre-attention
  LayerNorm (``key_maps.bert_to_parts``), which is where a pre-LN stack normalises the embeddings.
  ``embedding_norm=True`` adds BERT's LayerNorm here instead (it then starts at identity).

Both take ``modality_embedding``: a learned vector added to every token of that modality. The paper
adds none ("it brings no improvement", Sec. 3.1.1), so it is off by default.

``image_tokenizer(positions="sincos")`` holds MAE's fixed 2-D sin-cos table instead of a learned one
(MoMo's image input, REFERENCE_NOTES 2.1): a parameter that is not trained (``requires_grad=False``,
as MAE stores its ``pos_embed``), so an MAE checkpoint's table loads into it and counts as MAE counts.
"""
from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.modules.patch_embed import PatchEmbed
from unimm.modules.pos_embed import sincos_pos_embed_2d
from unimm.registry import ENCODERS


def trunc_normal(tensor: Tensor, std: float) -> None:
    if tensor.device.type != "meta":
        nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)


class ImageTokenizer(nn.Module):
    """Patches -> ``[CLS]`` + patch tokens with learned positions (Eq. 1).

    Names follow timm's ViT (``cls_token``, ``pos_embed``, ``patch_embed.proj``) so its weights load
    by a prefix rename.

    Args:
        hidden_size: ``D``.
        image_size: the resolution the position table is made for (224 at pre-training).
        patch_size: ``P`` (16).
        in_channels: ``C``.
        dropout: after the positions are added (ViT's ``pos_drop``; 0.1 in the paper's "all layers").
        modality_embedding: add a learned image-type vector to every token (off: the paper's choice).
        init_std: std of the truncated-normal init of the position table and the [CLS] token.
        positions: ``learned`` (ViT, ViT-BERT) or ``sincos``, MAE's fixed table (not trained).
    """

    def __init__(self, hidden_size: int, image_size: int = 224, patch_size: int = 16, in_channels: int = 3,
                 dropout: float = 0.1, modality_embedding: bool = False, init_std: float = 0.02,
                 positions: str = "learned") -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.patch_embed = PatchEmbed(image_size, patch_size, in_channels, hidden_size)
        self.grid = self.patch_embed.grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.patch_embed.num_patches, hidden_size))
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, hidden_size)) if modality_embedding else None
        self.drop = nn.Dropout(dropout)
        trunc_normal(self.cls_token, init_std)
        if positions == "sincos":
            self.pos_embed.requires_grad_(False)
            if self.pos_embed.device.type != "meta":
                self.pos_embed.data.copy_(sincos_pos_embed_2d(hidden_size, self.grid, num_prefix_tokens=1))
        elif positions == "learned":
            trunc_normal(self.pos_embed, init_std)
        else:
            raise ValueError(f"positions must be 'learned' or 'sincos', got {positions!r}")

    def forward(self, image: Tensor) -> Tensor:
        """``image`` ``[B, C, H, W]`` at the table's resolution -> tokens ``[B, 1 + N, D]`` ([CLS] first).

        Raises:
            ValueError: when ``H x W`` gives another patch grid than the position table's.
        """
        grid = self.patch_embed.grid_size(image.shape[-2], image.shape[-1])
        if grid != self.grid:
            raise ValueError(f"images of {image.shape[-2]}x{image.shape[-1]} give a {grid[0]}x{grid[1]} patch grid, "
                             f"but the position table is for {self.grid[0]}x{self.grid[1]}; resize the images to "
                             "the model's image_size, or build the model at this size and load the weights with "
                             "checkpoint.init_resize")
        patches = self.patch_embed(image)  # [B, N, D]
        cls = self.cls_token.expand(patches.shape[0], -1, -1)  # [B, 1, D]
        tokens = torch.cat([cls, patches], dim=1) + self.pos_embed  # [B, 1+N, D]
        if self.modality_embedding is not None:
            tokens = tokens + self.modality_embedding
        return self.drop(tokens)


class TextTokenizer(nn.Module):
    """Token ids -> word + position + segment embeddings (Eq. 2); ids start with [CLS].

    Names follow BERT's embeddings (``word_embeddings``, ``position_embeddings``,
    ``token_type_embeddings``, ``norm`` for its LayerNorm).

    Args:
        vocab_size: rows of the word table (30,000 in the paper).
        hidden_size: ``D``.
        max_positions: rows of the position table, the longest input (512).
        type_vocab_size: segments (2: sentence A and B).
        dropout: on the summed embeddings.
        embedding_norm: BERT's embedding LayerNorm before the dropout (off: Eq. 2; see the module docstring).
        layer_norm_eps: that LayerNorm's epsilon (BERT: 1e-12).
        modality_embedding: add a learned text-type vector to every token (off: the paper's choice).
        init_std: std of the truncated-normal init of the tables (BERT's 0.02).
    """

    def __init__(self, vocab_size: int, hidden_size: int, max_positions: int = 512, type_vocab_size: int = 2,
                 dropout: float = 0.1, embedding_norm: bool = False, layer_norm_eps: float = 1e-12,
                 modality_embedding: bool = False, init_std: float = 0.02) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.max_positions = max_positions
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size)
        self.position_embeddings = nn.Embedding(max_positions, hidden_size)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if embedding_norm else None
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, hidden_size)) if modality_embedding else None
        self.drop = nn.Dropout(dropout)
        for table in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings):
            trunc_normal(table.weight, init_std)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """``input_ids`` long ``[B, T]``, ``token_type_ids`` long ``[B, T]`` (None: all 0) -> ``[B, T, D]``.

        Token ``t`` gets position row ``t`` (absolute, from 0), as BERT.
        """
        length = input_ids.shape[1]
        if length > self.max_positions:
            raise ValueError(f"a text of {length} tokens is longer than the position table ({self.max_positions} "
                             "rows); lower the data tokenizer's max_length or raise the model's max_positions")
        positions = torch.arange(length, device=input_ids.device)  # [T]
        tokens = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]  # [B, T, D]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        tokens = tokens + self.token_type_embeddings(token_type_ids)
        if self.modality_embedding is not None:
            tokens = tokens + self.modality_embedding
        if self.norm is not None:
            tokens = self.norm(tokens)
        return self.drop(tokens)


Probability = Annotated[float, Range(ge=0, lt=1)]
Positive = Annotated[int, Range(ge=1)]


@ENCODERS.register()
def image_tokenizer(hidden_size: Positive, image_size: Positive = 224, patch_size: Positive = 16,
                    in_channels: Positive = 3, dropout: Probability = 0.1, modality_embedding: bool = False,
                    init_std: Annotated[float, Range(gt=0)] = 0.02,
                    positions: Literal["learned", "sincos"] = "learned") -> ImageTokenizer:
    """ViT-BERT's image tokenizer (Eq. 1): linear patch projection, [CLS], learned positions, dropout.

    Args:
        hidden_size: token width ``D`` (a parent model passes its encoder's).
        image_size: resolution the position table is made for; images must have it.
        patch_size: square patch side ``P``.
        in_channels: image channels.
        dropout: after adding the positions.
        modality_embedding: add a learned modality-type vector (the paper adds none).
        init_std: init std of the position table and the [CLS] token.
        positions: ``learned`` positions, or ``sincos``: MAE's fixed 2-D table (MoMo), not trained;
            ``hidden_size`` must then be a multiple of 4.
    """
    if image_size % patch_size:
        raise ConfigError(f"image_size {image_size} is not a multiple of patch_size {patch_size}", key="image_size")
    if positions == "sincos" and hidden_size % 4:
        raise ConfigError(f"a sin-cos position table needs hidden_size divisible by 4, got {hidden_size}",
                          key="positions")
    return ImageTokenizer(hidden_size, image_size, patch_size, in_channels, dropout, modality_embedding, init_std,
                          positions)


@ENCODERS.register()
def text_tokenizer(vocab_size: Positive, hidden_size: Positive, max_positions: Positive = 512,
                   type_vocab_size: Positive = 2, dropout: Probability = 0.1, embedding_norm: bool = False,
                   layer_norm_eps: Annotated[float, Range(gt=0)] = 1e-12, modality_embedding: bool = False,
                   init_std: Annotated[float, Range(gt=0)] = 0.02) -> TextTokenizer:
    """ViT-BERT's text tokenizer (Eq. 2): word + learned position + segment embeddings, dropout.

    Args:
        vocab_size: the data tokenizer's vocabulary (a parent model passes the datasets').
        hidden_size: token width ``D`` (a parent model passes its encoder's).
        max_positions: longest text.
        type_vocab_size: number of segments.
        dropout: on the summed embeddings.
        embedding_norm: BERT's embedding LayerNorm (not in Eq. 2; a BERT checkpoint's goes to the
            encoder's first block instead, see ``key_maps``).
        layer_norm_eps: its epsilon.
        modality_embedding: add a learned modality-type vector (the paper adds none).
        init_std: init std of the tables.
    """
    return TextTokenizer(vocab_size, hidden_size, max_positions, type_vocab_size, dropout, embedding_norm,
                         layer_norm_eps, modality_embedding, init_std)
