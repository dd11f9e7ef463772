"""MAE-style random masking: hide a share of the tokens from the encoder, restore the order for a decoder.

MAE (He et al., Sec. 3, ``models_mae.py``: ``random_masking``) hides patches by per-sample random
noise: the patches with the largest noise are masked, the encoder runs on the rest only, and a
decoder puts them back in order with a learned [MASK] token in every hidden slot. MoMo (Sec. 3.1,
3.3) does this for every modality: image patches (75%), text tokens (15%, or 75% of each modality in
cross-modal masking), always keeping the [CLS] token.

Texts of one batch have different lengths, so the number of visible tokens differs between samples.
Three steps handle that:

* ``choose_hidden``: which candidate tokens of each sample are hidden. Of ``n`` candidates a sample
  keeps ``floor(n * (1 - ratio))`` (MAE's ``len_keep = int(L * (1 - mask_ratio))``, so at 75% of 196
  patches exactly 147 are hidden, and at 15% of 12 tokens 2) and hides the rest: the candidates with
  the largest noise, as MAE (``argsort`` of the noise, the first ``len_keep`` kept). Non-candidates
  ([CLS], [SEP], padding) are never hidden.
* ``drop_hidden``: the visible tokens of each sample, in their original order, left-aligned in a
  ``[B, K, D]`` tensor (``K`` the most visible tokens of any sample); the slots past a sample's own
  count are *fillers*, zeroed and flagged so the encoder never attends to them. Keeping the original
  order instead of MAE's shuffled order changes nothing for an encoder whose positions are already
  added (attention without a causal mask is permutation-equivariant) and makes the layout readable.
* ``restore``: a decoder's ``[B, L, D']`` sequence: each visible slot's output back at its position,
  the mask token everywhere else (hidden tokens and padding), MAE's ``ids_restore`` gather written as
  a scatter.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# float64 products such as 20 * (1 - 0.15) can land just under the integer; the floor must not lose it
_FLOOR_SLACK = 1e-9


def choose_hidden(candidates: Tensor, ratio: float, noise: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
    """Pick the tokens to hide: per sample, all but ``floor(n * (1 - ratio))`` of its ``n`` candidates.

    Args:
        candidates: bool ``[B, L]``, True on tokens that may be hidden.
        ratio: the share to hide, in ``[0, 1)``.
        noise: float ``[B, L]``; the candidates with the largest noise are hidden (MAE). None: uniform
            noise from ``generator`` (a test or a caller passes its own to fix the choice).
        generator: source of the noise when ``noise`` is None (on the candidates' device).

    Returns:
        bool ``[B, L]``, True on the hidden tokens (a subset of the candidates).
    """
    if candidates.dim() != 2 or candidates.dtype != torch.bool:
        raise ValueError(f"candidates must be a bool [B, L] tensor, got {candidates.dtype} {tuple(candidates.shape)}")
    if not 0 <= ratio < 1:
        raise ValueError(f"the masking ratio must be in [0, 1), got {ratio}")
    if noise is None:
        noise = torch.rand(candidates.shape, generator=generator, device=candidates.device)
    elif noise.shape != candidates.shape:
        raise ValueError(f"noise {tuple(noise.shape)} must have the candidates' shape {tuple(candidates.shape)}")
    count = candidates.sum(dim=1)  # [B]
    keep = torch.floor(count.double() * (1 - ratio) + _FLOOR_SLACK).long()  # [B] candidates that stay visible
    score = noise.float().masked_fill(~candidates, float("inf"))  # non-candidates rank last
    order = score.argsort(dim=1, stable=True)  # [B, L] candidates by ascending noise first
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return candidates & (rank >= keep[:, None])


@dataclass
class VisibleTokens:
    """The encoder's input after masking, and what a decoder needs to put the sequence back.

    Attributes:
        tokens: ``[B, K, D]``, each sample's visible tokens in their original order, zeros in the fillers.
        padding: bool ``[B, K]``, True on the fillers (the encoder's key-padding mask).
        index: long ``[B, K]``, the position in the full sequence of each slot (fillers: 0, unused).
        length: ``L``, the full sequence length.
    """

    tokens: Tensor
    padding: Tensor
    index: Tensor
    length: int


def drop_hidden(tokens: Tensor, visible: Tensor) -> VisibleTokens:
    """Keep the ``visible`` tokens of each sample (``[B, L, D]``, bool ``[B, L]``): see ``VisibleTokens``.

    ``visible`` is usually ``valid & ~hidden`` (padding is dropped as well; it comes back in ``restore``).
    """
    if visible.shape != tokens.shape[:2]:
        raise ValueError(f"visible {tuple(visible.shape)} must match the tokens' [B, L] {tuple(tokens.shape[:2])}")
    b, length = visible.shape
    counts = visible.sum(dim=1)  # [B]
    width = max(int(counts.max()), 1) if b else 1
    positions = torch.arange(length, device=tokens.device)
    # visible positions first, in order: sort by (hidden?, position)
    order = (positions + (~visible).long() * length).argsort(dim=1)[:, :width]  # [B, K]
    padding = torch.arange(width, device=tokens.device)[None, :] >= counts[:, None]  # [B, K]
    index = order.masked_fill(padding, 0)
    kept = torch.gather(tokens, 1, index[..., None].expand(-1, -1, tokens.shape[-1]))  # [B, K, D]
    kept = kept.masked_fill(padding[..., None], 0.0)
    return VisibleTokens(kept, padding, index, length)


def restore(encoded: Tensor, visible: VisibleTokens, mask_token: Tensor) -> Tensor:
    """The full ``[B, L, D']`` sequence: visible slots back at their positions, ``mask_token`` ``[D']`` elsewhere.

    Args:
        encoded: ``[B, K, D']``, the (decoder-width) outputs of the visible slots.
        visible: the ``drop_hidden`` result the encoder ran on.
        mask_token: ``[D']`` (or broadcastable to it), MAE's learned [MASK] embedding.
    """
    b, k, width = encoded.shape
    full = mask_token.reshape(1, 1, width).to(encoded.dtype).expand(b, visible.length, width)
    index = visible.index.masked_fill(visible.padding, visible.length)  # fillers go to a spare column
    spare = torch.cat([full, full[:, :1]], dim=1)  # [B, L + 1, D']
    spare = spare.scatter(1, index[..., None].expand(-1, -1, width), encoded)
    return spare[:, : visible.length]
