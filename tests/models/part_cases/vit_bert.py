"""Tiny cases of ViT-BERT's parts: the modality tokenizers, the shared pre-LN encoder and the models."""
from __future__ import annotations

import torch

from tests.models.conftest import VOCAB
from tests.models.part_cases.common import Case, build

TINY_ENCODER = dict(hidden_size=32, num_layers=2, num_heads=2, mlp_size=64)
INFO = {"images": {"task_type": "classification", "num_classes": 3},
        "corpus": {"task_type": "text_pretraining", "vocab_size": VOCAB},
        "sst2": {"task_type": "text_classification", "num_classes": 2, "vocab_size": VOCAB}}
VIT_BERT_NODE = {"type": "vit_bert", "encoder": {"type": "shared_transformer", **TINY_ENCODER},
                 "image_tokenizer": {"type": "image_tokenizer", "image_size": 32, "patch_size": 16},
                 "text_tokenizer": {"type": "text_tokenizer", "max_positions": 16}}


def batches() -> list[dict]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, VOCAB, (2, 7), generator=g)
    attention = torch.ones(2, 7, dtype=torch.long)
    attention[1, 5:] = 0
    labels = torch.full((2, 7), -100)
    labels[0, 1], labels[1, 3] = 4, 9
    text = {"input_ids": ids, "attention_mask": attention, "token_type_ids": torch.zeros_like(ids)}
    return [{"dataset_name": "images", "image": torch.randn(2, 3, 32, 32, generator=g), "label": torch.tensor([0, 2])},
            {"dataset_name": "corpus", **text, "mlm_labels": labels, "is_next": torch.tensor([1, 0])},
            {"dataset_name": "sst2", **text, "label": torch.tensor([1, 0])}]


def model_losses(model) -> list[torch.Tensor]:
    return [sum(model(batch)["losses"].values()) for batch in batches()]


def published(kind: str):
    """A published teacher built from tiny random weights saved in its source layout (a Hugging Face folder,
    a timm state dict) in a fresh temporary folder."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    from tests.projects.vit_bert.test_published_teachers import VIT_ARCH, tiny_bert, tiny_vit

    folder = Path(tempfile.mkdtemp(prefix="unimm-teacher-"))
    atexit.register(shutil.rmtree, folder, True)  # the built teacher holds its weights; the files can go
    if kind == "bert":
        tiny_bert(folder / "bert")
        return build("models", {"type": "published_bert_teacher", "path": str(folder / "bert")},
                     dataset_info={"corpus": INFO["corpus"]})
    tiny_vit(folder / "vit.pth")
    return build("models", {"type": "published_vit_teacher", "path": str(folder / "vit.pth"), **VIT_ARCH},
                 dataset_info={"images": INFO["images"]})


def distilled_from(teacher, batch: dict, keys: tuple[str, ...]) -> list[torch.Tensor]:
    """A frozen teacher's logits as the targets of a student's KL loss (its own weights get no gradient)."""
    out = teacher(batch)
    losses = []
    for key in keys:
        student = torch.zeros_like(out[key], requires_grad=True)
        losses.append(torch.nn.functional.kl_div(student.log_softmax(-1), out[key].softmax(-1), reduction="batchmean"))
    return losses


def tokens_and_padding():
    g = torch.Generator().manual_seed(1)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[1, 3:] = True
    return torch.randn(2, 5, 32, generator=g), padding


CASES: dict[tuple[str, str], Case] = {
    ("encoders", "image_tokenizer"): Case(
        lambda: build("encoders", {"type": "image_tokenizer", "hidden_size": 32, "image_size": 32, "patch_size": 16,
                                   "modality_embedding": True}),
        lambda m: [m(torch.randn(2, 3, 32, 32)).square().mean()]),
    ("encoders", "text_tokenizer"): Case(
        lambda: build("encoders", {"type": "text_tokenizer", "vocab_size": VOCAB, "hidden_size": 32,
                                   "max_positions": 16, "embedding_norm": True, "modality_embedding": True}),
        lambda m: [m(batches()[1]["input_ids"], batches()[1]["token_type_ids"]).square().mean()]),
    ("encoders", "shared_transformer"): Case(
        lambda: build("encoders", {"type": "shared_transformer", **TINY_ENCODER}),
        lambda m: [m(*tokens_and_padding()).square().mean()]),
    ("models", "vit_bert"): Case(lambda: build("models", VIT_BERT_NODE, dataset_info=INFO), model_losses),
    ("models", "vit_bert_tiny"): Case(lambda: build("models", {"type": "vit_bert_tiny"}, dataset_info=INFO),
                                      model_losses),
    ("models", "vit_bert_small"): Case(
        lambda: build("models", {"type": "vit_bert_small", "image_size": 32}, dataset_info=INFO), model_losses),
    ("models", "published_bert_teacher"): Case(
        lambda: published("bert"), lambda m: distilled_from(m, batches()[1], ("mlm_logits", "nsp_logits"))),
    ("models", "published_vit_teacher"): Case(
        lambda: published("vit"), lambda m: distilled_from(m, batches()[0], ("logits",))),
    ("models", "vit_bert_paper"): Case(lambda: build("models", {"type": "vit_bert_paper"}, dataset_info=INFO),
                                       meta=True),
}
