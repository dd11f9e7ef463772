"""A discrete image tokenizer that needs no trained weights: random-projection codes of each patch.

METER's second masked-image objective (Sec. 3.2) predicts the codes DALL-E's discrete VAE gives each
patch. That VAE's weights cannot be had offline, so the embedded benchmark uses a tokenizer that runs
anywhere with the same interface (image -> one code per patch, ``vocab_size``, ``patch_size``): each
patch's pixels, centred and scaled to unit length, are projected on ``bits`` fixed random directions
(a seeded Gaussian matrix), and the signs of the projections are the bits of its code (sign random
projections, a locality-sensitive hash: patches at a small angle share most bits). A patch of one
flat colour has no direction after centring; it gets code 0. A trained tokenizer registered with the
same interface replaces it in the config.
"""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn

from unimm.config.refs import Range
from unimm.registry import ENCODERS

FLAT = 1e-6  # a centred patch shorter than this is flat: code 0 (float64: rounding stays far below)


class RandomProjectionCodes(nn.Module):
    """``image [B, 3, H, W] -> codes [B, (H / p) * (W / p)]`` in row-major patch order, ``2 ** bits`` codes.

    Args:
        patch_size: ``p``, the vision encoder's patch size (the grids must agree).
        bits: bits of a code.
        seed: the seed of the projection matrix (the same codes in every run).
    """

    def __init__(self, patch_size: int, bits: int, seed: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.vocab_size = 2 ** bits
        directions = torch.randn(3 * patch_size * patch_size, bits, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("directions", directions, persistent=False)  # fixed by the seed, not saved
        self.register_buffer("weights", 2 ** torch.arange(bits), persistent=False)

    @torch.no_grad()
    def forward(self, image: Tensor) -> Tensor:
        p = self.patch_size
        if image.shape[-1] % p or image.shape[-2] % p:
            raise ValueError(f"image {tuple(image.shape[-2:])} is not a whole number of {p}-pixel patches")
        patches = nn.functional.unfold(image.double(), kernel_size=p, stride=p).transpose(1, 2)  # [B, N, 3*p*p]
        centred = patches - patches.mean(dim=-1, keepdim=True)
        length = centred.norm(dim=-1, keepdim=True)
        bits = (centred / length.clamp(min=FLAT)) @ self.directions.to(centred) > 0  # [B, N, bits]
        codes = (bits.long() * self.weights).sum(dim=-1)  # [B, N]
        return codes.masked_fill(length[..., 0] < FLAT, 0)


@ENCODERS.register()
def random_projection_codes(patch_size: Annotated[int, Range(ge=1)] = 16, bits: Annotated[int, Range(ge=1, le=16)] = 13,
                            seed: int = 0) -> RandomProjectionCodes:
    """One discrete code per image patch from the signs of fixed random projections (a stand-in for DALL-E's
    dVAE in METER's discrete-code MIM, which cannot be loaded offline).

    Args:
        patch_size: the vision encoder's patch size.
        bits: code bits; the vocabulary has ``2 ** bits`` codes (13: 8192, DALL-E's vocabulary size).
        seed: seed of the projection directions.
    """
    return RandomProjectionCodes(patch_size, bits, seed)
