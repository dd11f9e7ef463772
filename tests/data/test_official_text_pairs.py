"""GLUE, SNLI-VE and NLVR2 as distributed: hand-written fixtures in the official layouts and formats
(tests/assets/official: ``glue_data/``, ``flickr30k/flickr30k-images/``, test splits without labels),
the official submission files, and predict runs of the UniT configs on them."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO
from tests.data.conftest import write_image, write_jsonl
from unimm.config.errors import ConfigError
from unimm.data.glue import GlueDataset, GlueExample
from unimm.registry import DATASETS

OFFICIAL = REPO / "tests" / "assets" / "official"
GLUE = OFFICIAL / "glue"  # the documented name; the fixture folder is glue_data/, as GLUE's download script writes
FLICKR = OFFICIAL / "flickr30k" / "flickr30k_images"  # likewise: the archive unpacks to flickr30k-images/


@pytest.fixture()
def tok_node(wordpiece_dir):
    return {"type": "bert_tokenizer", "path": str(wordpiece_dir), "max_length": 32}


@pytest.fixture()
def unimm_log(caplog, monkeypatch):
    """caplog, also after a run's setup_logging stopped the 'unimm' logger from propagating."""
    monkeypatch.setattr(logging.getLogger("unimm"), "propagate", True)
    caplog.set_level(logging.INFO, logger="unimm")
    return caplog


def glue(tok, task, split, **kwargs):
    return DATASETS.build({"type": "glue", "data_dir": str(GLUE), "task": task, "tokenizer": tok, **kwargs},
                          split=split, name=task)


def snli_ve(tok, split, **kwargs):
    node = {"type": "snli_ve", "data_dir": str(OFFICIAL / "snli_ve"), "image_dir": str(FLICKR), "tokenizer": tok}
    return DATASETS.build({**node, **kwargs}, split=split, name="snli_ve")


def nlvr2(tok, split, data_dir=OFFICIAL / "nlvr2"):
    return DATASETS.build({"type": "nlvr2", "data_dir": str(data_dir), "tokenizer": tok}, split=split, name="nlvr2")


def logits_for(labels, chosen):
    """``[B, C]`` logits whose arg-max is each of ``chosen`` (label names)."""
    out = torch.zeros(len(chosen), len(labels))
    for row, name in enumerate(chosen):
        out[row, labels.index(name)] = 3.0
    return out


# ----------------------------------------------------------------------------- GLUE readers

@pytest.mark.parametrize("task, split, mnli_dev, file, count, counts", [
    ("sst2", "train", "matched", "SST-2/train.tsv", 6, {"0": 3, "1": 3}),
    ("sst2", "val", "matched", "SST-2/dev.tsv", 4, {"0": 1, "1": 3}),
    ("sst2", "test", "matched", "SST-2/test.tsv", 5, {}),
    ("qnli", "train", "matched", "QNLI/train.tsv", 4, {"entailment": 2, "not_entailment": 2}),
    ("qnli", "val", "matched", "QNLI/dev.tsv", 4, {"entailment": 2, "not_entailment": 2}),
    ("qnli", "test", "matched", "QNLI/test.tsv", 3, {}),
    ("qqp", "val", "matched", "QQP/dev.tsv", 4, {"0": 3, "1": 1}),
    ("qqp", "test", "matched", "QQP/test.tsv", 3, {}),
    ("mnli", "train", "matched", "MNLI/train.tsv", 6, {"contradiction": 1, "entailment": 3, "neutral": 2}),
    ("mnli", "val", "matched", "MNLI/dev_matched.tsv", 4, {"contradiction": 2, "entailment": 1, "neutral": 1}),
    ("mnli", "val", "mismatched", "MNLI/dev_mismatched.tsv", 4,
     {"contradiction": 2, "entailment": 1, "neutral": 1}),
    ("mnli", "test", "matched", "MNLI/test_matched.tsv", 3, {}),
    ("mnli", "test", "mismatched", "MNLI/test_mismatched.tsv", 3, {}),
])
def test_glue_reads_the_download_folder_and_says_which_splits_have_labels(tok_node, task, split, mnli_dev, file,
                                                                          count, counts):
    ds = glue(tok_node, task, split, mnli_dev=mnli_dev)
    assert not GLUE.exists() and ds.source == OFFICIAL / "glue_data" / file
    assert len(ds) == count
    assert ds.has_labels is (split != "test")
    assert ds.label_counts() == counts
    if split == "test":
        assert [ex.label for ex in ds.examples] == [-1] * count
        assert [ex.example_id for ex in ds.examples] == [str(i) for i in range(count)]  # the index / id column


