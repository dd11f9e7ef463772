"""METER's fusion modules against hand-written references on random tensors.

The co-attention reference writes BERT's post-LN cross layer out with plain tensor operations (softmax
attention with an additive mask, erf GELU, LayerNorm), and updates both streams from the previous layer
(METER ``infer``); the sequential update (the image layer reading the new text states) differs, and the
module must match the simultaneous one only.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unimm.models.fusion.co_attention import CoAttention, co_attention
from unimm.models.fusion.merged_attention import MergedAttention, merged_attention

WIDTH, HEADS, FFN = 32, 2, 64


def ref_attention(block, x, ctx, ctx_padding, causal=False):
    """BERT attention block: ``LN(x + W_o softmax(QK^T / sqrt(d) + mask) V)``; ``causal``: no key after the
    query (a decoder's self-attention)."""
    sa = block.self
    b, t, d = x.shape
    hs = d // HEADS
    q = F.linear(x, sa.query.weight, sa.query.bias).view(b, t, HEADS, hs).transpose(1, 2)
    k = F.linear(ctx, sa.key.weight, sa.key.bias).view(b, -1, HEADS, hs).transpose(1, 2)
    v = F.linear(ctx, sa.value.weight, sa.value.bias).view(b, -1, HEADS, hs).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hs)  # [B, nh, T, S]
    if ctx_padding is not None:
        scores = scores + ctx_padding[:, None, None, :].float() * -1e9  # BERT's extended mask
    if causal:
        scores = scores + torch.ones(t, t).triu(1) * -1e9  # [T, S]: 1 where the key is after the query
    context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
    out = block.output
    return F.layer_norm(x + F.linear(context, out.dense.weight, out.dense.bias), (d,),
                        out.LayerNorm.weight, out.LayerNorm.bias, out.LayerNorm.eps)


def ref_layer(layer, x, pad, other=None, other_pad=None):
    h = ref_attention(layer.attention, x, x, pad)
    if other is not None:
        h = ref_attention(layer.crossattention, h, other, other_pad)
    inter = F.gelu(F.linear(h, layer.intermediate.dense.weight, layer.intermediate.dense.bias))
    out = layer.output
    return F.layer_norm(h + F.linear(inter, out.dense.weight, out.dense.bias), (h.shape[-1],),
                        out.LayerNorm.weight, out.LayerNorm.bias, out.LayerNorm.eps)


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    text, image = torch.randn(2, 5, WIDTH, generator=g), torch.randn(2, 4, WIDTH, generator=g)
    text_pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    return text, text_pad, image, torch.zeros(2, 4, dtype=torch.bool)


def randomise(module, seed=1):
    """Non-trivial weights everywhere (BERT's init gives LayerNorm 1/0 and zero biases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module.eval()


def test_co_attention_updates_both_streams_from_the_previous_layer():
    fusion = randomise(CoAttention(WIDTH, num_layers=2, num_heads=HEADS, intermediate_size=FFN, dropout=0.0))
    text, text_pad, image, image_pad = inputs()
    with torch.no_grad():
        out_text, out_image = fusion(text, text_pad, image, image_pad)
        x, y = text, image
        for tl, il in zip(fusion.text_layers, fusion.image_layers):
            x, y = ref_layer(tl, x, text_pad, y, image_pad), ref_layer(il, y, image_pad, x, text_pad)
        sx, sy = text, image  # the sequential update METER does not do: the image reads the new text
        for tl, il in zip(fusion.text_layers, fusion.image_layers):
            sx = ref_layer(tl, sx, text_pad, sy, image_pad)
            sy = ref_layer(il, sy, image_pad, sx, text_pad)
    torch.testing.assert_close(out_text, x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_image, y, atol=1e-5, rtol=1e-5)
    # a sequential implementation fails the checks above: its image stream (and, from the second layer
    # on, its text stream) differ
    assert (out_image - sy).abs().max() > 1e-2 and (out_text - sx).abs().max() > 1e-2


def test_co_attention_ignores_padded_text_tokens():
    fusion = randomise(CoAttention(WIDTH, num_layers=2, num_heads=HEADS, intermediate_size=FFN, dropout=0.0))
    text, text_pad, image, image_pad = inputs()
    changed = text.clone()
    changed[1, 3:] = 100.0  # the padding of the second caption
    with torch.no_grad():
        a_text, a_image = fusion(text, text_pad, image, image_pad)
        b_text, b_image = fusion(changed, text_pad, image, image_pad)
    torch.testing.assert_close(a_image, b_image)
    torch.testing.assert_close(a_text[1, :3], b_text[1, :3])


def test_merged_attention_is_self_attention_over_the_concatenation():
    fusion = randomise(MergedAttention(WIDTH, num_layers=2, num_heads=HEADS, intermediate_size=FFN, dropout=0.0))
    text, text_pad, image, image_pad = inputs()
    with torch.no_grad():
        out_text, out_image = fusion(text, text_pad, image, image_pad)
        joint, pad = torch.cat([text, image], 1), torch.cat([text_pad, image_pad], 1)
        for layer in fusion.layers:
            joint = ref_layer(layer, joint, pad)
    torch.testing.assert_close(out_text, joint[:, :5], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_image, joint[:, 5:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("builder", "expected"), [(co_attention, 113_421_312), (merged_attention, 85_054_464)])
def test_paper_size_parameter_counts(builder, expected):
    """REFERENCE_NOTES 1.1: 12 x BertCrossLayer (9,451,776) and 12 x BERT layer (7,087,872)."""
    with torch.device("meta"):
        fusion = builder()
    assert sum(p.numel() for p in fusion.parameters()) == expected


def test_co_attention_starts_from_bert_init():
    fusion = CoAttention(WIDTH, num_layers=1, num_heads=HEADS, intermediate_size=FFN)
    layer = fusion.text_layers[0]
    assert layer.attention.output.LayerNorm.weight.eq(1).all() and layer.output.dense.bias.eq(0).all()
    assert layer.crossattention.self.query.weight.std().item() == pytest.approx(0.02, rel=0.2)
