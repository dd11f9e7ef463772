"""GLUE tasks from the official TSV files, read with GLUE's quirks.

GLUE's TSVs are not CSV: quotes are ordinary characters (a sentence may open a quote it
never closes), so rows are split on tabs only (``csv.QUOTE_NONE``). Every file has a header
row except CoLA's train and dev files, whose columns are fixed by position. Test files have
no labels (label -1, or NaN for STS-B). Empty lines are skipped.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.data.collate import collate_batch
from unimm.data.common import take
from unimm.data.files import read_text, require_files, split_file
from unimm.data.problems import RecordProblems
from unimm.data.tokenizers import TextTokenizer
from unimm.registry import DATASETS

GlueTaskName = Literal["sst2", "qnli", "qqp", "mnli", "rte", "mrpc", "stsb", "cola"]


@dataclass(frozen=True)
class GlueTask:
    """Where a task's fields are: header names of the text and label columns, label values."""

    folder: str
    text_a: str
    text_b: str | None
    label: str
    labels: tuple[str, ...] | None  # None: a regression score
    id_column: str = "index"
    headerless_columns: tuple[str, ...] | None = None  # column names of train / dev without a header


ENTAILMENT = ("entailment", "not_entailment")
GLUE_TASKS: dict[str, GlueTask] = {
    "cola": GlueTask("CoLA", "sentence", None, "label", ("0", "1"),
                     headerless_columns=("source", "label", "original_label", "sentence")),
    "sst2": GlueTask("SST-2", "sentence", None, "label", ("0", "1")),
    "mrpc": GlueTask("MRPC", "#1 String", "#2 String", "Quality", ("0", "1")),
    "qqp": GlueTask("QQP", "question1", "question2", "is_duplicate", ("0", "1"), id_column="id"),
    "stsb": GlueTask("STS-B", "sentence1", "sentence2", "score", None),
    "mnli": GlueTask("MNLI", "sentence1", "sentence2", "gold_label", ("contradiction", "entailment", "neutral")),
    "qnli": GlueTask("QNLI", "question", "sentence", "label", ENTAILMENT),
    "rte": GlueTask("RTE", "sentence1", "sentence2", "label", ENTAILMENT),
}
GLUE_SPLITS = {"train": "train.tsv", "val": "dev.tsv", "test": "test.tsv"}
MNLI_SPLITS = {"matched": {"train": "train.tsv", "val": "dev_matched.tsv", "test": "test_matched.tsv"},
               "mismatched": {"train": "train.tsv", "val": "dev_mismatched.tsv", "test": "test_mismatched.tsv"}}


@dataclass(frozen=True)
class GlueExample:
    example_id: str
    text_a: str
    text_b: str | None
    label: float | int  # -1 (or NaN for a score) when the file has no label