def test_glue_alias_is_logged_and_the_documented_name_wins(tok_node, tmp_path, unimm_log):
    glue(tok_node, "sst2", "val")
    assert f"{GLUE} does not exist; reading {OFFICIAL / 'glue_data'}" in unimm_log.text
    shutil.copytree(OFFICIAL / "glue_data" / "SST-2", tmp_path / "glue" / "SST-2")
    shutil.copytree(OFFICIAL / "glue_data" / "QNLI", tmp_path / "glue_data" / "SST-2")  # never read: glue/ exists
    ds = DATASETS.build({"type": "glue", "data_dir": str(tmp_path / "glue"), "task": "sst2", "tokenizer": tok_node},
                        split="val", name="sst2")
    assert ds.source == tmp_path / "glue" / "SST-2" / "dev.tsv" and len(ds) == 4


def test_glue_texts_keep_their_quotes(tok_node):
    train = glue(tok_node, "sst2", "train")
    assert train.examples[5].text_a == 'a " good movie " , and a great first film '
    test = glue(tok_node, "sst2", "test")
    assert test.examples[4].text_a == 'lately , " vaguely interesting , but it \'s just too too much .'


def test_qqp_malformed_train_line_fails_or_is_skipped_and_reported(tok_node, unimm_log):
    with pytest.raises(ConfigError, match=r"QQP/train.tsv, line 5: 4 tab-separated fields, the header has 6 "
                                          r"\(first missing field: question2\).*skip_bad_lines=true"):
        glue(tok_node, "qqp", "train")
    unimm_log.clear()
    ds = glue(tok_node, "qqp", "train", skip_bad_lines=True)
    assert len(ds) == 5 and "201841" not in [ex.example_id for ex in ds.examples]
    assert ds.label_counts() == {"0": 3, "1": 2}
    warnings = [r.getMessage() for r in unimm_log.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "dataset 'qqp'" in warnings[0] and str(OFFICIAL / "glue_data" / "QQP" / "train.tsv") in warnings[0]
    assert "1 lines whose field count differs from the header, skipped (skip_bad_lines) (ids line 5)" in warnings[0]
    with pytest.raises(ConfigError, match=r"datasets.qqp: .*QQP/train.tsv: 1 lines whose field count differs"):
        glue(tok_node, "qqp", "train", skip_bad_lines=True, strict=True)


# ----------------------------------------------------------------------------- GLUE predictions

def test_glue_rows_carry_the_index_and_the_label_string(tok_node):
    sst2 = glue(tok_node, "sst2", "test")
    batch = sst2.collate([sst2[0], sst2[3]])
    rows = sst2.format_predictions(batch, {"logits": torch.tensor([[0.2, 0.1], [-1.0, 2.0]])})
    assert rows == [{"index": "0", "prediction": "0"}, {"index": "3", "prediction": "1"}]
    mnli = glue(tok_node, "mnli", "test")
    batch = mnli.collate([mnli[i] for i in range(3)])
    labels = ["contradiction", "entailment", "neutral"]
    rows = mnli.format_predictions(batch, {"logits": logits_for(labels, ["neutral", "contradiction", "entailment"])})
    assert [r["prediction"] for r in rows] == ["neutral", "contradiction", "entailment"]
    with pytest.raises(ValueError, match=r"'logits' must be \[B, 3\].*got shape \(3, 2\)"):
        mnli.format_predictions(batch, {"logits": torch.zeros(3, 2)})
    with pytest.raises(KeyError, match="no 'logits'"):
        mnli.format_predictions(batch, {"scores": torch.zeros(3, 3)})


@pytest.mark.parametrize("shape", [(3,), (3, 1)])
def test_stsb_rows_read_the_regression_score(bert_tok, shape):
    examples = [GlueExample(str(i), "A man.", "A dog.", float("nan")) for i in range(3)]
    ds = GlueDataset(examples, "stsb", bert_tok, "stsb")
    assert ds.task_type == "text_regression" and not ds.has_labels and ds.label_counts() == {}
    scores = torch.tensor([4.56789, 0.1, 2.0]).reshape(shape)
    rows = ds.format_predictions({"example_id": ["0", "1", "2"]}, {"logits": scores})
    assert rows == [{"index": "0", "prediction": 4.568}, {"index": "1", "prediction": 0.1},
                    {"index": "2", "prediction": 2.0}]


def test_stsb_label_counts_are_score_bands(bert_tok):
    examples = [GlueExample(str(i), "A.", "B.", score) for i, score in enumerate([0.0, 0.5, 3.2, 4.0, 5.0])]
    ds = GlueDataset(examples, "stsb", bert_tok, "stsb")
    assert ds.has_labels and ds.label_counts() == {"0-1": 2, "1-2": 0, "2-3": 0, "3-4": 1, "4-5": 2}


def test_glue_submission_is_the_servers_tsv_in_file_order(tok_node, tmp_path):
    sst2 = glue(tok_node, "sst2", "test")
    rows = [{"index": "1", "prediction": "1"}, {"index": "3", "prediction": "0"},  # rank 1 of 2
            {"index": "0", "prediction": "0"}, {"index": "2", "prediction": "1"}, {"index": "4", "prediction": "1"}]
    assert sst2.write_submission(rows, tmp_path, "test") == [tmp_path / "glue" / "SST-2.tsv"]
    assert (tmp_path / "glue" / "SST-2.tsv").read_text() == "index\tprediction\n0\t0\n1\t1\n2\t1\n3\t0\n4\t1\n"

    qnli = glue(tok_node, "qnli", "test")
    rows = [{"index": str(i), "prediction": p} for i, p in enumerate(["entailment", "not_entailment", "entailment"])]
    [path] = qnli.write_submission(rows, tmp_path, "test")
    assert path.read_text() == "index\tprediction\n0\tentailment\n1\tnot_entailment\n2\tentailment\n"

    qqp = glue(tok_node, "qqp", "test")
    [path] = qqp.write_submission([{"index": str(i), "prediction": "1"} for i in (2, 0, 1)], tmp_path, "test")
    assert path == tmp_path / "glue" / "QQP.tsv" and path.read_text() == "index\tprediction\n0\t1\n1\t1\n2\t1\n"

    for mnli_dev, name in (("matched", "MNLI-m"), ("mismatched", "MNLI-mm")):
        mnli = glue(tok_node, "mnli", "test", mnli_dev=mnli_dev)
        rows = [{"index": str(i), "prediction": p} for i, p in enumerate(["neutral", "entailment", "contradiction"])]
        assert mnli.write_submission(rows, tmp_path, "test") == [tmp_path / "glue" / f"{name}.tsv"]
        assert (tmp_path / "glue" / f"{name}.tsv").read_text() == (
            "index\tprediction\n0\tneutral\n1\tentailment\n2\tcontradiction\n")
    assert sorted(p.name for p in (tmp_path / "glue").iterdir()) == ["MNLI-m.tsv", "MNLI-mm.tsv", "QNLI.tsv",
                                                                     "QQP.tsv", "SST-2.tsv"]


def test_stsb_submission_has_three_decimals(bert_tok, tmp_path):
    ds = GlueDataset([GlueExample(str(i), "A.", "B.", float("nan")) for i in range(2)], "stsb", bert_tok, "stsb")
    [path] = ds.write_submission([{"index": "1", "prediction": 0.1}, {"index": "0", "prediction": 4.568}],
                                 tmp_path, "test")
    assert path == tmp_path / "glue" / "STS-B.tsv" and path.read_text() == "index\tprediction\n0\t4.568\n1\t0.100\n"


def test_glue_submission_of_another_split_and_of_some_examples(tok_node, tmp_path, unimm_log):
    dev = glue(tok_node, "sst2", "val")
    [path] = dev.write_submission([{"index": "2", "prediction": "1"}, {"index": "0", "prediction": "0"}],
                                  tmp_path, "val")
    assert path == tmp_path / "glue_val" / "SST-2.tsv"  # never mistaken for the server's file
    assert path.read_text() == "index\tprediction\n0\t0\n2\t1\n"
    assert "2 of 4 examples" in unimm_log.text and "GLUE server refuses an incomplete file" in unimm_log.text
    with pytest.raises(ValueError, match="index '9'"):
        dev.write_submission([{"index": "9", "prediction": "1"}], tmp_path, "val")


# ----------------------------------------------------------------------------- SNLI-VE

@pytest.mark.parametrize("split, count, counts", [
    ("train", 6, {"contradiction": 2, "neutral": 2, "entailment": 2}),
    ("val", 4, {"contradiction": 1, "neutral": 1, "entailment": 2}),
    ("test", 5, {"contradiction": 2, "neutral": 1, "entailment": 2}),  # SNLI-VE's test split has gold labels
])
def test_snli_ve_splits_are_labelled_and_read_the_flickr_archive_folder(tok_node, split, count, counts):
    ds = snli_ve(tok_node, split)
    assert len(ds) == count and ds.has_labels and ds.label_counts() == counts
    assert not FLICKR.exists()
    folder = OFFICIAL / "flickr30k" / "flickr30k-images"
    images = {"train": ["3416050480", "2267923837"], "val": ["1000092795"], "test": ["1001465944", "1007129816"]}
    assert ds.image_files() == [(folder / f"{i}.jpg", None) for i in images[split]]
    assert ds.examples[0].example_id == {"train": "3416050480.jpg#0r1n", "val": "1000092795.jpg#1r1e",
                                         "test": "1001465944.jpg#0r1c"}[split]


def test_snli_ve_default_image_folder_also_takes_the_archive_name(tok_node, tmp_path):
    shutil.copy(OFFICIAL / "snli_ve" / "snli_ve_dev.jsonl", tmp_path / "snli_ve_dev.jsonl")
    (tmp_path / "flickr30k-images").mkdir()
    shutil.copy(OFFICIAL / "flickr30k" / "flickr30k-images" / "1000092795.jpg", tmp_path / "flickr30k-images")
    ds = DATASETS.build({"type": "snli_ve", "data_dir": str(tmp_path), "tokenizer": tok_node}, split="val",
                        name="snli_ve")
    assert ds.image_files() == [(tmp_path / "flickr30k-images" / "1000092795.jpg", None)]
    assert ds[0]["image"].shape == (3, 10, 12)


def test_snli_ve_lines_without_consensus_are_reported(tok_node, tmp_path, unimm_log):
    records = [json.loads(line) for line in (OFFICIAL / "snli_ve" / "snli_ve_dev.jsonl").read_text().splitlines()]
    records[2] = {**records[2], "gold_label": "-"}  # as in SNLI itself; SNLI-VE's generator drops these
    write_jsonl(tmp_path / "snli_ve_dev.jsonl", records)
    node = {"data_dir": str(tmp_path), "image_dir": str(FLICKR)}
    assert len(snli_ve(tok_node, "val", **node)) == 3
    assert "1 lines with gold_label '-' (no annotator consensus), skipped (ids line 3)" in unimm_log.text
    with pytest.raises(ConfigError, match="gold_label '-'"):
        snli_ve(tok_node, "val", strict=True, **node)


def test_snli_ve_predictions_and_their_file(tok_node, tmp_path):
    ds = snli_ve(tok_node, "test")
    batch = ds.collate([ds[3], ds[0]])
    rows = ds.format_predictions(batch, {"logits": logits_for(ds.labels, ["entailment", "neutral"])})
    assert rows == [{"pairID": "1007129816.jpg#3r1e", "prediction": "entailment"},
                    {"pairID": "1001465944.jpg#0r1c", "prediction": "neutral"}]
    rows += [{"pairID": ds.examples[i].example_id, "prediction": "contradiction"} for i in (4, 1, 2)]
    [path] = ds.write_submission(rows, tmp_path, "test")
    assert path == tmp_path / "snli_ve_test_predictions.jsonl"
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"pairID": "1001465944.jpg#0r1c", "prediction": "neutral"},
        {"pairID": "1001465944.jpg#0r1e", "prediction": "contradiction"},
        {"pairID": "1007129816.jpg#3r1n", "prediction": "contradiction"},
        {"pairID": "1007129816.jpg#3r1e", "prediction": "entailment"},
        {"pairID": "1007129816.jpg#3r1c", "prediction": "contradiction"},
    ]


