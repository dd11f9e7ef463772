"""Tiny cases of MoMo's models: pre-training objectives of every modality and the downstream heads."""
from __future__ import annotations

import torch

from tests.models.conftest import VOCAB
from tests.models.part_cases.common import Case, build

INFO = {"images": {"task_type": "classification", "num_classes": 3},
        "corpus": {"task_type": "text_pretraining", "vocab_size": VOCAB},
        "pairs": {"task_type": "image_text", "vocab_size": VOCAB},
        "sst2": {"task_type": "text_classification", "num_classes": 2, "vocab_size": VOCAB}}
PRETRAINING = {"images": {"objectives": ["mim"]}, "corpus": {"objectives": ["mlm"]},
               "pairs": {"objectives": ["cmm", "contrastive", "itm"]}}
MOMO_NODE = {"type": "momo", "pretraining": PRETRAINING, "decoder_size": 16, "decoder_layers": 1,
             "decoder_heads": 2, "decoder_mlp_size": 32,
             "encoder": {"type": "shared_transformer", "hidden_size": 32, "num_layers": 2, "num_heads": 2,
                         "mlp_size": 64, "dropout": 0.0, "attention_dropout": 0.0},
             "image_tokenizer": {"type": "image_tokenizer", "image_size": 32, "patch_size": 16, "dropout": 0.0,
                                 "positions": "sincos"},
             "text_tokenizer": {"type": "text_tokenizer", "max_positions": 16, "dropout": 0.0}}


def batches() -> list[dict]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, VOCAB, (3, 8), generator=g)
    ids[:, 0], ids[:, -1] = 1, 2
    attention = torch.ones(3, 8, dtype=torch.long)
    special = torch.zeros(3, 8, dtype=torch.long)
    special[:, 0] = special[:, -1] = 1
    text = {"input_ids": ids, "attention_mask": attention, "special_tokens_mask": special,
            "token_type_ids": torch.zeros_like(ids)}
    image = torch.randn(3, 3, 32, 32, generator=g)
    return [{"dataset_name": "images", "image": image, "label": torch.tensor([0, 2, 1])},
            {"dataset_name": "corpus", **text},
            {"dataset_name": "pairs", "image": image, **text, "image_index": torch.tensor([0, 1, 2])},
            {"dataset_name": "sst2", **text, "label": torch.tensor([1, 0, 1])}]


def model_losses(model) -> list[torch.Tensor]:
    return [sum(model(batch)["losses"].values()) for batch in batches()]


CASES: dict[tuple[str, str], Case] = {
    ("models", "momo"): Case(lambda: build("models", MOMO_NODE, dataset_info=INFO), model_losses),
    ("models", "momo_tiny"): Case(lambda: build("models", {"type": "momo_tiny", "pretraining": PRETRAINING},
                                                dataset_info=INFO), model_losses),
    ("models", "momo_small"): Case(
        lambda: build("models", {"type": "momo_small", "image_size": 32, "pretraining": PRETRAINING},
                      dataset_info=INFO), model_losses),
    ("models", "momo_base"): Case(lambda: build("models", {"type": "momo_base", "pretraining": PRETRAINING},
                                                dataset_info=INFO), meta=True),
    ("models", "momo_large"): Case(lambda: build("models", {"type": "momo_large", "pretraining": PRETRAINING},
                                                 dataset_info=INFO), meta=True),
}
