"""Every registered model part of unimm and its projects, built at tiny size through its registry.

Each case builds the part (hidden 32, 2 layers, 2 heads where it has them) and returns the losses
of a forward pass (or several, e.g. one per dataset of a multi-task model); the test then checks
that the values are finite and that every trainable parameter got a finite gradient, except those
the case declares unused. A part registered without a case here fails ``test_every_part_has_a_case``,
so a new encoder, decoder, head, loss or model is enrolled by registering it and writing its case.
Paper-size presets are built on the meta device (no memory, no forward); their parts run here
at tiny size through the presets and the composable ``unit`` model.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import pytest
import torch
from torch import nn

from tests.conftest import REPO
from tests.models.conftest import VOCAB, categories, make_batches
from unimm.plugins import import_builtins, load_user_dirs
from unimm.registry import REGISTRIES

MODEL_KINDS = ("models", "encoders", "fusions", "decoders", "heads", "losses")
SHIPPED = ("unimm.", "projects.")  # parts of unimm and of its projects (not the tests' own plugins)
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


UNIT_NODE = {"type": "unit", "image_encoder": {"type": "detr_image_encoder", "backbone": "tiny", **TINY_DETR},
             "text_encoder": {"type": "unit_text_encoder", **TINY_BERT},
             "decoder": {"type": "detr_decoder", **TINY_DETR}, "detection_queries": 10, "other_queries": 2}
# A dataset's own head, queries and task tokens get gradients from its batch only, and the case runs
# every dataset once. Both encoders hold a task token for every dataset (as MMF's UniT); the image
# token of a text-only batch (SST-2) and the text tokens of detection datasets are never read here.
UNIT_UNUSED = [r"^image_encoder\.task_tokens\.tokens\.sst2$", r"^text_encoder\.task_tokens\.tokens\.(coco|vg)$"]
# unit_tiny and unit_paper keep DETR's frozen first stages; unit_small trains them all.
CASES: dict[tuple[str, str], Case] = {
    ("models", "unit"): Case(lambda: build("models", UNIT_NODE, dataset_info=info()), model_losses, UNIT_UNUSED),
    ("models", "unit_tiny"): Case(lambda: build("models", {"type": "unit_tiny"}, dataset_info=info()), model_losses,
                                  UNIT_UNUSED),
    ("models", "unit_small"): Case(lambda: build("models", {"type": "unit_small"}, dataset_info=info()),
                                   model_losses, UNIT_UNUSED),
    ("models", "unit_paper"): Case(lambda: build("models", {"type": "unit_paper"}, dataset_info=info()), meta=True),
    ("models", "backbone_classifier"): Case(
        lambda: build("models", {"type": "backbone_classifier", "backbone": "tiny"},
                      dataset_info={"shapes": {"task_type": "classification", "num_classes": 3}}),
        lambda m: list(m({"image": image_batch()["image"], "label": torch.tensor([0, 2])})["losses"].values())),
    ("models", "cell_classifier"): Case(
        lambda: build("models", {"type": "cell_classifier", "backbone": "tiny"}, dataset_info={"vg": info()["vg"]}),
        lambda m: list(m({**image_batch(), "targets": [{**t, "size": t["orig_size"]} for t in
                                                       image_batch()["targets"]]})["losses"].values())),
    ("models", "mlp_classifier"): Case(
        lambda: build("models", {"type": "mlp_classifier", "hidden": 32},
                      dataset_info={"blobs": {"task_type": "classification", "dim": 8, "num_classes": 3}}),
        lambda m: list(m({"dataset_name": "blobs", "features": torch.randn(4, 8),
                          "label": torch.tensor([0, 1, 2, 0])})["losses"].values())),
    ("encoders", "detr_image_encoder"): Case(
        lambda: build("encoders", {"type": "detr_image_encoder", "backbone": "tiny", "task_names": ["a", "b"],
                                   **TINY_DETR}),
        lambda m: [m(image_batch()["image"], image_batch()["pixel_mask"], name).hidden.square().mean()
                   for name in ("a", "b")]),
    ("encoders", "unit_text_encoder"): Case(
        lambda: build("encoders", {"type": "unit_text_encoder", "task_names": ["a", "b"], "vocab_size": VOCAB,
                                   **TINY_BERT}),
        lambda m: [m(*text_inputs(), name).hidden.square().mean() for name in ("a", "b")]),
    ("decoders", "detr_decoder"): Case(
        lambda: build("decoders", {"type": "detr_decoder", "num_queries": {"a": 3, "b": 1}, **TINY_DETR}),
        lambda m: [m(encoded(), name).square().mean() for name in ("a", "b")]),
    ("heads", "detection_head"): Case(
        lambda: build("heads", {"type": "detection_head", "num_classes": 6, "num_attributes": 7, "hidden_size": 32}),
        lambda m: list(m(torch.randn(2, 2, 5, 32), make_batches()["vg"])[1].values())),
    ("heads", "attribute_head"): Case(
        lambda: build("heads", {"type": "attribute_head", "num_classes": 6, "num_attributes": 7, "hidden_size": 32}),
        lambda m: [m(torch.randn(4, 32), torch.tensor([0, 1, 5, 6])).square().mean()]),
    ("heads", "mlp_classifier_head"): Case(
        lambda: build("heads", {"type": "mlp_classifier_head", "num_classes": 3, "hidden_size": 32}),
        lambda m: list(m(torch.randn(2, 2, 3, 32), {"label": torch.tensor([0, 2])})[1].values())),
    ("losses", "cross_entropy"): Case(
        lambda: build("losses", {"type": "cross_entropy"}),
        lambda loss: [loss(torch.randn(3, 4, requires_grad=True), torch.tensor([0, 3, -1]))]),
    ("losses", "soft_bce"): Case(
        lambda: build("losses", {"type": "soft_bce"}),
        lambda loss: [loss(torch.randn(3, 4, requires_grad=True), torch.rand(3, 4))]),
}


@pytest.fixture(scope="module", autouse=True)
def parts():
    import_builtins()
    load_user_dirs([str(REPO / "projects" / "quickstart"), str(REPO / "projects" / "unit")])


def shipped_parts() -> list[tuple[str, str]]:
    import_builtins()
    load_user_dirs([str(REPO / "projects" / "quickstart"), str(REPO / "projects" / "unit")])
    return [(kind, entry.name) for kind in MODEL_KINDS for entry in REGISTRIES[kind].entries()
            if entry.module.startswith(SHIPPED)]


def test_every_part_has_a_case():
    missing = [f"{kind}/{name}" for kind, name in shipped_parts() if (kind, name) not in CASES]
    assert not missing, f"add a tiny case to tests/models/test_every_part.py for: {missing}"
    stale = [f"{kind}/{name}" for kind, name in CASES if name not in REGISTRIES[kind]]
    assert not stale, f"cases of parts that are no longer registered: {stale}"


@pytest.mark.parametrize(("kind", "name"), sorted(CASES), ids=[f"{k}/{n}" for k, n in sorted(CASES)])
def test_part_runs_forward_and_backward_at_tiny_size(kind: str, name: str):
    case = CASES[(kind, name)]
    torch.manual_seed(0)
    if case.meta:
        with torch.device("meta"):
            part = case.build()
        assert sum(p.numel() for p in part.parameters()) > 0
        return
    part = case.build()
    losses = case.losses(part)
    assert losses, "the case computes no loss"
    for loss in losses:
        assert loss.dim() == 0 and math.isfinite(loss.item()), loss
    sum(losses).backward()
    unused = [re.compile(p) for p in case.unused]
    for param_name, param in part.named_parameters():
        if not param.requires_grad or any(r.search(param_name) for r in unused):
            continue
        assert param.grad is not None, f"{kind}/{name}: {param_name} got no gradient (declare it unused if by design)"
        assert torch.isfinite(param.grad).all(), f"{kind}/{name}: {param_name} has a non-finite gradient"
