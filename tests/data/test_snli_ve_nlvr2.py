"""SNLI-VE (jsonl, one image) and NLVR2 (json lines, two images) with their edge cases."""
from __future__ import annotations

import pytest

from tests.data.conftest import write_image, write_jsonl
from unimm.config.errors import ConfigError
from unimm.registry import DATASETS


def snli_record(pair: str, image: str, hypothesis: str, gold: str) -> dict:
    return {"annotator_labels": [gold], "captionID": f"{image}.jpg#4", "gold_label": gold, "pairID": pair,
            "sentence1": "A man riding a horse.", "sentence1_binary_parse": "( A man )", "sentence1_parse": "(ROOT)",
            "sentence2": hypothesis, "sentence2_binary_parse": "( x )", "sentence2_parse": "(ROOT)",
            "Flickr30K_ID": image}


def write_snli_ve(root, records=None):
    records = records or [snli_record("p1", "1000", "A man is riding a horse.", "entailment"),
                          snli_record("p2", "1000", "A woman is sitting.", "contradiction"),
                          snli_record("p3", "2000", "A dog.", "-"),  # no consensus: skipped
                          snli_record("p4", "2000", "People are playing.", "neutral")]
    write_jsonl(root / "snli_ve_dev.jsonl", records, blank_line_after=2)
    for image in ("1000", "2000"):
        write_image(root / "flickr30k_images" / f"{image}.jpg")


def snli(root, tok, **kwargs):
    return DATASETS.build({"type": "snli_ve", "data_dir": str(root), "tokenizer": tok, **kwargs},
                          split="val", name="snli_ve")


@pytest.fixture()
def tok_node(wordpiece_dir):
    return {"type": "bert_tokenizer", "path": str(wordpiece_dir), "max_length": 16}


def test_snli_ve_labels_and_hypothesis(tmp_path, tok_node):
    write_snli_ve(tmp_path)
    ds = snli(tmp_path, tok_node)
    assert len(ds) == 3 and [ds[i]["label"] for i in range(3)] == [2, 0, 1]
    assert ds.info()["labels"] == ["contradiction", "neutral", "entailment"] and ds.info()["num_classes"] == 3
    tokens = ds.tokenizer.hf.convert_ids_to_tokens(ds[0]["input_ids"].tolist())
    assert tokens[:4] == ["[CLS]", "a", "man", "is"]
    batch = ds.collate([ds[0], ds[2]])
    assert batch["label"].tolist() == [2, 1] and batch["image"].shape == (2, 3, 24, 32)
    assert batch["example_id"] == ["p1", "p4"] and batch["task_type"] == "classification"


def test_snli_ve_bad_label_names_the_line(tmp_path, tok_node):
    write_snli_ve(tmp_path, [snli_record("p1", "1000", "A man.", "entailment"),
                             snli_record("p2", "1000", "A man.", "neutral"),
                             snli_record("p3", "1000", "A man.", "maybe")])
    with pytest.raises(ConfigError, match=r"snli_ve_dev.jsonl, line 4: field 'gold_label' is 'maybe'"):
        snli(tmp_path, tok_node)  # line 4: the blank line is line 3


def test_snli_ve_missing_image(tmp_path, tok_node):
    write_snli_ve(tmp_path)
    (tmp_path / "flickr30k_images" / "2000.jpg").unlink()
    with pytest.raises(ConfigError, match=r"missing image: .*2000.jpg"):
        snli(tmp_path, tok_node)


def nlvr2_record(identifier: str, sentence: str, label: str, **extra) -> dict:
    return {"validation": {}, "sentence": sentence, "left_url": "http://x/l.jpg", "writer": "103", "label": label,
            "right_url": "http://x/r.jpg", "synset": "dog", "query": "dogs", "identifier": identifier,
            "extra_validations": {}, **extra}


def test_nlvr2_pairs_of_images(tmp_path, tok_node):
    write_jsonl(tmp_path / "dev.json", [nlvr2_record("dev-850-0-0", "There are two dogs.", "True"),
                                        nlvr2_record("dev-850-0-1", "There are three dogs.", "False")])
    write_image(tmp_path / "images" / "dev" / "dev-850-0-img0.png", (32, 24))
    write_image(tmp_path / "images" / "dev" / "dev-850-0-img1.png", (20, 30))
    ds = DATASETS.build({"type": "nlvr2", "data_dir": str(tmp_path), "tokenizer": tok_node}, split="val", name="nlvr2")
    assert [ds[i]["label"] for i in range(2)] == [1, 0]
    batch = ds.collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 24, 32) and batch["image2"].shape == (2, 3, 30, 20)
    assert batch["pixel_mask2"].all() and batch["label"].tolist() == [1, 0]


def test_nlvr2_train_images_in_numbered_directories(tmp_path, tok_node):
    write_jsonl(tmp_path / "train.json", [nlvr2_record("train-10171-0-0", "One dog.", "True", directory=91)])
    for side in (0, 1):
        write_image(tmp_path / "images" / "train" / "91" / f"train-10171-0-img{side}.png")
    ds = DATASETS.build({"type": "nlvr2", "data_dir": str(tmp_path), "tokenizer": tok_node}, split="train",
                        name="nlvr2")
    assert ds.examples[0].image_paths[1] == tmp_path / "images" / "train" / "91" / "train-10171-0-img1.png"
    assert "image2" in ds[0]


def test_nlvr2_missing_files_listed(tmp_path, tok_node):
    with pytest.raises(ConfigError) as err:
        DATASETS.build({"type": "nlvr2", "data_dir": str(tmp_path), "tokenizer": tok_node}, split="test", name="n")
    assert str(tmp_path / "test1.json") in str(err.value) and str(tmp_path / "images" / "test1") in str(err.value)
