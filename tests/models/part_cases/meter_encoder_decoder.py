"""Tiny case of METER's encoder-decoder decoder (``dual_cross_attention_decoder``); the METER models built with
``architecture: encoder_decoder`` run in tests/projects/meter/test_encoder_decoder.py."""
from __future__ import annotations

import torch

from tests.models.part_cases.common import Case, build

TINY_DECODER = {"type": "dual_cross_attention_decoder", "hidden_size": 32, "num_layers": 2, "num_heads": 2,
                "intermediate_size": 64, "max_positions": 8}


def decoder_losses(decoder) -> list[torch.Tensor]:
    """Five decoder tokens (the last two padding) over 4 image tokens and 6 text tokens (one padded)."""
    g = torch.Generator().manual_seed(0)
    tokens, vision, text = (torch.randn(2, n, 32, generator=g) for n in (5, 4, 6))
    padding = torch.tensor([[False] * 5, [False, False, False, True, True]])
    text_padding = torch.tensor([[False] * 6, [False] * 5 + [True]])
    return [decoder(tokens, padding, vision, None, text, text_padding).square().mean()]


CASES: dict[tuple[str, str], Case] = {
    ("decoders", "dual_cross_attention_decoder"): Case(lambda: build("decoders", TINY_DECODER), decoder_losses),
}
