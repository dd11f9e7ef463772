"""Tiny cases of the parts that METER, MoMo and ViT-BERT share: the MLM head and the contrastive loss."""
from __future__ import annotations

import torch

from tests.models.part_cases.common import Case, build


def mlm_losses(head) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 5, 24, generator=g)  # a 24-wide decoder before the 32-wide head (MoMo's shape)
    labels = torch.tensor([[-100, 3, -100, 49, -100], [0, -100, -100, -100, 7]])
    return [head(hidden, labels)[1]["mlm"]]


def contrastive_losses(loss) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    image, text = torch.randn(4, 32, generator=g), torch.randn(4, 32, generator=g)
    return [loss(image.requires_grad_(), text.requires_grad_())]


CASES: dict[tuple[str, str], Case] = {
    ("heads", "mlm_head"): Case(
        lambda: build("heads", {"type": "mlm_head", "vocab_size": 50, "hidden_size": 32, "input_size": 24}),
        mlm_losses),
    ("losses", "contrastive"): Case(lambda: build("losses", {"type": "contrastive"}), contrastive_losses),
}
