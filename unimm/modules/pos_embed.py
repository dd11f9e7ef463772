"""Absolute position tables of a ViT: 2-D resizing to another patch grid, and MAE's fixed sin-cos table.

Both functions work on tables laid out as every ViT in unimm lays them out: ``[1, P + H * W, D]``, the
``P`` prefix rows first ([CLS], and e.g. a distillation token), then one row per patch in row-major order
(patch ``(i, j)``, row ``i`` of ``H`` and column ``j`` of ``W``, at ``P + i * W + j``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_pos_embed(pos_embed: Tensor, new_grid: tuple[int, int], num_prefix_tokens: int = 1,
                     old_grid: tuple[int, int] | None = None) -> Tensor:
    """Interpolate a position table to another patch grid, as the METER / MAE / ViT helpers do.

    The ``H x W`` grid rows are resized in 2-D with ``F.interpolate(mode="bicubic",
    align_corners=False, antialias=False)`` (cubic convolution with ``a = -0.75``, edges replicated);
    the ``P`` prefix rows are kept unchanged. This is METER's ``adapt_position_encoding`` (used to
    fine-tune at 288 / 384 / 576 after pre-training at 224, REFERENCE_NOTES 1.3) and MAE's / DeiT's
    ``interpolate_pos_embed`` (ViT-BERT's 224 -> 384 fine-tuning, REFERENCE_NOTES 3.1), here for
    non-square grids as well.

    timm's ``resample_abs_pos_embed`` gives *different numbers*: it defaults to ``antialias=True``,
    which PyTorch implements with a separate kernel (``a = -0.5``, widened by the scale factor when
    downsampling), so its table differs from METER's when downsampling and, by the other cubic
    coefficient, when upsampling too (REFERENCE_NOTES 1.5 item 6). Use this function to load METER /
    MAE checkpoints at another resolution.

    Args:
        pos_embed: ``[1, P + H_old * W_old, D]`` (or ``[P + H_old * W_old, D]``, as CLIP's
            ``positional_embedding``; the result then has that rank too).
        new_grid: ``(H_new, W_new)``, patches per column and per row at the new resolution.
        num_prefix_tokens: ``P``, rows before the grid rows that are kept as they are.
        old_grid: ``(H_old, W_old)``; None for a square grid, whose side is taken from the row count.

    Returns:
        ``[1, P + H_new * W_new, D]`` in ``pos_embed``'s dtype (interpolated in float32 at least);
        ``pos_embed`` itself when the grid does not change.

    Raises:
        ValueError: when the row count does not fit ``old_grid`` (or no square grid), or a grid side
            is not positive.
    """
    two_d = pos_embed.dim() == 2
    table = pos_embed.unsqueeze(0) if two_d else pos_embed  # [1, P + H*W, D]
    if table.dim() != 3 or table.shape[0] != 1:
        raise ValueError(f"a position table is [1, P + H*W, D] or [P + H*W, D], got {tuple(pos_embed.shape)}")
    num_grid_rows = table.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = math.isqrt(max(num_grid_rows, 0))
        if side * side != num_grid_rows:
            raise ValueError(f"the table has {num_grid_rows} grid rows after {num_prefix_tokens} prefix rows, "
                             "not a square grid; pass old_grid=(H, W)")
        old_grid = (side, side)
    old_h, old_w = (int(s) for s in old_grid)
    new_h, new_w = (int(s) for s in new_grid)
    if min(old_h, old_w, new_h, new_w) <= 0:
        raise ValueError(f"grid sides must be positive, got old_grid={old_grid}, new_grid={new_grid}")
    if old_h * old_w != num_grid_rows:
        raise ValueError(f"old_grid={old_grid} has {old_h * old_w} patches but the table has {num_grid_rows} "
                         f"grid rows after {num_prefix_tokens} prefix rows")
    if (old_h, old_w) == (new_h, new_w):
        return pos_embed
    dim = table.shape[2]
    prefix, grid = table[:, :num_prefix_tokens], table[:, num_prefix_tokens:]  # [1, P, D], [1, H*W, D]
    work_dtype = torch.promote_types(grid.dtype, torch.float32)  # bicubic needs float32 on CPU
    grid = grid.to(work_dtype).reshape(1, old_h, old_w, dim).permute(0, 3, 1, 2)  # [1, D, H, W]
    grid = F.interpolate(grid, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_h * new_w, dim).to(table.dtype)  # [1, H'*W', D]
    resized = torch.cat([prefix, grid], dim=1)  # [1, P + H'*W', D]
    return resized[0] if two_d else resized


def sincos_pos_embed_2d(dim: int, grid: tuple[int, int], num_prefix_tokens: int = 1) -> Tensor:
    """MAE's fixed 2-D sine-cosine position table (MAE ``util/pos_embed.py``; MoMo's image positions).

    With ``d = dim / 2`` channels per axis and ``omega_k = 1 / 10000^(2k / d)`` for
    ``k = 0 .. d/2 - 1``, patch ``(i, j)`` (row ``i``, column ``j``) gets

        ``[sin(j omega), cos(j omega), sin(i omega), cos(i omega)]``  (each block ``d/2`` wide)

    i.e. the **first half encodes the column** ``j`` and the second half the row ``i``: MAE builds its
    grid with ``meshgrid(w, h)``, so the half it names ``emb_h`` holds the column coordinates. Keeping
    this order matters for MAE checkpoints, whose stored table is this one. Within each half the sines
    come first, then the cosines (concatenated, not interleaved as in DETR's encoding). The prefix
    rows are zeros, as MAE's [CLS] row.

    Args:
        dim: ``D``, a multiple of 4.
        grid: ``(H, W)``, patches per column and per row.
        num_prefix_tokens: ``P``, zero rows before the grid rows.

    Returns:
        float32 ``[1, P + H * W, D]``; computed in float64 (MAE computes in float32, so values agree
        to about 1e-6).
    """
    if dim % 4 != 0:
        raise ValueError(f"a 2-D sin-cos table needs dim divisible by 4 (sin and cos per axis), got {dim}")
    height, width = (int(s) for s in grid)
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # [D/4] = 1/10000^(2k/d)
    rows = torch.arange(height, dtype=torch.float64).repeat_interleave(width)  # [H*W], i of each patch
    cols = torch.arange(width, dtype=torch.float64).repeat(height)  # [H*W], j of each patch

    def axis(pos: Tensor) -> Tensor:  # [H*W] -> [H*W, D/2]
        angles = pos[:, None] * omega[None, :]  # [H*W, D/4]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    table = torch.cat([axis(cols), axis(rows)], dim=1)  # [H*W, D]: column half first, as MAE
    table = torch.cat([torch.zeros(num_prefix_tokens, dim, dtype=torch.float64), table])  # [P + H*W, D]
    return table.float().unsqueeze(0)