# ----------------------------------------------------------------------------- NLVR2

@pytest.mark.parametrize("split, count, counts, pictures", [
    ("train", 4, {"False": 2, "True": 2}, 6), ("val", 4, {"False": 1, "True": 3}, 4),
    ("test", 4, {"False": 2, "True": 2}, 4),  # test1, the public test set: labelled
])
def test_nlvr2_splits_and_their_pictures(tok_node, split, count, counts, pictures):
    ds = nlvr2(tok_node, split)
    assert len(ds) == count and ds.has_labels and ds.label_counts() == counts
    files = ds.image_files()
    assert len(files) == pictures and len({p for p, _ in files}) == pictures and all(s is None for _, s in files)
    assert all(p.is_file() for p, _ in files)
    if split == "train":
        assert files[0][0] == OFFICIAL / "nlvr2" / "images" / "train" / "91" / "train-10171-0-img0.png"
        assert files[-1][0] == OFFICIAL / "nlvr2" / "images" / "train" / "7" / "train-7-3-img1.png"


def test_nlvr2_hidden_test_file_without_labels(tok_node, tmp_path):
    records = [json.loads(line) for line in (OFFICIAL / "nlvr2" / "test1.json").read_text().splitlines()]
    shutil.copytree(OFFICIAL / "nlvr2" / "images" / "test1", tmp_path / "images" / "test1")
    write_jsonl(tmp_path / "test1.json", [{k: v for k, v in r.items() if k != "label"} for r in records])
    ds = nlvr2(tok_node, "test", tmp_path)
    assert not ds.has_labels and ds.label_counts() == {} and [ex.label for ex in ds.examples] == [-1] * 4
    write_jsonl(tmp_path / "test1.json", [records[0]] + [{k: v for k, v in r.items() if k != "label"}
                                                          for r in records[1:]])
    with pytest.raises(ConfigError, match=r"test1.json: 3 of 4 examples have no label \(identifier test1-0-1-1, "
                                          r"test1-0-0-0, test1-0-0-1\) and the others have one"):
        nlvr2(tok_node, "test", tmp_path)


