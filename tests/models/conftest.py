"""Small dataset_info (as the trainer passes it: task_type + info()) and batches of every UniT task
type, shared by the model tests and the UniT project's."""
from __future__ import annotations

import pytest
import torch

VOCAB = 50


def categories(n: int) -> list[dict]:
    return [{"id": 10 + i, "name": f"class{i}"} for i in range(n)]


@pytest.fixture
def dataset_info() -> dict[str, dict]:
    return {
        "coco": {"task_type": "detection", "categories": categories(5)},
        "vg": {"task_type": "detection", "categories": categories(6), "num_attributes": 7},
        "vqa2": {"task_type": "vqa", "answer_vocab": [f"a{i}" for i in range(11)], "num_answers": 11,
                 "vocab_size": VOCAB},
        "snli_ve": {"task_type": "classification", "num_classes": 3, "vocab_size": VOCAB},
        "sst2": {"task_type": "text_classification", "num_classes": 2, "vocab_size": VOCAB},
    }


def make_batches(batch_size: int = 2) -> dict[str, dict]:
    g = torch.Generator().manual_seed(0)
    image = torch.randn(batch_size, 3, 64, 80, generator=g)
    pixel_mask = torch.ones(batch_size, 64, 80, dtype=torch.bool)
    pixel_mask[-1, :, 60:] = False
    input_ids = torch.randint(1, VOCAB, (batch_size, 7), generator=g)
    attention_mask = torch.ones(batch_size, 7, dtype=torch.long)
    attention_mask[-1, 5:] = 0
    targets = [
        {"labels": torch.tensor([1, 4]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.6, 0.3, 0.2]]),
         "attributes": torch.tensor([[1, 2], [3, -1]]), "image_id": torch.tensor(1),
         "orig_size": torch.tensor([64, 60])},
        {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4),
         "attributes": torch.zeros(0, 2, dtype=torch.long), "image_id": torch.tensor(2),
         "orig_size": torch.tensor([64, 80])},
    ][:batch_size]
    image_inputs = {"image": image, "pixel_mask": pixel_mask}
    text_inputs = {"input_ids": input_ids, "attention_mask": attention_mask,
                   "token_type_ids": torch.zeros_like(input_ids)}
    return {
        "coco": {"dataset_name": "coco", "task_type": "detection", **image_inputs,
                 "targets": [{k: v for k, v in t.items() if k != "attributes"} for t in targets]},
        "vg": {"dataset_name": "vg", "task_type": "detection", **image_inputs, "targets": targets},
        "vqa2": {"dataset_name": "vqa2", "task_type": "vqa", **image_inputs, **text_inputs,
                 "answer_scores": torch.rand(batch_size, 11, generator=g)},
        "snli_ve": {"dataset_name": "snli_ve", "task_type": "classification", **image_inputs, **text_inputs,
                    "label": torch.tensor([0, 2])[:batch_size]},
        "sst2": {"dataset_name": "sst2", "task_type": "classification", **text_inputs,
                 "label": torch.tensor([0, 1])[:batch_size]},
    }


@pytest.fixture
def batches() -> dict[str, dict]:
    return make_batches()
