"""Tiny MoMo models, datasets' info and batches shared by the project's tests."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO
from unimm.plugins import import_builtins, load_user_dirs

VOCAB = 50
INFO = {"images": {"task_type": "classification", "num_classes": 3},
        "corpus": {"task_type": "text_pretraining", "vocab_size": VOCAB},
        "pairs": {"task_type": "image_text", "vocab_size": VOCAB},
        "sst2": {"task_type": "text_classification", "num_classes": 2, "vocab_size": VOCAB},
        "stsb": {"task_type": "text_regression", "num_classes": 1, "vocab_size": VOCAB},
        "vqa2": {"task_type": "vqa", "num_answers": 4, "num_classes": 4, "vocab_size": VOCAB},
        "retrieval": {"task_type": "retrieval", "vocab_size": VOCAB}}
PRETRAINING = {"images": {"objectives": ["mim"]}, "corpus": {"objectives": ["mlm"]},
               "pairs": {"objectives": ["cmm", "contrastive", "itm"]}}


@pytest.fixture(scope="session", autouse=True)
def momo_plugin():
    import_builtins()
    load_user_dirs([str(REPO / "projects" / "momo")])


def build(names=("images", "corpus", "pairs"), pretrain: bool = True, **options):
    """A momo_tiny over the named datasets; ``pretrain``: those of ``PRETRAINING`` pre-train, else all fine-tune."""
    from unimm.registry import MODELS

    pretraining = {n: PRETRAINING[n] for n in names if n in PRETRAINING and pretrain}
    node = {"type": "momo_tiny", "pretraining": pretraining or None, **options}
    torch.manual_seed(0)
    return MODELS.build(node, path="model", dataset_info={n: INFO[n] for n in names})


def image_batch(name: str = "images", batch_size: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"dataset_name": name, "image": torch.randn(batch_size, 3, 32, 32, generator=g),
            "label": torch.arange(batch_size) % 3}


def text_batch(name: str = "corpus", seed: int = 1) -> dict:
    """Three texts of 12, 9 and 5 tokens: [CLS] words [SEP], padded to 12."""
    g = torch.Generator().manual_seed(seed)
    lengths = [12, 9, 5]
    ids = torch.randint(5, VOCAB, (3, 12), generator=g)
    attention = torch.zeros(3, 12, dtype=torch.long)
    special = torch.ones(3, 12, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, 0], ids[row, n - 1], ids[row, n:] = 1, 2, 0
        attention[row, :n] = 1
        special[row, 1:n - 1] = 0
    return {"dataset_name": name, "input_ids": ids, "attention_mask": attention, "special_tokens_mask": special,
            "token_type_ids": torch.zeros_like(ids), "label": torch.tensor([0, 1, 1])}


def pair_batch(name: str = "pairs", image_index=(0, 1, 2)) -> dict:
    batch = {**image_batch(name), **text_batch(name)}
    batch["image_index"] = torch.tensor(image_index)
    return batch
