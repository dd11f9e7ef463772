"""Modality tokenizers (Eqs. 1-2): shapes, hand-checkable positions, sizes, and the 2-D position resize."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from unimm.config.errors import ConfigError
from unimm.models.encoders.modality_tokenizers import ImageTokenizer, image_tokenizer, text_tokenizer


def test_image_tokens_are_cls_then_patches_in_row_major_order_plus_positions():
    tok = ImageTokenizer(hidden_size=2, image_size=4, patch_size=2, in_channels=1, dropout=0.0).eval()
    with torch.no_grad():
        tok.patch_embed.proj.weight.zero_()
        tok.patch_embed.proj.weight[0, 0, 0, 0] = 1.0  # channel 0 = the patch's top-left pixel
        tok.patch_embed.proj.bias.zero_()
        tok.cls_token.copy_(torch.tensor([[[7.0, 7.0]]]))
        tok.pos_embed.copy_(torch.tensor([[[0.0, 0.0], [0, 10], [0, 20], [0, 30], [0, 40]]]))
    image = torch.arange(16.0).reshape(1, 1, 4, 4)  # top-left pixels of the 2x2 patches: 0, 2, 8, 10
    tokens = tok(image)
    assert tokens.shape == (1, 5, 2)
    assert tokens[0].tolist() == [[7, 7], [0, 10], [2, 20], [8, 30], [10, 40]]


def test_text_token_t_gets_position_row_t_and_its_segment():
    tok = text_tokenizer(vocab_size=5, hidden_size=3, max_positions=4, dropout=0.0).eval()
    with torch.no_grad():
        tok.word_embeddings.weight.copy_(torch.arange(5.0)[:, None] * torch.tensor([1.0, 0, 0]))
        tok.position_embeddings.weight.copy_(torch.arange(4.0)[:, None] * torch.tensor([0, 10.0, 0]))
        tok.token_type_embeddings.weight.copy_(torch.tensor([[0, 0, 0], [0, 0, 100.0]]))
    ids = torch.tensor([[2, 4, 1], [3, 3, 0]])
    segments = torch.tensor([[0, 1, 1], [0, 0, 0]])
    out = tok(ids, segments)
    assert out.shape == (2, 3, 3)
    assert out[0].tolist() == [[2, 0, 0], [4, 10, 100], [1, 20, 100]]
    assert out[1].tolist() == [[3, 0, 0], [3, 10, 0], [0, 20, 0]]
    assert tok(ids).tolist()[0][1] == [4, 10, 0]  # no segments: all sentence A


def test_modality_embedding_is_off_by_default_and_adds_one_vector_when_on():
    assert image_tokenizer(hidden_size=4, image_size=32).modality_embedding is None
    assert text_tokenizer(vocab_size=5, hidden_size=4).modality_embedding is None
    tok = text_tokenizer(vocab_size=5, hidden_size=4, dropout=0.0, modality_embedding=True).eval()
    with torch.no_grad():
        tok.modality_embedding.fill_(0.5)
    ids = torch.tensor([[1, 2]])
    base = text_tokenizer(vocab_size=5, hidden_size=4, dropout=0.0).eval()
    base.load_state_dict({k: v for k, v in tok.state_dict().items() if k != "modality_embedding"})
    torch.testing.assert_close(tok(ids), base(ids) + 0.5)


def test_paper_sizes():
    with torch.device("meta"):
        at_224 = image_tokenizer(hidden_size=768)
        at_384 = image_tokenizer(hidden_size=768, image_size=384)
        text = text_tokenizer(vocab_size=30_000, hidden_size=768)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (count(at_224), count(at_384), count(text)) == (742_656, 1_034_496, 23_434_752)
    assert at_224.pos_embed.shape == (1, 197, 768) and at_384.pos_embed.shape == (1, 577, 768)


def test_wrong_inputs_are_clear_errors():
    tok = image_tokenizer(hidden_size=4, image_size=32, patch_size=16)
    with pytest.raises(ValueError, match="give a 3x3 patch grid, but the position table is for 2x2"):
        tok(torch.zeros(1, 3, 48, 48))
    with pytest.raises(ConfigError, match="not a multiple of patch_size"):
        image_tokenizer(hidden_size=4, image_size=40, patch_size=16)
    with pytest.raises(ValueError, match="longer than the position table"):
        text_tokenizer(vocab_size=5, hidden_size=4, max_positions=3)(torch.zeros(1, 4, dtype=torch.long))


def test_init_resize_interpolates_the_position_table_in_2d_bicubic_keeping_cls(tmp_path):
    """A 2x2 grid whose rows ramp 0 -> 1 along each row, loaded into a 4x4 grid (32 -> 64 pixels).

    Bicubic (a = -0.75, align_corners=False, edges replicated, no antialiasing) samples the
    columns at x = -0.25, 0.25, 0.75, 1.25: by hand with Keys' kernel, W(0.75) + W(1.75) =
    0.26171875 - 0.03515625 = 0.2265625 at 0.25, W(1.25) = -0.10546875 at -0.25, and the mirror
    images 0.7734375 and 1.10546875.
    """
    from unimm.training.checkpoint import init_from

    small = image_tokenizer(hidden_size=2, image_size=32, patch_size=16, dropout=0.0)
    table = torch.tensor([[[5.0, -5.0], [0, 0], [1, 0], [0, 0], [1, 0]]])  # [CLS], then (0,0) (0,1) (1,0) (1,1)
    save_file({**{k: v for k, v in small.state_dict().items() if k != "pos_embed"}, "pos_embed": table},
              str(tmp_path / "small.safetensors"))
    large = image_tokenizer(hidden_size=2, image_size=64, patch_size=16, dropout=0.0)
    report = init_from(large, tmp_path / "small.safetensors", resize=[r"^pos_embed$"])
    assert report["resized"] == ["pos_embed"]
    resized = large.pos_embed[0].detach()
    assert resized[0].tolist() == [5.0, -5.0]  # [CLS] kept
    columns = [-0.10546875, 0.2265625, 0.7734375, 1.10546875]
    torch.testing.assert_close(resized[1:, 0].reshape(4, 4), torch.tensor([columns] * 4))
    torch.testing.assert_close(resized[1:, 1], torch.zeros(16))