def test_nlvr2_predictions_are_the_csv_of_the_official_script(tok_node, tmp_path):
    ds = nlvr2(tok_node, "test")
    batch = ds.collate([ds[2], ds[0]])
    rows = ds.format_predictions(batch, {"logits": torch.tensor([[0.0, 1.0], [1.0, 0.0]])})
    assert rows == [{"identifier": "test1-0-0-0", "prediction": "True"},
                    {"identifier": "test1-0-1-0", "prediction": "False"}]
    rows += [{"identifier": "test1-0-0-1", "prediction": "False"}, {"identifier": "test1-0-1-1", "prediction": "True"}]
    [path] = ds.write_submission(rows, tmp_path, "test")
    assert path == tmp_path / "nlvr2_test_predictions.csv"
    text = path.read_text()
    assert text == "test1-0-1-0,False\ntest1-0-1-1,True\ntest1-0-0-0,True\ntest1-0-0-1,False\n"
    # what lil-lab/nlvr's nlvr2/eval/metrics.py does with it: every identifier, one prediction each
    predictions = dict(line.strip().split(",") for line in text.splitlines() if line)
    labels = {json.loads(line)["identifier"]: json.loads(line)["label"]
              for line in (OFFICIAL / "nlvr2" / "test1.json").read_text().splitlines()}
    assert predictions.keys() == labels.keys()
    assert sum(predictions[i].lower() == labels[i].lower() for i in labels) == 4  # these rows are the answers


