"""COCO captions and Karpathy-split retrieval."""
from __future__ import annotations

import pytest
import torch

from tests.data.conftest import write_image, write_json
from unimm.config.errors import ConfigError
from unimm.registry import DATASETS


def write_captions(root):
    write_json(root / "annotations" / "captions_val2017.json", {
        "info": {}, "licenses": [],
        "images": [{"id": 139, "file_name": "000000000139.jpg", "height": 24, "width": 32},
                   {"id": 285, "file_name": "000000000285.jpg", "height": 30, "width": 20}],
        "annotations": [{"image_id": 139, "id": 1, "caption": "A red circle left of a blue square. "},
                        {"image_id": 285, "id": 2, "caption": "Two dogs playing."},
                        {"image_id": 139, "id": 3, "caption": "The man is riding a horse."}]})
    write_image(root / "val2017" / "000000000139.jpg", (32, 24))
    write_image(root / "val2017" / "000000000285.jpg", (20, 30))


@pytest.fixture()
def tok_node(wordpiece_dir):
    return {"type": "bert_tokenizer", "path": str(wordpiece_dir), "max_length": 16}


def test_coco_captions_one_sample_per_caption(tmp_path, tok_node):
    write_captions(tmp_path)
    ds = DATASETS.build({"type": "coco_captions", "data_dir": str(tmp_path), "tokenizer": tok_node},
                        split="val", name="coco_caps")
    assert len(ds) == 3 and ds.task_type == "image_text"
    assert [(ds[i]["image_id"], ds[i]["image_index"]) for i in range(3)] == [(139, 0), (285, 1), (139, 0)]
    assert ds[0]["caption"] == "A red circle left of a blue square."
    batch = ds.collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 30, 32) and batch["pixel_mask"][1].sum() == 20 * 30
    assert batch["caption_id"].tolist() == [1, 2] and "mlm_labels" not in batch


def test_mlm_masking_is_fixed_per_sample_outside_train(tmp_path, tok_node):
    write_captions(tmp_path)
    node = {"type": "coco_captions", "data_dir": str(tmp_path), "tokenizer": tok_node, "mlm_probability": 0.3}
    ds = DATASETS.build(node, split="val", name="coco_caps")
    a, b = ds[0], ds[0]
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["mlm_labels"], b["mlm_labels"])
    masked = a["mlm_labels"] != -100
    assert masked.any() and not masked[0] and not masked[-1]  # never [CLS] / [SEP]
    original = ds.tokenizer.encode(ds.captions[0].text)["input_ids"]
    assert torch.equal(a["mlm_labels"][masked], original[masked])
    assert torch.equal(a["input_ids"][~masked], original[~masked])


def karpathy_image(imgid, split, sentences, filepath="val2014"):
    name = f"COCO_val2014_{imgid:012d}.jpg"
    return {"filepath": filepath, "sentids": [s[0] for s in sentences], "filename": name, "imgid": imgid,
            "split": split, "cocoid": 1000 + imgid,
            "sentences": [{"tokens": text.lower().split(), "raw": text, "imgid": imgid, "sentid": sid}
                          for sid, text in sentences]}


def write_karpathy(root):
    images = [karpathy_image(0, "test", [(0, "A red circle."), (1, "A circle that is red.")]),
              karpathy_image(1, "train", [(2, "Two dogs.")]),
              karpathy_image(2, "restval", [(3, "A man riding a horse.")]),
              karpathy_image(3, "test", [(4, "A blue square."), (5, "Blue square."), (6, "A square.")])]
    write_json(root / "dataset_coco.json", {"images": images, "dataset": "coco"})
    for i in range(4):
        write_image(root / "val2014" / f"COCO_val2014_{i:012d}.jpg")


def test_karpathy_train_takes_restval_and_gives_pairs(tmp_path, tok_node):
    write_karpathy(tmp_path)
    ds = DATASETS.build({"type": "karpathy_retrieval", "data_dir": str(tmp_path), "tokenizer": tok_node},
                        split="train", name="ret")
    assert ds.task_type == "retrieval" and [c.text for c in ds.captions] == ["Two dogs.", "A man riding a horse."]
    batch = ds.collate([ds[0], ds[1]])
    assert batch["image_index"].tolist() == [0, 1] and batch["text_image_index"].tolist() == [0, 1]
    assert batch["image_id"].tolist() == [1001, 1002]


def test_karpathy_eval_gives_each_image_with_all_its_captions(tmp_path, tok_node):
    write_karpathy(tmp_path)
    ds = DATASETS.build({"type": "karpathy_retrieval", "data_dir": str(tmp_path), "tokenizer": tok_node},
                        split="test", name="ret")
    assert len(ds) == 2 and ds.info() == {"vocab_size": ds.tokenizer.vocab_size, "num_images": 2, "num_captions": 5}
    batch = ds.collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 24, 32) and batch["image_index"].tolist() == [0, 1]
    assert batch["input_ids"].shape[0] == 5 and batch["attention_mask"].shape == batch["input_ids"].shape
    assert batch["text_image_index"].tolist() == [0, 0, 1, 1, 1]
    assert batch["captions"] == [["A red circle.", "A circle that is red."],
                                 ["A blue square.", "Blue square.", "A square."]]
    assert len(DATASETS.build({"type": "karpathy_retrieval", "data_dir": str(tmp_path), "tokenizer": tok_node,
                               "max_samples": 1}, split="test", name="ret")) == 1


def test_karpathy_pairs_give_every_image_with_every_caption(tmp_path, tok_node):
    """sample_per: pair (cross-encoders): sample k is image k // T with caption k % T."""
    write_karpathy(tmp_path)
    ds = DATASETS.build({"type": "karpathy_retrieval", "data_dir": str(tmp_path), "tokenizer": tok_node,
                         "sample_per": "pair"}, split="test", name="ret")
    assert ds.task_type == "retrieval_pairs" and len(ds) == 2 * 5
    assert ds.info() == {"vocab_size": ds.tokenizer.vocab_size, "num_images": 2, "num_captions": 5}
    batch = ds.collate([ds[k] for k in range(len(ds))])
    assert batch["image_index"].tolist() == [0] * 5 + [1] * 5
    assert batch["text_index"].tolist() == [0, 1, 2, 3, 4] * 2
    assert batch["text_image_index"].tolist() == [0, 0, 1, 1, 1] * 2
    torch.testing.assert_close(batch["image"][0], batch["image"][4])  # image 0 with each caption
    assert torch.equal(batch["input_ids"][1], batch["input_ids"][6])  # caption 1 with each image
    assert batch["input_ids"].shape[0] == 10 and batch["attention_mask"].shape == batch["input_ids"].shape
    with pytest.raises(IndexError):
        ds[10]


def test_karpathy_missing_image(tmp_path, tok_node):
    write_karpathy(tmp_path)
    (tmp_path / "val2014" / "COCO_val2014_000000000003.jpg").unlink()
    with pytest.raises(ConfigError, match="COCO_val2014_000000000003.jpg"):
        DATASETS.build({"type": "karpathy_retrieval", "data_dir": str(tmp_path), "tokenizer": tok_node},
                       split="test", name="ret")
