"""The ViT patch embedding: a linear map of each flattened patch, tokens in row-major patch order."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from unimm.modules.patch_embed import PatchEmbed


def test_sums_of_patches_by_hand():
    # one output channel whose weights are all 1: each token is the sum of its 2x2 patch, plus the bias
    embed = PatchEmbed(image_size=(4, 6), patch_size=2, in_channels=1, hidden_size=1)
    nn.init.ones_(embed.proj.weight)
    nn.init.constant_(embed.proj.bias, 0.5)
    image = torch.arange(24.0).reshape(1, 1, 4, 6)  # rows 0..5, 6..11, 12..17, 18..23
    tokens = embed(image)
    assert tokens.shape == (1, 6, 1) and embed.grid == (2, 3) and embed.num_patches == 6
    # patch (0, 0) = 0 + 1 + 6 + 7, patch (0, 1) = 2 + 3 + 8 + 9, ..., patch (1, 2) = 16 + 17 + 22 + 23
    assert tokens[0, :, 0].tolist() == [14.5, 22.5, 30.5, 62.5, 70.5, 78.5]


def test_equals_a_linear_layer_on_flattened_patches():
    torch.manual_seed(0)
    embed = PatchEmbed(image_size=32, patch_size=8, in_channels=3, hidden_size=32)
    image = torch.randn(2, 3, 16, 24)  # another resolution than image_size runs too
    tokens = embed(image)
    assert tokens.shape == (2, 2 * 3, 32) and embed.grid_size(16, 24) == (2, 3)
    patches = image.reshape(2, 3, 2, 8, 3, 8).permute(0, 2, 4, 1, 3, 5).reshape(2, 6, 3 * 8 * 8)  # [B, h*w, C*p*p]
    expected = patches @ embed.proj.weight.reshape(32, -1).T + embed.proj.bias
    torch.testing.assert_close(tokens, expected, rtol=1e-5, atol=1e-5)


def test_bias_off_like_clip_and_parameter_count():
    clip = PatchEmbed(image_size=224, patch_size=16, hidden_size=768, bias=False)
    assert clip.proj.bias is None and clip.num_patches == 196
    assert sum(p.numel() for p in clip.parameters()) == 3 * 16 * 16 * 768
    vit = PatchEmbed(image_size=384, patch_size=16, hidden_size=768)
    assert sum(p.numel() for p in vit.parameters()) == 3 * 16 * 16 * 768 + 768 and vit.grid == (24, 24)


def test_sizes_not_divisible_by_the_patch_are_refused():
    with pytest.raises(ValueError, match=r"image size 30x32 is not divisible by the patch size 16x16"):
        PatchEmbed(image_size=(30, 32))
    embed = PatchEmbed(image_size=32, patch_size=16, hidden_size=32)
    with pytest.raises(ValueError, match=r"image size 32x40 is not divisible by the patch size 16x16"):
        embed(torch.zeros(1, 3, 32, 40))