def test_mixed_split_is_refused_for_snli_ve_style_data_too(tok_node, tmp_path):
    # the shared dataset refuses any split mixing labelled and unlabelled examples
    from unimm.data.image_text_classification import ImageTextClassification, LabelledPair
    from unimm.data.snli_ve import SNLI_VE_LABELS, SUBMISSION

    image = write_image(tmp_path / "1.jpg")
    examples = [LabelledPair("a", (image,), "A dog.", 2), LabelledPair("b", (image,), "A cat.", -1)]
    with pytest.raises(ConfigError, match=r"x.jsonl: 1 of 2 examples have no label \(pairID b\)"):
        ImageTextClassification(examples, SNLI_VE_LABELS, None, None, "snli_ve", Path("x.jsonl"),
                                "classification", SUBMISSION)


# ----------------------------------------------------------------------------- runs of the UniT configs

def run_config(name: str, tiny_benchmark: Path, save_dir: Path, *extra: str) -> dict:
    from unimm import session

    overrides = [f"vars.data={OFFICIAL}", f"vars.tokenizer.path={tiny_benchmark}/shapes/vocab",
                 f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny", "model.type=unit_tiny",
                 "env.device=cpu", f"env.save_dir={save_dir}", "training.max_updates=2", "training.batch_size=2",
                 "evaluation.batch_size=2", "scheduler.warmup_steps=1", "checkpoint.init_from=null", *extra]
    cfg, text = session.prepare(REPO / "projects" / "unit" / "single_task" / f"{name}.yaml", overrides,
                                variant="shapes")
    return session.execute(cfg, text)


