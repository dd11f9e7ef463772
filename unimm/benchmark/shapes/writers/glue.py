"""GLUE-style text tasks: ``glue/{SST-2,QNLI,QQP,MNLI,RTE}/*.tsv`` with GLUE's headers.

Files are tab separated without quoting, as GLUE ships them. Test files carry no labels
(GLUE's test sets are unlabelled), so baselines are measured on dev.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from unimm.benchmark.shapes import inference, text_tasks
from unimm.benchmark.shapes.sizes import BenchmarkSize
from unimm.benchmark.shapes.writers.files import BenchmarkFolder, rng_for

SPLITS = ("train", "dev", "test")
MNLI_TRAIN_HEADER = (
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
)
MNLI_SPLITS = (
    ("train", False, ("label1", "gold_label")),
    ("dev_matched", False, ("label1", "label2", "label3", "label4", "label5", "gold_label")),
    ("dev_mismatched", True, ("label1", "label2", "label3", "label4", "label5", "gold_label")),
    ("test_matched", False, ()),
    ("test_mismatched", True, ()),
)


def _rows(seed: int, task: str, split: str, count: int, make: Callable[[np.random.Generator], dict]) -> list[dict]:
    rng = rng_for(seed, f"glue-{task}-{split}")
    return [make(rng) for _ in range(count)]


def _write_simple(
    folder: BenchmarkFolder, seed: int, task: str, counts: tuple, make, columns: tuple, label: str
) -> dict:
    """SST-2, QNLI, RTE: train/dev with ``[index] columns label``, test with ``index columns``."""
    records = {}
    indexed = task != "SST-2"  # SST-2 train/dev have no index column
    for split, count in zip(SPLITS, counts):
        rows = _rows(seed, task, split, count, make)
        if split == "test":
            lines = [(i, *(r[c] for c in columns)) for i, r in enumerate(rows)]
            folder.write_tsv(f"glue/{task}/test.tsv", ("index",) + columns, lines)
            continue
        header = (("index",) if indexed else ()) + columns + ("label",)
        lines = [((i,) if indexed else ()) + tuple(r[c] for c in columns) + (r[label],) for i, r in enumerate(rows)]
        folder.write_tsv(f"glue/{task}/{split}.tsv", header, lines)
        records[split] = [(tuple(r[c] for c in columns), str(r[label])) for r in rows]
    return records


def _write_qqp(folder: BenchmarkFolder, seed: int, counts: tuple) -> dict:
    records, question_ids = {}, {}
    row_id = 0
    for split, count in zip(SPLITS, counts):
        rows = _rows(seed, "QQP", split, count, text_tasks.qqp_example)
        if split == "test":
            lines = [(i, r["question1"], r["question2"]) for i, r in enumerate(rows)]
            folder.write_tsv("glue/QQP/test.tsv", ("id", "question1", "question2"), lines)
            continue
        lines = []
        for r in rows:
            qid1 = question_ids.setdefault(r["question1"], len(question_ids) + 1)
            qid2 = question_ids.setdefault(r["question2"], len(question_ids) + 1)
            lines.append((row_id, qid1, qid2, r["question1"], r["question2"], r["is_duplicate"]))
            row_id += 1
        header = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
        folder.write_tsv(f"glue/QQP/{split}.tsv", header, lines)
        records[split] = [((r["question1"], r["question2"]), str(r["is_duplicate"])) for r in rows]
    return records


def _write_mnli(folder: BenchmarkFolder, seed: int, counts: tuple) -> dict:
    records, prompt_id = {}, 0
    for (split, mismatched, label_columns), prompts in zip(MNLI_SPLITS, counts):
        rng = rng_for(seed, f"glue-MNLI-{split}")
        lines, kept = [], []
        for _ in range(prompts):
            genre, premise, pairs = inference.mnli_prompt(rng, mismatched)
            prompt_id += 1
            for hypothesis, gold in pairs:
                row = [len(lines), prompt_id, f"{prompt_id}{gold[0]}", genre, inference.binary_parse(premise),
                       inference.binary_parse(hypothesis), inference.constituency_parse(premise),
                       inference.constituency_parse(hypothesis), premise, hypothesis]
                if len(label_columns) == 2:
                    row += [gold, gold]
                elif label_columns:
                    row += [gold, *inference.validator_labels(rng, gold), gold]
                lines.append(row)
                kept.append(((premise, hypothesis), gold))
        folder.write_tsv(f"glue/MNLI/{split}.tsv", MNLI_TRAIN_HEADER + label_columns, lines)
        if label_columns:
            records[split] = kept
    return records


def write_glue(folder: BenchmarkFolder, seed: int, size: BenchmarkSize) -> tuple[dict, dict]:
    """Write every GLUE-style task.

    Returns:
        ``(counts, records)``: rows per file for each task, and per task and labelled split a list
        of ``(texts, label)`` with ``texts`` a tuple of one or two strings.
    """
    records = {
        "SST-2": _write_simple(folder, seed, "SST-2", size.sst2, text_tasks.sst2_example, ("sentence",), "label"),
        "QNLI": _write_simple(
            folder, seed, "QNLI", size.qnli, text_tasks.qnli_example, ("question", "sentence"), "label"
        ),
        "QQP": _write_qqp(folder, seed, size.qqp),
        "RTE": _write_simple(folder, seed, "RTE", size.rte, inference.rte_example, ("sentence1", "sentence2"), "label"),
        "MNLI": _write_mnli(folder, seed, size.mnli),
    }
    counts = {
        "SST-2": dict(zip(SPLITS, size.sst2)),
        "QNLI": dict(zip(SPLITS, size.qnli)),
        "QQP": dict(zip(SPLITS, size.qqp)),
        "RTE": dict(zip(SPLITS, size.rte)),
        "MNLI": {split: 3 * n for (split, _, _), n in zip(MNLI_SPLITS, size.mnli)},
    }
    return counts, records
