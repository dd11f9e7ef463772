"""A plain-text corpus as MLM + next-sentence-prediction samples."""
from __future__ import annotations

import pytest
import torch

from unimm.config.errors import ConfigError
from unimm.data.text_corpus import make_pairs, read_documents
from unimm.registry import DATASETS

CORPUS = """the red circle is left of the blue square .
the blue square is big .
a green triangle is small .


two dogs are playing .
the man is riding a horse .

what a great movie .
"""


def test_documents_are_separated_by_blank_lines(tmp_path):
    (tmp_path / "train.txt").write_text(CORPUS)
    docs = read_documents(tmp_path / "train.txt")
    assert [len(d) for d in docs] == [3, 2, 1] and docs[1][0] == "two dogs are playing ."


def test_pairs_are_seeded_and_random_partners_come_from_other_documents(tmp_path):
    (tmp_path / "train.txt").write_text(CORPUS)
    docs = read_documents(tmp_path / "train.txt")
    pairs = make_pairs(docs, 0.5, seed=3)
    assert pairs == make_pairs(docs, 0.5, seed=3) and len(pairs) == 6
    doc_of = {s: d for d, doc in enumerate(docs) for s in doc}
    for first, second, is_next in pairs:
        if is_next:
            assert docs[doc_of[first]].index(second) == docs[doc_of[first]].index(first) + 1
        else:
            assert doc_of[second] != doc_of[first]
    always_next = make_pairs(docs, 1.0, seed=0)
    assert [p[2] for p in always_next] == [1, 1, 0, 1, 0, 0]  # last sentences get random partners


def test_single_document_needs_three_sentences():
    with pytest.raises(ConfigError, match="too small"):
        make_pairs([["one .", "two ."]], 0.5, seed=0)
    pairs = make_pairs([["a .", "b .", "c ."]], 0.0, seed=0)
    assert all(second not in (first, nxt) for (first, second, _), nxt in zip(pairs, ["b .", "c .", None]))


def test_samples_have_mlm_labels_and_is_next(tmp_path, wordpiece_dir):
    (tmp_path / "val.txt").write_text(CORPUS)
    node = {"type": "text_corpus", "data_dir": str(tmp_path), "mlm_probability": 0.3,
            "tokenizer": {"type": "bert_tokenizer", "path": str(wordpiece_dir), "max_length": 24}}
    ds = DATASETS.build(node, split="val", name="corpus")
    assert len(ds) == 6 and ds.task_type == "text_pretraining"
    sample = ds[0]
    assert torch.equal(sample["mlm_labels"], ds[0]["mlm_labels"])  # fixed masks outside train
    segments = sample["token_type_ids"]
    assert segments[0] == 0 and segments[-1] == 1
    chosen = sample["mlm_labels"] != -100
    first, second, _ = ds.pairs[0]
    original = ds.tokenizer.encode(first, second)["input_ids"]
    assert chosen.any() and torch.equal(sample["mlm_labels"][chosen], original[chosen])
    assert torch.equal(sample["input_ids"][~chosen], original[~chosen])
    batch = ds.collate([ds[i] for i in range(4)])
    assert batch["mlm_labels"].shape == batch["input_ids"].shape
    assert (batch["mlm_labels"][batch["attention_mask"] == 0] == -100).all()
    assert set(batch["is_next"].tolist()) <= {0, 1}
    no_nsp = DATASETS.build({**node, "next_sentence": False}, split="val", name="corpus")
    assert len(no_nsp) == 6 and no_nsp[0]["is_next"] == -1 and (no_nsp[0]["token_type_ids"] == 0).all()


def test_probability_zero_leaves_clean_ids_and_marks_special_tokens(tmp_path, wordpiece_dir):
    """MoMo masks by itself: the corpus gives clean ids and where [CLS] / [SEP] are."""
    (tmp_path / "train.txt").write_text(CORPUS)
    node = {"type": "text_corpus", "data_dir": str(tmp_path), "mlm_probability": 0.0, "next_sentence": False,
            "tokenizer": {"type": "bert_tokenizer", "path": str(wordpiece_dir), "max_length": 24}}
    ds = DATASETS.build(node, split="train", name="corpus")
    for index in range(len(ds)):
        sample = ds[index]
        encoded = ds.tokenizer.encode(ds.pairs[index][0])
        assert torch.equal(sample["input_ids"], encoded["input_ids"]) and (sample["mlm_labels"] == -100).all()
        assert torch.equal(sample["special_tokens_mask"], encoded["special_tokens_mask"])
        assert sample["special_tokens_mask"][0] == 1 and sample["special_tokens_mask"][-1] == 1
    batch = ds.collate([ds[i] for i in range(4)])
    assert (batch["special_tokens_mask"][batch["attention_mask"] == 0] == 1).all()  # padding is special too


def test_masking_rates(wordpiece_dir):
    from unimm.data.masking import mask_tokens

    ids = torch.arange(5, 4005)
    special = torch.zeros_like(ids)
    special[0] = special[-1] = 1
    corrupted, labels = mask_tokens(ids, special, mask_id=4, vocab_size=5000, probability=0.15,
                                    generator=torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert abs(chosen.float().mean().item() - 0.15) < 0.02 and not chosen[0] and not chosen[-1]
    assert torch.equal(labels[chosen], ids[chosen])
    masked = (corrupted == 4) & chosen
    assert abs(masked.sum().item() / chosen.sum().item() - 0.8) < 0.06
    assert torch.equal(corrupted[~chosen], ids[~chosen])
