"""``image_text_pretraining``: METER's MLM and ITM fields over the benchmark's COCO captions.

ITM: exactly ``B // 2`` matched pairs in every batch (METER ``compute_itm``), the mismatched image of
another picture; MLM: 15% of the non-special tokens chosen, then 80 / 10 / 10, on a copy of the caption.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unimm.config.errors import ConfigError
from unimm.data.image_text_pretraining import itm_labels
from unimm.registry import DATASETS


def node(data: Path, **extra) -> dict:
    base = {"type": "coco_captions", "data_dir": str(data / "shapes" / "coco"),
            "tokenizer": {"type": "bert_tokenizer", "path": str(data / "shapes" / "vocab"), "max_length": 40},
            "train_transform": {"type": "clip_transform", "size": 32},
            "eval_transform": {"type": "clip_transform", "size": 32}}
    return {"type": "image_text_pretraining", "base": base, **extra}


@pytest.mark.parametrize("size", [1, 2, 5, 8, 9])
def test_itm_labels_match_exactly_half(size):
    for seed in range(20):
        labels = itm_labels(size, torch.Generator().manual_seed(seed))
        assert int(labels.sum()) == size // 2 and len(labels) == size


def test_itm_batches_are_balanced_and_mismatched_images_are_other_pictures(tiny_benchmark):
    ds = DATASETS.build(node(tiny_benchmark), split="train", name="coco")
    assert ds.task_type == "image_text_pretraining" and ds.info()["itm"] and ds.info()["mlm"]
    positions = torch.zeros(8)
    for start in range(0, 96, 8):
        samples = [ds[i] for i in range(start, start + 8)]
        batch = ds.collate(samples)
        labels = batch["itm_label"]
        assert int(labels.sum()) == 4  # exactly B // 2 matched
        positions += labels
        for i, sample in enumerate(samples):
            same = torch.equal(batch["itm_image"][i], sample["image"])
            assert same == bool(labels[i]), (start, i)
        assert torch.equal(batch["image"], torch.stack([s["image"] for s in samples]))  # MLM keeps the true image
    assert 0 < positions.min() and positions.max() < 12  # shuffled: no fixed position is always matched


def test_mlm_rates_on_a_copy_of_the_caption(tiny_benchmark):
    ds = DATASETS.build(node(tiny_benchmark, itm=False), split="train", name="coco")
    special = ds.special_ids
    chosen = candidates = masked = random = kept = 0
    for _ in range(15):  # fresh masks at every read of the train split
        for i in range(len(ds)):
            sample = ds[i]
            clean, corrupted, labels = sample["input_ids"], sample["mlm_input_ids"], sample["mlm_labels"]
            assert torch.equal(clean, ds.base[i]["input_ids"])  # ITM and the batch keep the clean caption
            pick = labels != -100
            assert not torch.isin(clean[pick], special).any()  # [CLS], [SEP] are never chosen
            assert torch.equal(labels[pick], clean[pick]) and torch.equal(corrupted[~pick], clean[~pick])
            candidates += int((~torch.isin(clean, special)).sum())
            chosen += int(pick.sum())
            masked += int((corrupted[pick] == ds.mask_id).sum())
            kept += int((corrupted[pick] == clean[pick]).sum())
            random += int(((corrupted[pick] != ds.mask_id) & (corrupted[pick] != clean[pick])).sum())
    assert chosen / candidates == pytest.approx(0.15, abs=0.02)
    assert masked / chosen == pytest.approx(0.8, abs=0.04)
    assert random / chosen == pytest.approx(0.1, abs=0.03)  # a random id may equal the original: counted as kept
    assert kept / chosen == pytest.approx(0.1, abs=0.03)


def test_evaluation_draws_are_fixed(tiny_benchmark):
    ds = DATASETS.build(node(tiny_benchmark), split="val", name="coco")
    first = ds.collate([ds[i] for i in range(6)])
    second = ds.collate([ds[i] for i in range(6)])
    for key in ("itm_label", "itm_image", "mlm_input_ids", "mlm_labels"):
        assert torch.equal(first[key], second[key]), key
    assert first["mlm_input_ids"].shape == first["input_ids"].shape


def test_misconfigurations_are_named(tiny_benchmark):
    with pytest.raises(ConfigError, match="turn one on"):
        DATASETS.build(node(tiny_benchmark, itm=False, mlm_probability=0.0), split="train", name="coco")
    masking = node(tiny_benchmark)
    masking["base"]["mlm_probability"] = 0.15
    ds = DATASETS.build(masking, split="train", name="coco")
    with pytest.raises(ConfigError, match="masks its captions itself"):
        ds[0]
