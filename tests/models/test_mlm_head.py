"""BERT's MLM head: the transform, the loss over labelled tokens, tying to word embeddings, paper sizes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unimm.models.heads.mlm_head import MLMHead
from unimm.registry import HEADS


def test_loss_by_hand_from_the_output_bias():
    head = MLMHead(vocab_size=3, hidden_size=4)
    with torch.no_grad():
        head.dense.weight.zero_()  # GELU(0) = 0, LayerNorm of zeros = its bias (0): logits = output bias
        head.dense.bias.zero_()
        head.decoder.bias.copy_(torch.log(torch.tensor([1.0, 2.0, 1.0])))  # p = 1/4, 1/2, 1/4
    labels = torch.tensor([[1, -100, 0], [-100, -100, -100]])
    logits, losses = head(torch.randn(2, 3, 4), labels)
    assert logits.shape == (2, 3, 3)
    assert losses["mlm"].item() == pytest.approx((math.log(2) + math.log(4)) / 2)  # mean over the 2 labelled


def test_forward_is_dense_gelu_layernorm_decoder():
    torch.manual_seed(0)
    head = HEADS.build({"type": "mlm_head", "vocab_size": 50, "hidden_size": 32})
    assert not head.tied and torch.equal(head.decoder.bias, torch.zeros(50))  # BERT's output bias starts at 0
    hidden = torch.randn(2, 5, 32)
    logits, losses = head(hidden)
    assert losses == {}
    x = F.layer_norm(F.gelu(hidden @ head.dense.weight.T + head.dense.bias), (32,), head.norm.weight, head.norm.bias,
                     eps=1e-12)
    torch.testing.assert_close(logits, x @ head.decoder.weight.T + head.decoder.bias)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[1, 4] = 7, 49
    _, losses = head(hidden, labels)
    by_hand = -(logits[0, 1].log_softmax(-1)[7] + logits[1, 4].log_softmax(-1)[49]) / 2
    torch.testing.assert_close(losses["mlm"], by_hand)


def test_no_labelled_token_gives_zero_with_a_graph():
    head = MLMHead(vocab_size=50, hidden_size=32)
    _, losses = head(torch.randn(2, 3, 32), torch.full((2, 3), -100))
    assert losses["mlm"].item() == 0.0 and losses["mlm"].requires_grad
    losses["mlm"].backward()
    assert head.decoder.weight.grad is not None and head.decoder.weight.grad.abs().sum() == 0


def test_tied_to_word_embeddings_with_a_narrower_input():
    torch.manual_seed(0)
    words = nn.Embedding(50, 32)
    head = HEADS.build({"type": "mlm_head", "vocab_size": 50, "hidden_size": 32, "input_size": 24},
                       tied_embedding=words)  # MoMo: a 24-wide decoder (512 there) before a 32-wide table
    assert head.tied and head.decoder.weight is words.weight
    assert head.dense.weight.shape == (32, 24)
    logits, losses = head(torch.randn(2, 5, 24), torch.tensor([[3] + [-100] * 4, [-100] * 4 + [9]]))
    assert logits.shape == (2, 5, 50)
    losses["mlm"].backward()
    assert words.weight.grad is not None and words.weight.grad.abs().sum() > 0  # the table learns from the head
    parent = nn.ModuleDict({"words": words, "head": head})
    assert sum(p.numel() for p in parent.parameters()) == 50 * 32 + (24 * 32 + 32) + 2 * 32 + 50  # counted once
    with pytest.raises(ValueError, match=r"tied embedding is \(50, 32\) but the head needs .* \(50, 24\)"):
        MLMHead(vocab_size=50, hidden_size=24, tied_embedding=words)


def test_paper_sizes():
    with torch.device("meta"):
        meter = HEADS.build({"type": "mlm_head", "vocab_size": 50265, "hidden_size": 768})  # RoBERTa, untied
        momo = HEADS.build({"type": "mlm_head", "vocab_size": 30522, "hidden_size": 768, "input_size": 512},
                           tied_embedding=nn.Embedding(30522, 768))
    assert sum(p.numel() for p in meter.parameters()) == 39_245_913  # REFERENCE_NOTES 1.1
    own = [p for n, p in momo.named_parameters() if n != "decoder.weight"]
    assert sum(p.numel() for p in own) == 512 * 768 + 768 + 2 * 768 + 30522  # projection + LN + output bias
