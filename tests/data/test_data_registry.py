"""Every data builder binds to config validation: typed keyword arguments, documented, checked."""
from __future__ import annotations

import inspect

import pytest

from unimm.config.validate import check_node, signature_of
from unimm.registry import DATASETS, PROCESSORS

DATA_DATASETS = [e for e in DATASETS.entries() if e.module.startswith("unimm.data.")]
DATA_PROCESSORS = [e for e in PROCESSORS.entries() if e.module.startswith("unimm.data.")]
EXPECTED_DATASETS = {"coco_detection", "visual_genome", "visual_genome_qa", "vqa2", "snli_ve", "glue",
                     "coco_captions", "karpathy_retrieval", "nlvr2", "image_folder", "text_corpus", "cifar",
                     "oxford_flowers102", "oxford_pets"}


def test_all_dataset_builders_are_registered():
    assert EXPECTED_DATASETS <= {e.name for e in DATA_DATASETS}
    assert {"bert_tokenizer", "roberta_tokenizer", "detr_train_transform", "detr_eval_transform",
            "mae_train_transform", "rand_augment", "normalize_image"} <= {e.name for e in DATA_PROCESSORS}


@pytest.mark.parametrize("entry", DATA_DATASETS + DATA_PROCESSORS, ids=lambda e: e.name)
def test_builders_are_named_typed_and_documented(entry):
    assert entry.builder.__name__ == entry.name
    params, var_kw, hints = signature_of(entry.builder)
    assert not var_kw and entry.doc
    assert all(name in hints for name in params), f"untyped arguments of {entry.name}"
    if entry in DATA_DATASETS:
        composes = "datasets" in [part.kind for part in entry.parts.values()]  # e.g. train_extended reads no files itself
        assert {"split", "name"} | (set() if composes else {"data_dir"}) <= set(params)
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
        assert "Returns:" in inspect.getdoc(entry.builder)


def errors_of(node, registry=DATASETS):
    errors: list[str] = []
    check_node(node, registry, "datasets.x", errors, runtime=())
    return errors


def test_typical_nodes_validate():
    tok = {"type": "bert_tokenizer", "path": "data/vocab", "max_length": 40}
    assert errors_of({"type": "vqa2", "data_dir": "data/vqa2", "tokenizer": tok, "answer_vocab_size": 10,
                      "train_transform": {"type": "vl_train_transform", "size": 64, "max_size": 96},
                      "eval_transform": {"type": "vl_eval_transform", "size": 64}}) == []
    assert errors_of({"type": "coco_detection", "data_dir": "data/coco", "max_samples": None,
                      "train_transform": {"type": "detr_train_transform", "scales": [96, 128]},
                      "split_names": {"train": "train2017"}}) == []
    assert errors_of({"type": "glue", "data_dir": "data/glue", "task": "mnli", "mnli_dev": "mismatched",
                      "tokenizer": tok}) == []


def test_bad_nodes_are_reported_with_their_path():
    errors = errors_of({"type": "glue", "data_dir": "d", "task": "wnli", "tokenizer": "bert_tokenizer",
                        "max_sample": 3})
    assert any(e.startswith("datasets.x.task: 'wnli' is not one of") for e in errors)
    assert any("datasets.x.max_sample: unknown argument" in e and "max_samples" in e for e in errors)
    assert any("datasets.x.tokenizer.path: required" in e for e in errors)
    assert errors_of({"type": "coco_detection"}) == [
        "datasets.x.data_dir: required by datasets 'coco_detection'; set datasets.x.data_dir=..."]
