"""What the tiny cases of every registered model part share: the Case record, tiny sizes, inputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from tests.models.conftest import VOCAB, categories, make_batches
from unimm.registry import REGISTRIES

TINY_BERT = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
TINY_DETR = dict(hidden_size=32, num_layers=2, num_heads=2, ffn_size=64)


def info() -> dict[str, dict]:
    return {"coco": {"task_type": "detection", "categories": categories(5)},
            "vg": {"task_type": "detection", "categories": categories(6), "num_attributes": 7},
            "vqa2": {"task_type": "vqa", "num_answers": 11, "answer_vocab": [f"a{i}" for i in range(11)],
                     "vocab_size": VOCAB},
            "snli_ve": {"task_type": "classification", "num_classes": 3, "vocab_size": VOCAB},
            "sst2": {"task_type": "text_classification", "num_classes": 2, "vocab_size": VOCAB}}


@dataclass
class Case:
    """How to build one part at tiny size and what a forward pass of it loses.

    Attributes:
        build: returns the built part (through its registry).
        losses: the part -> every loss to check (finite) and back-propagate.
        unused: regexes of parameter names that get no gradient by design.
        meta: build on the meta device only (a paper-size preset): no forward.
    """

    build: Callable[[], nn.Module]
    losses: Callable[[nn.Module], list[torch.Tensor]] = lambda part: []
    unused: list[str] = field(default_factory=list)
    meta: bool = False


def model_losses(model: nn.Module) -> list[torch.Tensor]:
    batches = make_batches()
    return [sum(model(batches[name])["losses"].values()) for name in model.tasks]


def build(kind: str, node: dict, **runtime) -> nn.Module:
    return REGISTRIES[kind].build(node, path=f"<{kind}>", **runtime)


def encoded(width: int = 32):
    from unimm.models.encoded_sequence import EncodedSequence

    g = torch.Generator().manual_seed(1)
    return EncodedSequence(torch.randn(2, 6, width, generator=g), torch.zeros(2, 6, dtype=torch.bool),
                           torch.randn(2, 6, width, generator=g))


def image_batch() -> dict:
    return {key: value for key, value in make_batches()["vg"].items() if key in ("image", "pixel_mask", "targets")}


def text_inputs() -> tuple:
    b = make_batches()["vqa2"]
    return b["input_ids"], b["attention_mask"], b["token_type_ids"]
