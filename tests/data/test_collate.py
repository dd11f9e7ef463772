"""Batching: images padded with a pixel mask, tokens with an attention mask, contract keys."""
from __future__ import annotations

import torch

from unimm.data.collate import collate_batch, pad_images, pad_tokens


def test_pad_images_masks_the_real_pixels():
    images, mask = pad_images([torch.ones(3, 4, 6), torch.full((3, 5, 2), 2.0)])
    assert images.shape == (2, 3, 5, 6) and mask.shape == (2, 5, 6) and mask.dtype == torch.bool
    assert mask[0].sum() == 24 and mask[0, :4, :6].all() and not mask[0, 4].any()
    assert mask[1].sum() == 10 and mask[1, :, :2].all() and not mask[1, :, 2:].any()
    assert images[0, :, 4].abs().sum() == 0 and images[1, :, :, 2:].abs().sum() == 0
    assert (images[1, :, :, :2] == 2).all()


def test_pad_tokens():
    ids, mask = pad_tokens([torch.tensor([2, 5, 3]), torch.tensor([2, 3])], pad_id=0)
    assert ids.tolist() == [[2, 5, 3], [2, 3, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]


def test_collate_batch_follows_the_key_contract():
    samples = [
        {"image": torch.zeros(3, 2, 3), "image2": torch.zeros(3, 4, 1), "input_ids": torch.tensor([1, 7, 2]),
         "token_type_ids": torch.tensor([0, 0, 0]), "mlm_labels": torch.tensor([-100, 7, -100]), "label": 1,
         "answer_scores": torch.tensor([0.0, 1.0]), "target": {"boxes": torch.zeros(0, 4)}, "answers": ["a", "b"]},
        {"image": torch.zeros(3, 4, 1), "image2": torch.zeros(3, 2, 2), "input_ids": torch.tensor([1, 2]),
         "token_type_ids": torch.tensor([0, 0]), "mlm_labels": torch.tensor([-100, -100]), "label": 0,
         "answer_scores": torch.tensor([1 / 3, 0.0]), "target": {"boxes": torch.ones(1, 4)}, "answers": ["c"]},
    ]
    batch = collate_batch(samples, "vqa2", "vqa", pad_id=9)
    assert batch["dataset_name"] == "vqa2" and batch["task_type"] == "vqa"
    assert batch["image"].shape == (2, 3, 4, 3) and batch["pixel_mask"].shape == (2, 4, 3)
    assert batch["image2"].shape == (2, 3, 4, 2) and batch["pixel_mask2"][1].sum() == 4
    assert batch["input_ids"].tolist() == [[1, 7, 2], [1, 2, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["mlm_labels"].tolist() == [[-100, 7, -100], [-100, -100, -100]]
    assert batch["label"].tolist() == [1, 0] and batch["answer_scores"].shape == (2, 2)
    assert [t["boxes"].shape[0] for t in batch["targets"]] == [0, 1]
    assert batch["answers"] == [["a", "b"], ["c"]]