@pytest.mark.parametrize("config, extra, dataset, submission, count, labels", [
    ("sst2", (), "sst2", "glue/SST-2.tsv", 5, {"0", "1"}),
    ("mnli", ("datasets.mnli.mnli_dev=matched",), "mnli", "glue/MNLI-m.tsv", 3,
     {"entailment", "neutral", "contradiction"}),
    ("mnli", (), "mnli", "glue/MNLI-mm.tsv", 3, {"entailment", "neutral", "contradiction"}),  # the config's default
    ("snli_ve", (), "snli_ve", "snli_ve_test_predictions.jsonl", 5, {"entailment", "neutral", "contradiction"}),
], ids=["sst2", "mnli_matched", "mnli_mismatched", "snli_ve"])
def test_train_then_predict_the_test_split_writes_the_submission(tiny_benchmark, tmp_path, config, extra, dataset,
                                                                 submission, count, labels):
    results = run_config(config, tiny_benchmark, tmp_path, *extra)  # train_val: 2 updates, then the dev split
    assert f"{dataset}/accuracy" in results
    run_config(config, tiny_benchmark, tmp_path, *extra, "run_type=predict", "evaluation.split=test",
               "checkpoint.resume=true")
    folder = tmp_path / "predictions"
    rows = json.loads((folder / f"{dataset}_test.json").read_text())
    assert len(rows) == count and {r["prediction"] for r in rows} <= labels
    lines = (folder / submission).read_text().splitlines()
    if submission.endswith(".tsv"):
        assert lines[0] == "index\tprediction" and len(lines) == count + 1
        assert [line.split("\t")[0] for line in lines[1:]] == [str(i) for i in range(count)]
        assert {line.split("\t")[1] for line in lines[1:]} <= labels
    else:
        objects = [json.loads(line) for line in lines]
        expected = [json.loads(line)["pairID"] for line in (OFFICIAL / "snli_ve" / "snli_ve_test.jsonl").open()]
        assert [o["pairID"] for o in objects] == expected and {o["prediction"] for o in objects} <= labels


def test_scoring_a_test_split_without_labels_points_to_predict(tiny_benchmark, tmp_path):
    with pytest.raises(ConfigError, match="run_type=predict") as err:
        run_config("sst2", tiny_benchmark, tmp_path, "run_type=test")
    assert "datasets.sst2" in str(err.value) and "has no labels" in str(err.value)
