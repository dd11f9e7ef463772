"""VQAv2 questions + annotations: vocabulary from train, soft scores, answers outside the vocabulary."""
from __future__ import annotations

import json

import pytest
import torch

from tests.data.conftest import write_image, write_json
from unimm.config.errors import ConfigError
from unimm.interfaces import Dataset
from unimm.registry import DATASETS

QUESTIONS = {
    "train2014": [(9, "How many dogs are there?", 90), (9, "What color is the circle?", 91),
                  (25, "Is there a cat?", 250)],
    "val2014": [(30, "What color is the square?", 500), (30, "Is it big?", 501)],
    "test2015": [(40, "Is there a man?", 900)],
}
ANSWERS = {
    90: ["2"] * 4 + ["two"] * 3 + ["3"] * 2 + ["Two."],
    91: ["red"] * 6 + ["Red"] * 2 + ["dark red", "maroon"],
    250: ["yes"] * 9 + ["no"],
    500: ["purple"] * 10,  # never seen in train: outside the vocabulary
    501: ["yes"] * 2 + ["no"] * 8,
}


def write_vqa2(root, image_root=None, splits=("train2014", "val2014", "test2015")):
    image_root = image_root or root
    for split in splits:
        write_json(root / f"v2_OpenEnded_mscoco_{split}_questions.json", {
            "info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "license": {}, "data_subtype": split,
            "questions": [{"image_id": i, "question": q, "question_id": qid} for i, q, qid in QUESTIONS[split]]})
        for image_id in {i for i, _, _ in QUESTIONS[split]}:
            write_image(image_root / split / f"COCO_{split}_{image_id:012d}.jpg")
        if split.startswith("test"):
            continue
        write_json(root / f"v2_mscoco_{split}_annotations.json", {
            "info": {}, "license": {}, "data_subtype": split, "annotations": [
                {"question_type": "how many" if ANSWERS[qid][0].isdigit() else "what", "multiple_choice_answer": ANSWERS[qid][0], "image_id": i,
                 "answer_type": "number" if ANSWERS[qid][0].isdigit() else "other", "question_id": qid,
                 "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                             for k, a in enumerate(ANSWERS[qid])]}
                for i, _, qid in QUESTIONS[split]]})


def build(root, tokenizer, split="train", **kwargs):
    node = {"type": "vqa2", "data_dir": str(root), "tokenizer": tokenizer, "answer_vocab_size": 4, **kwargs}
    return DATASETS.build(node, split=split, name="vqa2")


@pytest.fixture()
def tok_node(wordpiece_dir):
    return {"type": "bert_tokenizer", "path": str(wordpiece_dir), "max_length": 16}


def test_vocabulary_is_top_k_of_normalised_train_answers(tmp_path, tok_node):
    write_vqa2(tmp_path)
    ds = build(tmp_path, tok_node)
    assert isinstance(ds, Dataset) and ds.task_type == "vqa" and len(ds) == 3
    assert ds.info()["answer_vocab"] == ["yes", "2", "red", "3"]  # counts 9, 8, 8 (tie: alphabetical), 2
    assert ds.info()["num_answers"] == 4 and ds.info()["vocab_size"] == ds.tokenizer.vocab_size


def test_soft_scores_follow_normalisation(tmp_path, tok_node):
    write_vqa2(tmp_path)
    ds = build(tmp_path, tok_node)
    sample = ds[0]
    assert sample["answer_scores"].tolist() == pytest.approx([0.0, 1.0, 0.0, 2 / 3])  # "two"/"Two." count as "2"
    assert sample["answers"] == ANSWERS[90] and sample["question_id"] == 90 and sample["image_id"] == 9
    assert ds[1]["answer_scores"].tolist() == pytest.approx([0.0, 0.0, 1.0, 0.0])
    tokens = ds.tokenizer.hf.convert_ids_to_tokens(sample["input_ids"].tolist())
    assert tokens[:4] == ["[CLS]", "how", "many", "dog"] and ds.tokenizer.unk_id not in sample["input_ids"].tolist()


def test_val_uses_the_train_vocabulary_and_answers_outside_it_score_nothing(tmp_path, tok_node):
    write_vqa2(tmp_path)
    ds = build(tmp_path, tok_node, split="val")
    assert ds.info()["answer_vocab"] == ["yes", "2", "red", "3"]
    outside = ds[0]
    assert outside["answer_scores"].sum() == 0 and outside["answers"] == ["purple"] * 10
    assert ds[1]["answer_scores"].tolist() == pytest.approx([2 / 3, 0.0, 0.0, 0.0])  # "no" is outside


def test_test_split_has_no_answers(tmp_path, tok_node):
    write_vqa2(tmp_path)
    ds = build(tmp_path, tok_node, split="test")
    sample = ds[0]
    assert sample["answers"] == [] and sample["answer_scores"].tolist() == [0.0] * 4
    assert sample["answer_type"] == "" and sample["question_type"] == ""  # not annotated


def test_answer_vocab_file_and_image_dir(tmp_path, tok_node):
    write_vqa2(tmp_path / "vqa2", image_root=tmp_path / "coco")
    (tmp_path / "vqa2" / "answers.txt").write_text("yes\nno\n\nTwo\n")
    ds = build(tmp_path / "vqa2", tok_node, split="val", image_dir=str(tmp_path / "coco"),
               answer_vocab_file="answers.txt")
    assert ds.info()["answer_vocab"] == ["yes", "no", "2"]
    assert ds[1]["answer_scores"].tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert ds.questions[0].image_path == tmp_path / "coco" / "val2014" / "COCO_val2014_000000000030.jpg"


def test_collate_and_official_prediction_format(tmp_path, tok_node):
    write_vqa2(tmp_path)
    ds = build(tmp_path, tok_node)
    batch = ds.collate([ds[0], ds[2]])
    assert batch["image"].shape == (2, 3, 24, 32) and batch["pixel_mask"].shape == (2, 24, 32)
    assert batch["input_ids"].shape == batch["attention_mask"].shape and batch["answer_scores"].shape == (2, 4)
    assert batch["question_id"].tolist() == [90, 250] and batch["task_type"] == "vqa"
    assert batch["answer_type"] == ["number", "other"]  # from the annotations' answer_type
    assert batch["question_type"] == ["how many", "what"]  # ... and question_type
    assert (batch["input_ids"][batch["attention_mask"] == 0] == ds.tokenizer.pad_id).all()
    logits = torch.tensor([[0.0, 5.0, 0.0, 0.0], [9.0, 0.0, 0.0, 0.0]])
    assert ds.format_predictions(batch, {"logits": logits}) == [{"question_id": 90, "answer": "2"},
                                                                {"question_id": 250, "answer": "yes"}]


def test_missing_files_are_listed_together(tmp_path, tok_node):
    write_vqa2(tmp_path, splits=("val2014",))
    (tmp_path / "v2_mscoco_val2014_annotations.json").unlink()
    with pytest.raises(ConfigError) as err:
        build(tmp_path, tok_node, split="val")
    assert err.value.problems == [f"missing file: {tmp_path / name}" for name in
                                  ("v2_mscoco_val2014_annotations.json", "v2_mscoco_train2014_annotations.json")]
    assert "visualqa.org" in str(err.value)


def test_malformed_annotation_and_missing_image(tmp_path, tok_node):
    write_vqa2(tmp_path)
    path = tmp_path / "v2_mscoco_train2014_annotations.json"
    path.write_text(path.read_text().replace('"answer": "maroon"', '"answr": "maroon"'))
    with pytest.raises(ConfigError, match=r"annotations\[1\]\.answers\[9\]: field 'answer' is missing"):
        build(tmp_path, tok_node)
    write_vqa2(tmp_path)
    (tmp_path / "train2014" / "COCO_train2014_000000000025.jpg").unlink()
    with pytest.raises(ConfigError, match="COCO_train2014_000000000025.jpg"):
        build(tmp_path, tok_node)


def test_the_dataset_pickles_for_worker_processes(tmp_path, tok_node):
    import pickle

    write_vqa2(tmp_path)
    ds = build(tmp_path, tok_node, train_transform={"type": "vl_train_transform", "size": 16})
    copy = pickle.loads(pickle.dumps(ds))
    assert torch.equal(copy[0]["input_ids"], ds[0]["input_ids"]) and copy.info() == ds.info()


def test_the_metric_sees_the_raw_answers_and_scores_the_results_file_strings(tmp_path, tok_node, monkeypatch):
    from unimm.data.vqa_normalize import vqa_accuracy as official_accuracy
    from unimm.metrics.vqa_accuracy import vqa_accuracy

    monkeypatch.setitem(ANSWERS, 501, ["Yes"] * 10)  # unanimous, not in normal form
    write_vqa2(tmp_path)
    ds = build(tmp_path, tok_node, split="val")
    batch = ds.collate([ds[1]])
    assert batch["answers"] == [["Yes"] * 10]  # as annotated, not normalised
    assert batch["answer_scores"].tolist() == [[1.0, 0.0, 0.0, 0.0]]  # the training target normalises: "yes"
    logits = torch.tensor([[5.0, 0.0, 0.0, 0.0]])  # predicts the vocabulary's "yes"
    metric = vqa_accuracy(ds, name="vqa2")
    metric.update(batch, {"logits": logits})
    # the official evaluation compares unanimous answers exactly: "yes" is not "Yes"
    assert metric.compute()["vqa_accuracy"] == 0.0
    results = ds.format_predictions(batch, {"logits": logits})
    assert results == [{"question_id": 501, "answer": "yes"}]
    assert official_accuracy(results[0]["answer"], ANSWERS[501]) == 0.0  # the results file scores the same


def test_annotations_of_unlisted_questions_or_without_ten_answers_are_reported(tmp_path, tok_node, caplog):
    write_vqa2(tmp_path)
    path = tmp_path / "v2_mscoco_val2014_annotations.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["answers"] = data["annotations"][0]["answers"][:3]
    data["annotations"].append({**data["annotations"][1], "question_id": 999})
    path.write_text(json.dumps(data))
    with caplog.at_level("WARNING", logger="unimm"):
        build(tmp_path, tok_node, split="val")
    first = data["annotations"][0]["question_id"]
    assert "1 annotations of a question id the questions file does not list, ignored (ids 999)" in caplog.text
    assert f"1 annotations with another number of answers than VQAv2's 10, kept (ids {first})" in caplog.text
    with pytest.raises(ConfigError, match="another number of answers"):
        build(tmp_path, tok_node, split="val", strict=True)
