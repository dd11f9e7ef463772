"""Position tables: METER/MAE's bicubic resize (not timm's antialiased one) and MAE's 2-D sin-cos table."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed

from unimm.modules.pos_embed import resize_pos_embed, sincos_pos_embed_2d

# PyTorch's bicubic kernel (Keys, a = -0.75) at distances 1.75, 0.75, 0.25, 1.25 from a sample at
# fraction 0.75 / 0.25 between two grid points: 1.25|x|^3 - 2.25|x|^2 + 1 inside 1,
# -0.75|x|^3 + 3.75|x|^2 - 6|x| + 3 between 1 and 2.
W175, W075, W025, W125 = -0.03515625, 0.26171875, 0.87890625, -0.10546875


def table(grid: tuple[int, int], dim: int = 4, prefix: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, prefix + grid[0] * grid[1], dim, generator=g)


def reference(pos: torch.Tensor, old: tuple[int, int], new: tuple[int, int], prefix: int = 1, **kw) -> torch.Tensor:
    grid = pos[:, prefix:].reshape(1, *old, -1).permute(0, 3, 1, 2)  # [1, D, H, W]
    grid = F.interpolate(grid, size=new, mode="bicubic", align_corners=False, **kw)
    return torch.cat([pos[:, :prefix], grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], -1)], dim=1)


def test_kernel_weights_sum_to_one():
    assert W175 + W075 + W025 + W125 == 1.0


def test_constant_grid_stays_constant_and_prefix_is_kept():
    pos = torch.full((1, 1 + 4, 3), 2.5)
    pos[0, 0] = torch.tensor([7.0, -1.0, 0.5])  # the [CLS] row
    out = resize_pos_embed(pos, (5, 3))  # 2x2 -> 5x3
    assert out.shape == (1, 1 + 15, 3)
    assert torch.equal(out[0, 0], torch.tensor([7.0, -1.0, 0.5]))
    torch.testing.assert_close(out[0, 1:], torch.full((15, 3), 2.5), rtol=0, atol=1e-5)


def test_ramp_by_hand():
    # one row of 4 columns holding 0, 1, 2, 3 -> 8 columns: output column j samples source x = j/2 - 1/4;
    # taps outside the grid repeat the edge value, so the cubic does not keep the ramp linear
    pos = torch.cat([torch.zeros(1, 1, 1), torch.arange(4.0).reshape(1, 4, 1)], dim=1)
    out = resize_pos_embed(pos, (1, 8), old_grid=(1, 4))[0, 1:, 0]
    x_m025 = W175 * 0 + W075 * 0 + W025 * 0 + W125 * 1  # taps -2, -1, 0, 1 (clamped to 0, 0, 0, 1)
    x_025 = W125 * 0 + W025 * 0 + W075 * 1 + W175 * 2  # taps -1, 0, 1, 2
    x_075 = W175 * 0 + W075 * 0 + W025 * 1 + W125 * 2  # taps -1, 0, 1, 2
    x_125 = W125 * 0 + W025 * 1 + W075 * 2 + W175 * 3  # taps 0, 1, 2, 3
    expected = torch.tensor([x_m025, x_025, x_075, x_125, 3 - x_125, 3 - x_075, 3 - x_025, 3 - x_m025])
    assert expected.tolist() == [-0.10546875, 0.19140625, 0.66796875, 1.296875, 1.703125, 2.33203125, 2.80859375,
                                 3.10546875]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_rows_and_columns_resize_separately():
    # a table that varies along rows only keeps each output row constant (non-square 3x2 -> 6x5)
    grid = torch.tensor([0.0, 1.0, 4.0]).repeat_interleave(2)  # row i holds [v_i, v_i]
    pos = torch.cat([torch.zeros(1), grid]).reshape(1, 7, 1)
    out = resize_pos_embed(pos, (6, 5), old_grid=(3, 2))[0, 1:, 0].reshape(6, 5)
    torch.testing.assert_close(out, out[:, :1].expand(6, 5), rtol=0, atol=1e-5)
    column = torch.tensor([0.0, 0.0, 1.0, 4.0]).reshape(1, 4, 1)  # the same rows as a 3x1 grid
    torch.testing.assert_close(out[:, 0], resize_pos_embed(column, (6, 1), old_grid=(3, 1))[0, 1:, 0], rtol=0,
                               atol=1e-5)


@pytest.mark.parametrize(("old", "new"), [((4, 4), (6, 6)), ((6, 6), (3, 3)), ((3, 5), (4, 7)), ((4, 6), (2, 3))])
def test_equals_plain_bicubic_interpolate(old, new):
    pos = table(old, prefix=2)
    out = resize_pos_embed(pos, new, num_prefix_tokens=2, old_grid=old)
    torch.testing.assert_close(out, reference(pos, old, new, prefix=2, antialias=False), rtol=0, atol=0)


def test_differs_from_timm_antialiased_default():
    pos = table((6, 6))
    down = resize_pos_embed(pos, (3, 3))
    timm_down = resample_abs_pos_embed(pos, [3, 3], num_prefix_tokens=1)  # antialias=True by default
    torch.testing.assert_close(timm_down, reference(pos, (6, 6), (3, 3), antialias=True))
    assert (down - timm_down).abs().max() > 0.1
    up = resize_pos_embed(pos, (9, 9))
    assert (up - resample_abs_pos_embed(pos, [9, 9], num_prefix_tokens=1)).abs().max() > 0.01  # a = -0.5 there
    torch.testing.assert_close(up, resample_abs_pos_embed(pos, [9, 9], num_prefix_tokens=1, antialias=False))


def test_same_grid_is_identity_and_two_dim_tables():
    pos = table((3, 3))
    assert resize_pos_embed(pos, (3, 3)) is pos
    flat = pos[0]  # CLIP's [1 + H*W, D] positional_embedding
    out = resize_pos_embed(flat, (4, 4))
    assert out.shape == (17, 4)
    torch.testing.assert_close(out, resize_pos_embed(pos, (4, 4))[0], rtol=0, atol=0)
    half = resize_pos_embed(pos.half(), (4, 4))
    assert half.dtype == torch.float16


def test_bad_sizes_say_what_to_pass():
    with pytest.raises(ValueError, match="not a square grid; pass old_grid"):
        resize_pos_embed(table((2, 3)), (4, 4))
    with pytest.raises(ValueError, match=r"old_grid=\(3, 3\) has 9 patches but the table has 6"):
        resize_pos_embed(table((2, 3)), (4, 4), old_grid=(3, 3))


def test_sincos_values_by_hand():
    # dim 8: 2 frequencies per half, omega = 1/10000^(0/2) = 1 and 1/10000^(1/2) = 0.01;
    # columns j: [sin j, sin .01j, cos j, cos .01j], then rows i: [sin i, sin .01i, cos i, cos .01i]
    out = sincos_pos_embed_2d(8, (2, 3), num_prefix_tokens=1)
    assert out.shape == (1, 1 + 6, 8) and out.dtype == torch.float32
    assert torch.equal(out[0, 0], torch.zeros(8))
    assert out[0, 1].tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]  # patch (0, 0)
    i, j = 1, 2  # row 1, column 2: token 1 + 1 * 3 + 2
    expected = [math.sin(j), math.sin(0.01 * j), math.cos(j), math.cos(0.01 * j),
                math.sin(i), math.sin(0.01 * i), math.cos(i), math.cos(0.01 * i)]
    torch.testing.assert_close(out[0, 1 + i * 3 + j], torch.tensor(expected), rtol=0, atol=1e-7)
    # patch (0, 1) differs from (0, 0) in the column half only
    assert torch.equal(out[0, 2, 4:], out[0, 1, 4:]) and not torch.equal(out[0, 2, :4], out[0, 1, :4])


def test_sincos_frequencies_and_prefix():
    out = sincos_pos_embed_2d(16, (3, 3), num_prefix_tokens=0)
    assert out.shape == (1, 9, 16)
    j = 2  # patch (0, 2): its column angles are 2 * omega_k, omega_k = 1/10000^(k/4)
    angles = torch.tensor([2 / 10000 ** (k / 4) for k in range(4)])
    torch.testing.assert_close(out[0, j, :4], angles.sin(), rtol=0, atol=1e-7)
    torch.testing.assert_close(out[0, j, 4:8], angles.cos(), rtol=0, atol=1e-7)
    assert sincos_pos_embed_2d(16, (2, 2), num_prefix_tokens=2)[0, :2].abs().sum() == 0
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_pos_embed_2d(6, (2, 2))
