"""The text datasets: GLUE-style TSVs with GLUE's headers, the corpus, and the WordPiece vocabulary."""
from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

TRAIN_DEV_HEADERS = {
    "SST-2": ["sentence", "label"],
    "QNLI": ["index", "question", "sentence", "label"],
    "QQP": ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
    "RTE": ["index", "sentence1", "sentence2", "label"],
}
TEST_HEADERS = {
    "SST-2": ["index", "sentence"],
    "QNLI": ["index", "question", "sentence"],
    "QQP": ["id", "question1", "question2"],
    "RTE": ["index", "sentence1", "sentence2"],
}
LABELS = {
    "SST-2": {"0", "1"},
    "QNLI": {"entailment", "not_entailment"},
    "QQP": {"0", "1"},
    "RTE": {"entailment", "not_entailment"},
}
MNLI_TEXT = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
             "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]


def _tsv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.mark.parametrize("task", sorted(TRAIN_DEV_HEADERS))
def test_glue_task_headers_and_labels(shapes_dir: Path, task: str) -> None:
    for split in ("train", "dev"):
        header, *rows = _tsv(shapes_dir / f"glue/{task}/{split}.tsv")
        assert header == TRAIN_DEV_HEADERS[task]
        assert rows and all(len(row) == len(header) for row in rows)
        labels = Counter(row[-1] for row in rows)
        assert set(labels) == LABELS[task]
        assert max(labels.values()) < len(rows)  # never a single class
    header, *rows = _tsv(shapes_dir / f"glue/{task}/test.tsv")
    assert header == TEST_HEADERS[task] and all(len(row) == len(header) for row in rows)


def test_mnli_files(shapes_dir: Path) -> None:
    expected = {
        "train": MNLI_TEXT + ["label1", "gold_label"],
        "dev_matched": MNLI_TEXT + ["label1", "label2", "label3", "label4", "label5", "gold_label"],
        "dev_mismatched": MNLI_TEXT + ["label1", "label2", "label3", "label4", "label5", "gold_label"],
        "test_matched": MNLI_TEXT,
        "test_mismatched": MNLI_TEXT,
    }
    genres = {}
    for split, columns in expected.items():
        header, *rows = _tsv(shapes_dir / f"glue/MNLI/{split}.tsv")
        assert header == columns and all(len(row) == len(columns) for row in rows)
        genres[split] = {row[3] for row in rows}
        if "gold_label" in columns:
            thirds = {label: len(rows) // 3 for label in ("entailment", "neutral", "contradiction")}
            assert Counter(row[-1] for row in rows) == thirds
    assert genres["train"] == genres["dev_matched"] and not genres["train"] & genres["dev_mismatched"]


def test_corpus_documents(shapes_dir: Path) -> None:
    for split, documents in (("train", 40), ("val", 10)):
        text = (shapes_dir / f"corpus/{split}.txt").read_text()
        blocks = text.strip("\n").split("\n\n")
        assert len(blocks) == documents
        assert all(3 <= len(block.splitlines()) <= 8 for block in blocks)
        assert all(line.strip() for block in blocks for line in block.splitlines())


def _all_texts(root: Path) -> list[str]:
    """Every sentence, question and answer the benchmark wrote."""
    def load(relative: str):
        return json.loads((root / relative).read_text())

    texts = [line for split in ("train", "val") for line in (root / f"corpus/{split}.txt").read_text().splitlines()]
    texts = [line for line in texts if line]
    texts += [c["caption"] for c in load("coco/annotations/captions_train2017.json")["annotations"]]
    questions = load("vqa2/v2_OpenEnded_mscoco_train2014_questions.json")["questions"]
    texts += [q["question"] for q in questions]
    annotations = load("vqa2/v2_mscoco_train2014_annotations.json")["annotations"]
    texts += [a["answer"] for entry in annotations for a in entry["answers"]]
    texts += [qa["question"] + " " + qa["answer"] for entry in load("vg/question_answers.json") for qa in entry["qas"]]
    for line in (root / "snli_ve/snli_ve_train.jsonl").read_text().splitlines():
        row = json.loads(line)
        texts += [row["sentence1"], row["sentence2"]]
    texts += [json.loads(line)["sentence"] for line in (root / "nlvr2/train.json").read_text().splitlines()]
    for task, columns in (("SST-2", 1), ("QNLI", 3), ("QQP", 5), ("RTE", 3)):
        rows = _tsv(root / f"glue/{task}/train.tsv")[1:]
        texts += [cell for row in rows for cell in row[:columns] if not cell.isdigit()]
    texts += [cell for row in _tsv(root / "glue/MNLI/dev_mismatched.tsv")[1:] for cell in row[8:10]]
    return texts


def test_vocabulary_loads_with_auto_tokenizer_and_covers_every_word(shapes_dir: Path) -> None:
    from transformers import AutoTokenizer

    folder = shapes_dir / "vocab"
    lines = (folder / "vocab.txt").read_text().splitlines()
    assert lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(lines) == len(set(lines))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    encoded = tokenizer("The Red circle is LEFT of the blue square.", "How many stars?")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens == ["[CLS]", "the", "red", "circle", "is", "left", "of", "the", "blue", "square", ".",
                      "[SEP]", "how", "many", "stars", "?", "[SEP]"]
    assert tokenizer.unk_token_id == 1 and tokenizer.pad_token_id == 0 and tokenizer.mask_token_id == 4
    unknown = tokenizer.unk_token_id
    texts = _all_texts(shapes_dir)
    ids = tokenizer(texts)["input_ids"]
    failed = [text for text, row in zip(texts, ids) if unknown in row]
    missing = sorted({t for text in failed for t in re.findall(r"\w+|[^\w\s]", text.lower())} - set(lines))
    assert missing == []
    words = {w for text in texts for w in re.findall(r"[a-z]+", text.lower())}
    assert words <= set(lines)  # every word is one token, never split into pieces
    assert tokenizer("unseen zebra")["input_ids"].count(unknown) == 0  # other words fall back to pieces
