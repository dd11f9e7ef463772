"""Tiny cases of unimm's own model parts and of the UniT and quickstart projects."""
from __future__ import annotations

import torch

from tests.models.conftest import VOCAB, make_batches
from tests.models.part_cases.common import (TINY_BERT, TINY_DETR, Case, build, encoded, image_batch, info,
                                            model_losses, text_inputs)

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
