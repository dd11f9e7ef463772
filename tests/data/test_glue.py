"""GLUE TSVs with the official headers and quirks: no quoting, header-less CoLA, test files."""
from __future__ import annotations

import math

import pytest

from unimm.config.errors import ConfigError
from unimm.registry import DATASETS

MNLI_HEAD = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
             "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
STSB_HEAD = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]


def mnli_row(i, a, b, *labels):
    return [str(i), "31193", f"{i}n", "government", "( x )", "( y )", "(ROOT)", "(ROOT)", a, b, *labels]


# task -> file -> rows (the first row is the header where the official file has one)
FILES = {
    "cola": {
        "train.tsv": [["gj04", "1", "", "Our friends won't buy this analysis."],
                      ["gj04", "0", "*", "They drank the pub."]],
        "dev.tsv": [["gj04", "1", "", "The sailors rode the breeze clear of the rocks."]],
        "test.tsv": [["index", "sentence"], ["0", "Bill whistled past the house."]],
    },
    "sst2": {
        "train.tsv": [["sentence", "label"], ['"good movie" indeed ', "1"], ['a " boring film', "0"],
                      ["great first picture", "1"]],
        "dev.tsv": [["sentence", "label"], ["it 's a charming journey .", "1"]],
        "test.tsv": [["index", "sentence"], ["0", "uneasy mishmash of styles"]],
    },
    "mrpc": {
        "train.tsv": [["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                      ["1", "702876", "702977", "Amrozi accused his brother.", "Referring to him, Amrozi accused."]],
        "dev.tsv": [["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], ["0", "1", "2", "A man.", "A dog."]],
        "test.tsv": [["index", "#1 ID", "#2 ID", "#1 String", "#2 String"], ["0", "1", "2", "Red.", "Blue."]],
    },
    "qqp": {
        "train.tsv": [["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                      ["133273", "213221", "213222", "How is the life?", "How is life?", "1"]],
        "dev.tsv": [["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                    ["7", "1", "2", "Why?", "How?", "0"]],
        "test.tsv": [["id", "question1", "question2"], ["0", "Why?", "Why not?"]],
    },
    "stsb": {
        "train.tsv": [[*STSB_HEAD, "score"], ["0", "main-captions", "MSRvid", "2012test", "0001", "none", "none",
                                             "A plane is taking off.", "An air plane is taking off.", "5.000"]],
        "dev.tsv": [[*STSB_HEAD, "score"], ["0", "g", "f", "y", "1", "n", "n", "A man.", "A dog.", "0.500"]],
        "test.tsv": [STSB_HEAD, ["0", "g", "f", "y", "1", "n", "n", "A girl.", "A boy."]],
    },
    "mnli": {
        "train.tsv": [[*MNLI_HEAD, "label1", "gold_label"], mnli_row(0, "You and I.", "We two.", "neutral", "neutral")],
        "dev_matched.tsv": [[*MNLI_HEAD, *[f"label{i}" for i in range(1, 6)], "gold_label"],
                            mnli_row(0, "A.", "B.", *["entailment"] * 5, "entailment")],
        "dev_mismatched.tsv": [[*MNLI_HEAD, *[f"label{i}" for i in range(1, 6)], "gold_label"],
                               mnli_row(0, "C.", "D.", *["contradiction"] * 5, "contradiction"),
                               mnli_row(1, "E.", "F.", *["neutral"] * 5, "neutral")],
        "test_matched.tsv": [MNLI_HEAD, mnli_row(0, "G.", "H.")],
    },
    "qnli": {
        "train.tsv": [["index", "question", "sentence", "label"],
                      ["0", "What came into force?", "The constitution came into force.", "entailment"]],
        "dev.tsv": [["index", "question", "sentence", "label"], ["0", "Who?", "Nobody.", "not_entailment"]],
        "test.tsv": [["index", "question", "sentence"], ["0", "What?", "That."]],
    },
    "rte": {
        "train.tsv": [["index", "sentence1", "sentence2", "label"],
                      ["0", "No weapons.", "Weapons found.", "not_entailment"]],
        "dev.tsv": [["index", "sentence1", "sentence2", "label"], ["0", "A.", "B.", "entailment"]],
        "test.tsv": [["index", "sentence1", "sentence2"], ["0", "C.", "D."]],
    },
}
FOLDERS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B", "mnli": "MNLI",
           "qnli": "QNLI", "rte": "RTE"}
FIRST_TRAIN = {  # task -> (text_a, text_b, label) of the first train example
    "cola": ("Our friends won't buy this analysis.", None, 1), "sst2": ('"good movie" indeed ', None, 1),
    "mrpc": ("Amrozi accused his brother.", "Referring to him, Amrozi accused.", 1),
    "qqp": ("How is the life?", "How is life?", 1),
    "stsb": ("A plane is taking off.", "An air plane is taking off.", 5.0),
    "mnli": ("You and I.", "We two.", 2), "qnli": ("What came into force?", "The constitution came into force.", 0),
    "rte": ("No weapons.", "Weapons found.", 1),
}


def write_glue(root, task, overrides=None):
    for name, rows in {**FILES[task], **(overrides or {})}.items():
        path = root / FOLDERS[task] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(("\t".join(r) if isinstance(r, list) else r) + "\n" for r in rows))


def build(root, task, tok, split="train", **kwargs):
    node = {"type": "glue", "data_dir": str(root), "task": task, "tokenizer": tok, **kwargs}
    return DATASETS.build(node, split=split, name=f"glue_{task}")


@pytest.fixture()
def tok_node(wordpiece_dir):
    return {"type": "bert_tokenizer", "path": str(wordpiece_dir), "max_length": 32}


@pytest.mark.parametrize("task", sorted(FIRST_TRAIN))
def test_every_task_reads_its_official_columns(tmp_path, tok_node, task):
    write_glue(tmp_path, task)
    ds = build(tmp_path, task, tok_node)
    first = ds.examples[0]
    assert (first.text_a, first.text_b, first.label) == FIRST_TRAIN[task]
    sample = ds[0]
    pair = FIRST_TRAIN[task][1] is not None
    assert (sample["token_type_ids"] == 1).any() == pair
    assert ds.info()["num_classes"] == {"stsb": 1, "mnli": 3}.get(task, 2)
    test = build(tmp_path, task, tok_node, split="test")
    assert len(test) == 1 and (math.isnan(test.examples[0].label) if task == "stsb" else test.examples[0].label == -1)


def test_cola_has_no_header_in_train_and_dev(tmp_path, tok_node):
    write_glue(tmp_path, "cola")
    ds = build(tmp_path, "cola", tok_node)
    assert [e.label for e in ds.examples] == [1, 0] and len(build(tmp_path, "cola", tok_node, split="val")) == 1


def test_stsb_is_regression(tmp_path, tok_node):
    write_glue(tmp_path, "stsb")
    ds = build(tmp_path, "stsb", tok_node, split="val")
    assert ds.task_type == "text_regression"
    batch = ds.collate([ds[0]])
    assert batch["label"].dtype.is_floating_point and batch["label"].tolist() == [0.5]


def test_mnli_matched_and_mismatched_dev(tmp_path, tok_node):
    write_glue(tmp_path, "mnli")
    matched = build(tmp_path, "mnli", tok_node, split="val")
    mismatched = build(tmp_path, "mnli", tok_node, split="val", mnli_dev="mismatched")
    assert [e.label for e in matched.examples] == [1]
    assert [e.label for e in mismatched.examples] == [0, 2]
    assert matched.info()["labels"] == ["contradiction", "entailment", "neutral"]


def test_quotes_are_text_and_empty_lines_are_skipped(tmp_path, tok_node):
    rows = [["sentence", "label"], ['a " boring film', "0"], "", ['"quoted"', "1"], ["good movie", "1"]]
    write_glue(tmp_path, "sst2", {"train.tsv": rows})
    ds = build(tmp_path, "sst2", tok_node)
    assert [(e.text_a, e.label) for e in ds.examples] == [('a " boring film', 0), ('"quoted"', 1), ("good movie", 1)]
    batch = ds.collate([ds[i] for i in range(3)])
    assert batch["label"].tolist() == [0, 1, 1] and batch["input_ids"].shape[0] == 3
    assert batch["task_type"] == "text_classification"


def test_a_short_line_names_file_line_and_field(tmp_path, tok_node):
    rows = [["index", "sentence1", "sentence2", "label"], ["0", "A.", "B.", "entailment"], ["1", "A line cut short."]]
    write_glue(tmp_path, "rte", {"train.tsv": rows})
    with pytest.raises(ConfigError, match=r"RTE/train.tsv, line 3: 2 tab-separated fields.*first missing field: "
                                          r"sentence2.*skip_bad_lines"):
        build(tmp_path, "rte", tok_node)
    assert len(build(tmp_path, "rte", tok_node, skip_bad_lines=True)) == 1


def test_an_unknown_label_names_the_line(tmp_path, tok_node):
    rows = [["index", "question", "sentence", "label"], ["0", "Q?", "S.", "entailment"], ["1", "Q?", "S.", "yes"]]
    write_glue(tmp_path, "qnli", {"train.tsv": rows})
    with pytest.raises(ConfigError, match=r"QNLI/train.tsv, line 3: field 'label' is 'yes'"):
        build(tmp_path, "qnli", tok_node)


def test_missing_file_and_unknown_task(tmp_path, tok_node):
    with pytest.raises(ConfigError, match=r"(?s)gluebenchmark.*missing file: .*SST-2/dev.tsv"):
        build(tmp_path, "sst2", tok_node, split="val")
    with pytest.raises(ConfigError, match="task: 'wnli' is not one of 'sst2'"):
        build(tmp_path, "wnli", tok_node)
