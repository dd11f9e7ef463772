"""Masked image modelling: pixel regression on the hidden patches (MAE; MoMo Eq. 1).

``patchify`` lays an image out as MAE's ``patchify`` does (``models_mae.py``): patch ``(i, j)`` in
row-major order, each patch flattened as ``(row in patch, column in patch, channel)``, so the
prediction layer of an MAE checkpoint (``decoder_pred``) produces exactly these vectors.

``masked_pixel_loss`` is MAE's ``forward_loss``: the mean squared error per patch, averaged over the
hidden patches only. With ``norm_pix`` each target patch is first normalised by its own mean and
variance (``(x - mean) / sqrt(var + 1e-6)``, the variance unbiased as ``Tensor.var``): MAE's
``norm_pix_loss=True``, with which the public MAE weights were trained (MoMo stage 1 reuses them,
REFERENCE_NOTES 2.2), so reconstructions of such a model are in per-patch normalised units.
"""
from __future__ import annotations

import torch
from torch import Tensor

NORM_PIX_EPS = 1e-6  # MAE's


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """``[B, C, H, W]`` -> ``[B, (H/p)(W/p), p * p * C]`` in MAE's layout (module docstring)."""
    b, c, h, w = images.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"images of {h}x{w} do not split into {p}x{p} patches")
    x = images.reshape(b, c, h // p, p, w // p, p)
    x = torch.einsum("bchpwq->bhwpqc", x)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(patches: Tensor, patch_size: int, grid: tuple[int, int], channels: int = 3) -> Tensor:
    """The inverse of ``patchify``: ``[B, h * w, p * p * C]`` -> ``[B, C, h * p, w * p]``."""
    b = patches.shape[0]
    h, w = grid
    p = patch_size
    x = patches.reshape(b, h, w, p, p, channels)
    x = torch.einsum("bhwpqc->bchpwq", x)
    return x.reshape(b, channels, h * p, w * p)


def pixel_targets(images: Tensor, patch_size: int, norm_pix: bool) -> Tensor:
    """The regression targets ``[B, N, p * p * C]``: raw patches, or each normalised by its own statistics."""
    target = patchify(images.float(), patch_size)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + NORM_PIX_EPS).sqrt()
    return target


def masked_pixel_loss(pred: Tensor, images: Tensor, hidden: Tensor, patch_size: int, norm_pix: bool = True) -> Tensor:
    """MoMo Eq. 1 as MAE computes it: per-patch MSE, mean over the hidden patches only.

    Args:
        pred: ``[B, N, p * p * C]``, the decoder's pixels for every patch (visible ones are ignored).
        images: ``[B, C, H, W]``, the encoder's input images.
        hidden: bool ``[B, N]``, True on the patches the encoder did not see.
        patch_size: ``p``.
        norm_pix: normalise each target patch by its mean and variance (MAE's ``norm_pix_loss``).

    Returns:
        A float32 scalar; 0 (with a graph) when no patch is hidden.
    """
    target = pixel_targets(images, patch_size, norm_pix)
    if pred.shape != target.shape or hidden.shape != target.shape[:2]:
        raise ValueError(f"pixel predictions {tuple(pred.shape)} and hidden {tuple(hidden.shape)} do not match "
                         f"the images' patches {tuple(target.shape)}")
    per_patch = ((pred.float() - target) ** 2).mean(dim=-1)  # [B, N]
    weight = hidden.float()
    return (per_patch * weight).sum() / weight.sum().clamp(min=1.0)
