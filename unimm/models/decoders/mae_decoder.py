"""MAE's shallow decoder, for image patches, text tokens or their concatenation (MAE Sec. 3; MoMo Sec. 3.3).

The encoder ran on the visible tokens only (``unimm.modules.token_masking``). The decoder

1. projects them to its own width (``decoder_embed``, MAE's ``Linear(768 -> 512)``),
2. puts them back in order with its learned ``mask_token`` in every hidden or padded slot
   (``token_masking.restore``),
3. adds its own positions per segment of the sequence: for an image segment ([CLS] + patches) MAE's
   fixed 2-D sin-cos table (``decoder_pos_embed``, not trained), for a text segment a learned table
   (MAE has no text; BERT's learned positions [gap, REFERENCE_NOTES 2.1]), and, when the decoder
   serves both modalities, a learned modality-type vector per segment,
4. runs pre-LN blocks (MAE: 8 blocks, width 512, 16 heads, MLP 2048, no dropout) and a final
   LayerNorm, and
5. predicts: ``pixel_head`` (MAE's ``decoder_pred``, ``Linear(512 -> p * p * C)``) for image patches;
   ``text_head`` for text tokens: BERT's MLM head, tied to the encoder-side word embeddings when the
   model ties them (MoMo Sec. 3.3: "token embedding weights and the language modeling output head
   weights are tied"). The widths differ (512 vs 768), so the tied head first maps
   ``Linear(512 -> 768) + GELU + LN`` and then multiplies by the 768-wide table (REFERENCE_NOTES 2.1's
   recommendation; ``unimm.models.heads.mlm_head``).

Text padding stays out of attention (a key-padding mask over the restored sequence). Linear weights
start Xavier-uniform and the mask token normal(0.02), as MAE's ``initialize_weights``. At MAE's size
the decoder body (embed, mask token, blocks, norm) and a 16x16x3 pixel head hold 26.11M parameters
(REFERENCE_NOTES 2.1).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from unimm.models.encoders.shared_transformer import PreLNBlock
from unimm.models.heads.mlm_head import MLMHead
from unimm.modules.pos_embed import sincos_pos_embed_2d
from unimm.modules.token_masking import VisibleTokens, restore

MODALITIES = ("image", "text")


class MaskedDecoder(nn.Module):
    """Reconstruct hidden tokens from the encoder's visible ones (module docstring).

    Args:
        input_size: the encoder's width.
        hidden_size: the decoder's width (MAE: 512).
        num_layers: pre-LN blocks (MAE: 8).
        num_heads: attention heads (MAE: 16).
        mlp_size: the blocks' MLP width (MAE: 4 x 512).
        modalities: what it reconstructs, ``image`` and / or ``text``.
        image_grid: ``(h, w)`` patches of an image (with ``image``).
        patch_dim: ``p * p * C``, the pixel head's outputs (with ``image``).
        vocab_size: the text head's outputs (with ``text``).
        max_text_positions: rows of the text position table (with ``text``).
        tied_embedding: the ``[V, D_emb]`` word embedding the text head shares (None: an untied head
            of the decoder's width).
        layer_norm_eps: every LayerNorm's epsilon (MAE: 1e-6).
    """

    def __init__(self, input_size: int, hidden_size: int = 512, num_layers: int = 8, num_heads: int = 16,
                 mlp_size: int = 2048, modalities: Sequence[str] = ("image",), image_grid: tuple[int, int] | None = None,
                 patch_dim: int | None = None, vocab_size: int | None = None, max_text_positions: int | None = None,
                 tied_embedding: nn.Embedding | None = None, layer_norm_eps: float = 1e-6) -> None:
        super().__init__()
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown or not modalities:
            raise ValueError(f"a decoder reconstructs 'image' and / or 'text', got {list(modalities)}")
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        self.hidden_size = hidden_size
        self.decoder_embed = nn.Linear(input_size, hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        if "image" in self.modalities:
            if image_grid is None or patch_dim is None:
                raise ValueError("an image decoder needs image_grid and patch_dim")
            table = sincos_pos_embed_2d(hidden_size, image_grid, num_prefix_tokens=1)
            self.image_pos = nn.Parameter(table, requires_grad=False)  # MAE's fixed decoder_pos_embed
            self.pixel_head = nn.Linear(hidden_size, patch_dim)
        if "text" in self.modalities:
            if vocab_size is None or max_text_positions is None:
                raise ValueError("a text decoder needs vocab_size and max_text_positions")
            self.text_pos = nn.Embedding(max_text_positions, hidden_size)
            width = hidden_size if tied_embedding is None else tied_embedding.weight.shape[1]
            self.text_head = MLMHead(vocab_size, hidden_size=width, input_size=hidden_size,
                                     tied_embedding=tied_embedding)
        self.modality_embed = nn.Embedding(2, hidden_size) if len(self.modalities) == 2 else None
        self.blocks = nn.ModuleList(PreLNBlock(hidden_size, num_heads, mlp_size, 0.0, 0.0, layer_norm_eps)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self._init_weights(tied_embedding)

    def _init_weights(self, tied: nn.Embedding | None) -> None:
        """MAE: Xavier-uniform linear weights, zero biases, mask token normal(0.02); the tied table untouched."""
        shared = None if tied is None else tied.weight
        for module in self.modules():
            if isinstance(module, nn.Linear) and module.weight is not shared and module.weight.device.type != "meta":
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if self.mask_token.device.type != "meta":
            nn.init.normal_(self.mask_token, std=0.02)
            if "text" in self.modalities:
                nn.init.normal_(self.text_pos.weight, std=0.02)
            if self.modality_embed is not None:
                nn.init.normal_(self.modality_embed.weight, std=0.02)

    def forward(self, encoded: Tensor, visible: VisibleTokens, segments: Sequence[tuple[str, int]],
                padding: Tensor | None = None) -> list[Tensor]:
        """Decode a restored sequence made of ``segments``.

        Args:
            encoded: ``[B, K, D]``, the encoder's outputs on ``visible.tokens``.
            visible: what ``drop_hidden`` returned for the full sequence.
            segments: ``(modality, length)`` in sequence order, lengths summing to ``visible.length``;
                an image segment is its [CLS] plus its patches.
            padding: bool ``[B, L]``, True on padding of the full sequence (kept out of attention).

        Returns:
            The decoded states ``[B, length, hidden_size]`` of each segment, in order (apply
            ``pixel_head`` / ``text_head`` to them).
        """
        if sum(length for _, length in segments) != visible.length:
            raise ValueError(f"segments {list(segments)} do not add up to the sequence length {visible.length}")
        x = restore(self.decoder_embed(encoded), visible, self.mask_token)  # [B, L, D']
        parts, start = [], 0
        for kind, length in segments:
            if kind not in self.modalities:
                raise ValueError(f"this decoder reconstructs {list(self.modalities)}, not {kind}")
            part = x[:, start:start + length]
            if kind == "image":
                if length != self.image_pos.shape[1]:
                    raise ValueError(f"an image segment of {length} tokens, but the decoder's grid has "
                                     f"{self.image_pos.shape[1]} ([CLS] + patches)")
                part = part + self.image_pos
            else:
                part = part + self.text_pos(torch.arange(length, device=x.device))[None]
            if self.modality_embed is not None:
                part = part + self.modality_embed.weight[MODALITIES.index(kind)]
            parts.append(part)
            start += length
        x = torch.cat(parts, dim=1)
        for block in self.blocks:
            x = block(x, padding)
        x = self.norm(x)
        return list(x.split([length for _, length in segments], dim=1))