def read_glue_tsv(path: Path, task: GlueTask, skip_bad_lines: bool = False,
                  problems: RecordProblems | None = None) -> list[GlueExample]:
    """Parse one GLUE TSV file (see the module docstring for the quirks); lines skipped by
    ``skip_bad_lines`` are noted in ``problems`` (reported once by the caller)."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows = [(reader.line_num, row) for row in reader]
    rows = [(n, row) for n, row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = list(rows[0][1])
    if task.headerless_columns and task.text_a not in header:
        header, body = list(task.headerless_columns), rows
    else:
        body = rows[1:]
    for needed in (task.text_a, task.text_b):
        if needed is not None and needed not in header:
            raise ConfigError(f"{path}, line {rows[0][0]}: the header has no column '{needed}' "
                              f"(columns: {', '.join(header)}); is this the {task.folder} file?")
    examples = []
    for number, row in body:
        if len(row) != len(header):
            if skip_bad_lines:
                if problems is not None:
                    problems.note("lines whose field count differs from the header, skipped (skip_bad_lines)",
                                  f"line {number}")
                continue
            missing = header[len(row)] if len(row) < len(header) else "(none: too many)"
            raise ConfigError(f"{path}, line {number}: {len(row)} tab-separated fields, the header has "
                              f"{len(header)} (first missing field: {missing}); fix the line or set "
                              "skip_bad_lines=true")
        examples.append(parse_row(dict(zip(header, row)), task, f"{path}, line {number}", len(examples)))
    return examples


def parse_row(row: dict[str, str], task: GlueTask, where: str, position: int) -> GlueExample:
    label: float | int
    raw = row.get(task.label)
    if raw is None:
        label = float("nan") if task.labels is None else -1
    elif task.labels is None:
        try:
            label = float(raw)
        except ValueError:
            raise ConfigError(f"{where}: field '{task.label}' should be a number, got {raw!r}") from None
    elif raw in task.labels:
        label = task.labels.index(raw)
    else:
        raise ConfigError(f"{where}: field '{task.label}' is {raw!r}; expected one of {', '.join(task.labels)}")
    example_id = row.get(task.id_column, str(position))
    return GlueExample(example_id, row[task.text_a], row[task.text_b] if task.text_b else None, label)


class GlueDataset(Dataset):
    """Samples hold ``input_ids`` / ``token_type_ids`` ``[T]``, ``label`` and ``example_id``."""

    def __init__(self, examples: Sequence[GlueExample], task_name: str, tokenizer: TextTokenizer, name: str) -> None:
        self.examples = list(examples)
        self.task_name = task_name
        self.task = GLUE_TASKS[task_name]
        self.tokenizer = tokenizer
        self.name = name
        self.task_type = "text_regression" if self.task.labels is None else "text_classification"

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ex = self.examples[index]
        text = self.tokenizer.encode(ex.text_a, ex.text_b)
        label = torch.tensor(ex.label, dtype=torch.float32 if self.task.labels is None else torch.long)
        return {"input_ids": text["input_ids"], "token_type_ids": text["token_type_ids"], "label": label,
                "example_id": ex.example_id}

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type, pad_id=self.tokenizer.pad_id)

    def info(self) -> dict[str, Any]:
        labels = list(self.task.labels or ())
        return {"num_classes": len(labels) or 1, "labels": labels, "glue_task": self.task_name,
                "vocab_size": self.tokenizer.vocab_size}


@DATASETS.register(parts={"tokenizer": "processors"})
def glue(
    *,
    data_dir: str,
    task: GlueTaskName,
    split: str,
    name: str,
    tokenizer: Any,
    mnli_dev: Literal["matched", "mismatched"] = "matched",
    split_files: Mapping[str, str] | None = None,
    skip_bad_lines: bool = False,
    max_samples: int | None = None,
) -> GlueDataset:
    """One GLUE task from ``<data_dir>/<Task folder>/{train,dev,test}.tsv``.

    Args:
        data_dir: the GLUE folder holding ``SST-2/``, ``MNLI/`` ...
        task: ``sst2``, ``qnli``, ``qqp``, ``mnli``, ``rte``, ``mrpc``, ``stsb`` or ``cola``.
        split: ``train`` / ``val`` (dev) / ``test`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node; pairs are encoded as one sequence with segment ids.
        mnli_dev: MNLI's ``val`` / ``test`` files: ``matched`` or ``mismatched``.
        split_files: split -> file name inside the task folder.
        skip_bad_lines: skip rows whose field count differs from the header instead of failing.
        max_samples: keep only the first examples (None: all).

    Returns:
        Batches hold ``input_ids`` / ``attention_mask`` / ``token_type_ids`` ``[B, T]`` and
        ``label`` ``[B]``: long class indices (-1 on test files), float scores for STS-B
        (task type ``text_regression``).
    """
    if task not in GLUE_TASKS:
        raise ConfigError(f"unknown GLUE task '{task}'; known: {', '.join(GLUE_TASKS)}", key="task")
    spec = GLUE_TASKS[task]
    files = split_files or (MNLI_SPLITS[mnli_dev] if task == "mnli" else GLUE_SPLITS)
    path = Path(data_dir) / spec.folder / split_file(files, split, name)
    require_files([path], "glue")
    problems = RecordProblems(name, path)
    examples = take(read_glue_tsv(path, spec, skip_bad_lines, problems), max_samples, name)
    problems.report()
    return GlueDataset(examples, task, tokenizer, name)
