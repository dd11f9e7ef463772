"""Tiny ViT-BERT models, datasets' info and batches shared by the project's tests."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import REPO
from unimm.plugins import import_builtins, load_user_dirs

VOCAB = 50
INFO = {"images": {"task_type": "classification", "num_classes": 3},
        "corpus": {"task_type": "text_pretraining", "vocab_size": VOCAB},
        "sst2": {"task_type": "text_classification", "num_classes": 2, "vocab_size": VOCAB}}


@pytest.fixture(scope="session", autouse=True)
def vit_bert_plugin():
    import_builtins()
    load_user_dirs([str(REPO / "projects" / "vit_bert")])


def build(node: dict, names=("images", "corpus")):
    from unimm.registry import MODELS

    return MODELS.build(node, path="model", dataset_info={n: INFO[n] for n in names})


def image_batch(batch_size: int = 3) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"dataset_name": "images", "task_type": "classification",
            "image": torch.randn(batch_size, 3, 32, 32, generator=g), "label": torch.tensor([0, 2, 1, 0])[:batch_size]}


def corpus_batch() -> dict:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, VOCAB, (2, 6), generator=g)
    labels = torch.full((2, 6), -100)
    labels[0, 2], labels[1, 1], labels[1, 4] = 7, 8, 9  # three masked positions
    attention = torch.ones(2, 6, dtype=torch.long)
    attention[1, 5] = 0
    return {"dataset_name": "corpus", "task_type": "text_pretraining", "input_ids": ids, "attention_mask": attention,
            "token_type_ids": torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]]), "mlm_labels": labels,
            "is_next": torch.tensor([1, 0])}


def save_teacher(folder: Path, name: str, datasets: tuple[str, ...], seed: int) -> str:
    """A tiny teacher's weights as a file, as a teacher run would leave them."""
    torch.manual_seed(seed)
    model = build({"type": "vit_bert_tiny"}, datasets)
    with torch.no_grad():  # peaked logits, so that distillation is not trivially ~0
        for head in model.heads.values():
            for mlp in head.values():
                mlp.out.weight.mul_(50)
    path = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


@pytest.fixture
def teachers(tmp_path) -> dict:
    return {"image": {"model": {"type": "vit_bert_tiny"}, "checkpoint": save_teacher(tmp_path, "image", ("images",), 1),
                      "datasets": ["images"]},
            "text": {"model": {"type": "vit_bert_tiny"}, "checkpoint": save_teacher(tmp_path, "text", ("corpus",), 2),
                     "datasets": ["corpus"]}}
