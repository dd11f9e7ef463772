import torch

from unimm.modules.transformer_decoder import TransformerDecoder
from unimm.modules.transformer_encoder import TransformerEncoder


def test_encoder_ignores_padded_positions():
    encoder = TransformerEncoder(hidden_size=32, num_layers=2, num_heads=2, ffn_size=64).eval()
    x, pos = torch.randn(1, 5, 32), torch.randn(1, 5, 32)
    mask = torch.tensor([[False, False, False, True, True]])
    out = encoder(x, mask, pos)
    changed = x.clone()
    changed[:, 3:] = 100.0
    out2 = encoder(changed, mask, pos)
    assert out.shape == (1, 5, 32)
    assert torch.allclose(out[:, :3], out2[:, :3], atol=1e-5)


def test_decoder_returns_every_layer_normalised():
    decoder = TransformerDecoder(hidden_size=32, num_layers=3, num_heads=2, ffn_size=64).eval()
    queries, memory = torch.randn(2, 4, 32), torch.randn(2, 6, 32)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[1, 4:] = True
    states = decoder(queries, memory, mask, torch.randn(2, 6, 32))
    assert states.shape == (3, 2, 4, 32)
    # the shared final LayerNorm (weight 1, bias 0 at init) is applied to each layer's output
    assert torch.allclose(states.mean(-1), torch.zeros(3, 2, 4), atol=1e-5)
