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


def test_negative_texts_rank_each_caption_first_against_captions_of_other_pictures(tiny_benchmark):
    """METER's retrieval fine-tuning (draw_false_text=15): the own caption first, then K drawn captions,
    never one of the sample's own picture; only captions are read for them, never pictures."""
    ds = DATASETS.build(node(tiny_benchmark, mlm_probability=0.0, negative_texts=5), split="train", name="coco")
    assert ds.info()["negative_texts"] == 5
    texts = {c.text: c.image_index for c in ds.base.captions}
    decode = ds.base.tokenizer.hf.decode
    drawn_images = set()
    for start in range(0, 24, 4):
        samples = [ds[i] for i in range(start, start + 4)]
        batch = ds.collate(samples)
        ids, mask = batch["rank_input_ids"], batch["rank_attention_mask"]
        assert ids.shape[:2] == (4, 6) and mask.shape == ids.shape
        for i, sample in enumerate(samples):
            own = sample["input_ids"]
            torch.testing.assert_close(ids[i, 0, :len(own)], own)
            assert int(mask[i, 0].sum()) == len(own) and not ids[i, 0, len(own):].any()
            for k in range(1, 6):
                n = int(mask[i, k].sum())
                text = decode(ids[i, k, :n].tolist(), skip_special_tokens=True)
                matches = {image for caption, image in texts.items() if caption.lower() == text}
                assert matches and sample["image_index"] not in matches, (start, i, k, text)
                drawn_images |= matches
    assert len(drawn_images) > 10  # drawn across the dataset, not from a few neighbours
    evaluated = DATASETS.build(node(tiny_benchmark, mlm_probability=0.0, negative_texts=3), split="val", name="coco")
    first, second = (evaluated.collate([evaluated[i] for i in range(4)]) for _ in range(2))
    assert torch.equal(first["rank_input_ids"], second["rank_input_ids"])  # fixed draws off the train split


def test_negative_texts_need_a_dataset_of_captions(tiny_benchmark):
    ds = DATASETS.build(node(tiny_benchmark, itm=False, mlm_probability=0.0, negative_texts=2), split="train",
                        name="coco")  # ranking alone is a valid objective
    assert "itm_label" not in ds.collate([ds[0], ds[1]]) and "rank_input_ids" in ds.collate([ds[0], ds[1]])
    base = ds.base
    del base.captions
    from unimm.data.image_text_pretraining import ImageTextPretraining

    with pytest.raises(ConfigError, match="does not list its captions"):
        ImageTextPretraining(base, "coco", 0.0, True, None, negative_texts=2)
