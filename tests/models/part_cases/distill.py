"""Tiny cases of the distillation loss (ViT-BERT Eq. 7)."""
from __future__ import annotations

import torch

from tests.models.part_cases.common import Case, build


def distillation_losses(loss) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    student = torch.randn(4, 5, generator=g, requires_grad=True)
    teacher = torch.randn(4, 5, generator=g)
    labels = torch.tensor([0, 4, -100, 2])  # one ignored row (an unmasked MLM position)
    return [loss(student, teacher, labels)]


CASES: dict[tuple[str, str], Case] = {
    ("losses", "distillation"): Case(lambda: build("losses", {"type": "distillation", "alpha": 0.5}),
                                     distillation_losses),
}
