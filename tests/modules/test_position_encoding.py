import torch

from unimm.modules.position_encoding import PositionEmbeddingSine


def test_shape_and_padding_invariance():
    encode = PositionEmbeddingSine(num_pos_feats=8)
    unpadded = torch.zeros(1, 4, 4, dtype=torch.bool)
    padded = torch.ones(1, 6, 7, dtype=torch.bool)
    padded[:, :4, :4] = False
    a, b = encode(unpadded), encode(padded)
    assert a.shape == (1, 16, 4, 4) and b.shape == (1, 16, 6, 7)
    # real pixels get the same encoding whatever padding the batch adds
    assert torch.allclose(a, b[:, :, :4, :4], atol=1e-6)
    # y channels vary along rows only; the first x channel is sin(x) with x = 2*pi*col/4
    assert torch.allclose(a[0, 0, :, 0], a[0, 0, :, 3])
    expected = torch.sin(torch.arange(1, 5) / 4 * 2 * torch.pi)
    assert torch.allclose(a[0, 8, 0], expected, atol=1e-5)
