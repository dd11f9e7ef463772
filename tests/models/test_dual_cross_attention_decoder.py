"""METER's encoder-decoder decoder against a hand-written reference on random tensors: causal
self-attention, cross-attention to vision, then to text, then the FFN, each post-LN; padding never
attended; position t blind to later tokens."""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from unimm.config.errors import ConfigError
from tests.models.test_fusion import ref_attention
from unimm.models.decoders.dual_cross_attention_decoder import dual_cross_attention_decoder

WIDTH, HEADS, FFN = 32, 2, 64


def ref_decoder(decoder, tokens, padding, vision, vision_padding, text, text_padding):
    emb = decoder.embeddings
    positions = emb.position_embeddings.weight[: tokens.shape[1]]
    x = F.layer_norm(tokens + positions, (WIDTH,), emb.LayerNorm.weight, emb.LayerNorm.bias, emb.LayerNorm.eps)
    for layer in decoder.layers:
        x = ref_attention(layer.attention, x, x, padding, causal=True)
        x = ref_attention(layer.vision_attention, x, vision, vision_padding)
        x = ref_attention(layer.text_attention, x, text, text_padding)
        inter = F.gelu(F.linear(x, layer.intermediate.dense.weight, layer.intermediate.dense.bias))
        out = layer.output
        x = F.layer_norm(x + F.linear(inter, out.dense.weight, out.dense.bias), (WIDTH,),
                         out.LayerNorm.weight, out.LayerNorm.bias, out.LayerNorm.eps)
    return x


def make(seed=0):
    torch.manual_seed(seed)
    return dual_cross_attention_decoder(hidden_size=WIDTH, num_layers=2, num_heads=HEADS, intermediate_size=FFN,
                                        dropout=0.0, max_positions=8).eval()


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    tokens, vision, text = (torch.randn(2, n, WIDTH, generator=g) for n in (5, 4, 6))
    padding = torch.tensor([[False] * 5, [False, False, False, True, True]])
    vision_padding = torch.tensor([[False] * 4, [False, False, False, True]])
    text_padding = torch.tensor([[False] * 6, [False] * 4 + [True, True]])
    return tokens, padding, vision, vision_padding, text, text_padding


def test_matches_the_hand_written_layers():
    decoder = make()
    args = inputs()
    with torch.no_grad():
        got = decoder(*args)
        want = ref_decoder(decoder, *args)
    assert got.shape == (2, 5, WIDTH)
    valid = ~args[1]  # padded decoder positions are free (their outputs are never read)
    torch.testing.assert_close(got[valid], want[valid], rtol=1e-5, atol=1e-5)


def test_position_t_does_not_see_later_tokens():
    decoder = make()
    tokens, padding, vision, vision_padding, text, text_padding = inputs()
    changed = tokens.clone()
    changed[:, 3:] += torch.randn(2, 2, WIDTH)  # positions 3 and 4 change
    with torch.no_grad():
        before = decoder(tokens, None, vision, vision_padding, text, text_padding)
        after = decoder(changed, None, vision, vision_padding, text, text_padding)
    torch.testing.assert_close(after[:, :3], before[:, :3])  # 0..2 unchanged
    assert (after[:, 3:] - before[:, 3:]).abs().amax() > 1e-3


def test_padding_is_never_attended():
    """Changing padded decoder tokens, padded image tokens or padded text tokens leaves the real outputs."""
    decoder = make()
    tokens, padding, vision, vision_padding, text, text_padding = inputs()
    noisy = [t.clone() for t in (tokens, vision, text)]
    for x, pad in zip(noisy, (padding, vision_padding, text_padding)):
        x[pad] = 100.0
    with torch.no_grad():
        clean = decoder(tokens, padding, vision, vision_padding, text, text_padding)
        dirty = decoder(noisy[0], padding, noisy[1], vision_padding, noisy[2], text_padding)
        unmasked = decoder(tokens, padding, noisy[1], None, text, text_padding)
    torch.testing.assert_close(dirty[~padding], clean[~padding])
    assert (unmasked[1, :3] - clean[1, :3]).abs().amax() > 1e-3  # without the mask the padded image token counts


def test_paper_size_layer_and_decoder_counts():
    """One layer: three attention blocks (4 x (768 x 768 + 768) + 2 x 768 = 2,363,904 each) and the FFN
    (768 x 3072 + 3072 + 3072 x 768 + 768 + 2 x 768 = 4,723,968): 11,815,680, a BertCrossLayer (9,451,776)
    plus one attention block. Three layers, 128 positions (98,304) and the embedding LayerNorm (1,536)."""
    with torch.device("meta"):
        decoder = dual_cross_attention_decoder()
    per_layer = sum(p.numel() for p in decoder.layers[0].parameters())
    assert per_layer == 11_815_680 == 9_451_776 + 2_363_904
    assert sum(p.numel() for p in decoder.parameters()) == 3 * 11_815_680 + 98_304 + 1_536


def test_bad_sizes_are_refused():
    with pytest.raises(ConfigError, match="num_heads=5"):
        dual_cross_attention_decoder(hidden_size=32, num_heads=5)
    decoder = make()
    tokens, _, vision, _, text, _ = inputs()
    with pytest.raises(ValueError, match="raise the decoder's max_positions"):
        decoder(torch.randn(2, 9, WIDTH), None, vision, None, text, None)
    with pytest.raises(ValueError, match="16 wide"):
        decoder(tokens[..., :16], None, vision, None, text, None)
