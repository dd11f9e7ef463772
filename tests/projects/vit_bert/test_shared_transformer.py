"""The shared encoder (Eqs. 3-4): pre-LN order against a hand-written computation, padding, sizes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unimm.models.encoders.shared_transformer import SharedTransformer, shared_transformer
from unimm.config.errors import ConfigError


def hand_pre_ln(enc: SharedTransformer, x: torch.Tensor) -> torch.Tensor:
    """One pre-LN block and the final LN written out: z^ = MSA(LN(z)) + z; z' = MLP(LN(z^)) + z^; LN_f(z')."""
    block = enc.blocks[0]
    b, t, d = x.shape
    heads, hd = enc.num_heads, d // enc.num_heads
    ln1 = F.layer_norm(x, (d,), block.norm1.weight, block.norm1.bias, block.norm1.eps)
    q, k, v = (ln1 @ w.T + bias for w, bias in zip(block.attn.qkv.weight.split(d), block.attn.qkv.bias.split(d)))
    out = torch.zeros_like(x)
    for h in range(heads):  # each head by itself, softmax(q k^T / sqrt(hd)) v
        sl = slice(h * hd, (h + 1) * hd)
        weights = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(hd), dim=-1)
        out[..., sl] = weights @ v[..., sl]
    z_hat = out @ block.attn.proj.weight.T + block.attn.proj.bias + x  # Eq. 3
    ln2 = F.layer_norm(z_hat, (d,), block.norm2.weight, block.norm2.bias, block.norm2.eps)
    hidden = 0.5 * (ln2 @ block.mlp.fc1.weight.T + block.mlp.fc1.bias) * (
        1 + torch.erf((ln2 @ block.mlp.fc1.weight.T + block.mlp.fc1.bias) / math.sqrt(2)))  # exact GELU
    z = hidden @ block.mlp.fc2.weight.T + block.mlp.fc2.bias + z_hat  # Eq. 4
    return F.layer_norm(z, (d,), enc.norm.weight, enc.norm.bias, enc.norm.eps)


def randomized(enc: SharedTransformer) -> SharedTransformer:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # LayerNorm affine not at identity, so a misplaced norm shows
        for p in enc.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.dim() == 1 and p.shape[0] == 8 else 0.0))
    return enc.eval()


def test_one_layer_equals_the_hand_written_pre_ln_computation():
    enc = randomized(SharedTransformer(hidden_size=8, num_layers=1, num_heads=2, mlp_size=16))
    x = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(enc(x), hand_pre_ln(enc, x), rtol=1e-5, atol=1e-5)


def test_post_ln_order_would_give_other_numbers():
    """The check above can tell pre-LN from post-LN: BERT's order, LN(x + MSA(x)), differs."""
    enc = randomized(SharedTransformer(hidden_size=8, num_layers=1, num_heads=2, mlp_size=16))
    block = enc.blocks[0]
    x = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(0))
    h = block.norm1(x + block.attn(x))
    post = enc.norm(block.norm2(h + block.mlp(h)))
    assert (enc(x) - post).abs().max() > 0.1


def test_padding_keys_change_nothing_for_the_real_tokens():
    enc = randomized(SharedTransformer(hidden_size=8, num_layers=2, num_heads=2, mlp_size=16))
    x = torch.randn(2, 6, 8, generator=torch.Generator().manual_seed(1))
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[1, 4:] = True
    padded = enc(x, padding)
    alone = enc(x[1:, :4])  # the second sequence without its padding
    torch.testing.assert_close(padded[1, :4], alone[0], rtol=1e-5, atol=1e-5)
    noisy = x.clone()
    noisy[1, 4:] = 100.0  # whatever sits in the padding
    torch.testing.assert_close(enc(noisy, padding)[1, :4], padded[1, :4], rtol=1e-5, atol=1e-5)


def test_paper_size_is_85_056_000_parameters_with_the_final_layer_norm():
    with torch.device("meta"):
        enc = shared_transformer()
    assert sum(p.numel() for p in enc.parameters()) == 85_056_000
    assert sum(p.numel() for p in enc.norm.parameters()) == 2 * 768
    assert len(enc.blocks) == 12 and enc.blocks[0].mlp.fc1.out_features == 3072 and enc.num_heads == 12


def test_dropout_is_point_one_everywhere_at_paper_size():
    with torch.device("meta"):
        enc = shared_transformer()
    block = enc.blocks[0]
    assert block.attn.attention_dropout == block.attn.proj_drop.p == block.mlp.drop.p == 0.1


def test_heads_must_divide_the_width():
    with pytest.raises(ConfigError, match="num_heads"):
        shared_transformer(hidden_size=10, num_heads=3)
