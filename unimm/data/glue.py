"""GLUE tasks from the official TSV files, read with GLUE's quirks.

GLUE's TSVs are not CSV: quotes are ordinary characters (a sentence may open a quote it
never closes), so rows are split on tabs only (``csv.QUOTE_NONE``). Every file has a header
row except CoLA's train and dev files, whose columns are fixed by position. Test files have
no labels (label -1, or NaN for STS-B): such a split says ``has_labels = False`` and is for
``run_type=predict``, which writes the file the GLUE server reads (``GlueDataset.write_submission``).
Empty lines are skipped. The folder may be named ``glue_data/`` (what GLUE's download script
writes) where ``glue/`` is configured.
"""
from __future__ import annotations

import csv
import io
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.data.collate import collate_batch
from unimm.data.common import take
from unimm.data.files import accept_alias, named_splits, read_text, require_files, split_file
from unimm.data.problems import RecordProblems
from unimm.data.tokenizers import TextTokenizer
from unimm.registry import DATASETS
from unimm.utils.fileio import atomic_write_text

logger = logging.getLogger("unimm")

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
DATA_DIR_ALIASES = ("glue_data",)  # the folder GLUE's download script (download_glue_data.py) writes
# The GLUE server's name of each task's prediction file (<NAME>.tsv in the submitted zip); MNLI has one
# per test set. The names of jiant's GlueBenchmark (jiant/scripts/benchmarks/benchmarks.py).
SUBMISSION_NAMES = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B",
                    "qnli": "QNLI", "rte": "RTE"}
MNLI_SUBMISSION_NAMES = {"matched": "MNLI-m", "mismatched": "MNLI-mm"}
STSB_BANDS = 5  # label_counts of STS-B: scores in [0, 1), [1, 2), ... [4, 5]


def server_file_name(task: str, mnli_dev: str = "matched") -> str:
    """The GLUE server's name of ``task``'s prediction file (MNLI: of its matched / mismatched test set)."""
    return MNLI_SUBMISSION_NAMES[mnli_dev] if task == "mnli" else SUBMISSION_NAMES[task]


@dataclass(frozen=True)
class GlueExample:
    example_id: str
    text_a: str
    text_b: str | None
    label: float | int  # -1 (or NaN for a score) when the file has no label

    @property
    def labelled(self) -> bool:
        return not (isinstance(self.label, float) and math.isnan(self.label)) and self.label != -1


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
    """Samples hold ``input_ids`` / ``token_type_ids`` ``[T]``, ``label`` and ``example_id``.

    Args:
        examples: the examples of the split, in file order.
        task_name: a key of ``GLUE_TASKS``.
        tokenizer: encodes the text (pairs as one sequence with segment ids).
        name: the dataset's config key.
        source: the TSV file read, named in messages.
        submission_name: the GLUE server's name of the task's prediction file (``SST-2``,
            ``MNLI-m`` ...), without ``.tsv`` (None: ``server_file_name(task_name)``).
    """

    def __init__(self, examples: Sequence[GlueExample], task_name: str, tokenizer: TextTokenizer, name: str,
                 source: Path | None = None, submission_name: str | None = None) -> None:
        self.examples = list(examples)
        self.task_name = task_name
        self.task = GLUE_TASKS[task_name]
        self.tokenizer = tokenizer
        self.name = name
        self.source = source
        self.submission_name = submission_name or server_file_name(task_name)
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

    @property
    def has_labels(self) -> bool:
        """False on a test file as distributed (no label column): metrics need another split."""
        return any(ex.labelled for ex in self.examples)

    def label_counts(self) -> dict[str, int]:
        """Labelled examples per label name (every name, 0 included; empty without labels); STS-B, a
        score, per band ``"0-1"`` ... ``"4-5"`` (a score of 5 falls in the last)."""
        labelled = [ex.label for ex in self.examples if ex.labelled]
        if not labelled:
            return {}
        if self.task.labels is None:
            bands = Counter(min(max(int(score), 0), STSB_BANDS - 1) for score in labelled)
            return {f"{low}-{low + 1}": bands[low] for low in range(STSB_BANDS)}
        counts = Counter(self.task.labels[int(label)] for label in labelled)
        return {name: counts[name] for name in self.task.labels}

    def format_predictions(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``[{"index": <the example's index / id>, "prediction": <label>}]`` from ``output["logits"]``.

        Classification reads ``logits`` ``[B, C]`` and gives the arg-max label as the file writes it
        (``"0"`` / ``"1"``, ``"entailment"`` ...: the strings the GLUE server expects). STS-B reads the
        regression head's score, also under ``logits`` (``[B]`` or ``[B, 1]``: MoMo's
        ``text_regression`` head), as a float rounded to 3 decimals. ``index`` is the file's
        ``index`` (QQP: ``id``) column, or the example's position where the file has none.
        """
        if "logits" not in output:
            raise KeyError(f"dataset '{self.name}': the model output has no 'logits' (it has: "
                           f"{', '.join(sorted(output))}); GLUE predictions read the classification or "
                           "regression head's 'logits'")
        logits = output["logits"].detach().float().cpu()
        ids = list(batch["example_id"])
        if self.task.labels is None:
            if logits.dim() == 2 and logits.shape[1] == 1:
                logits = logits[:, 0]  # [B, 1] -> [B]
            if tuple(logits.shape) != (len(ids),):
                raise ValueError(f"dataset '{self.name}' (STS-B, a score): 'logits' must be [B] or [B, 1] with "
                                 f"B = {len(ids)}, got shape {tuple(output['logits'].shape)}")
            predictions: list[Any] = [round(score, 3) for score in logits.tolist()]
        else:
            if logits.dim() != 2 or logits.shape[1] != len(self.task.labels):
                raise ValueError(f"dataset '{self.name}': 'logits' must be [B, {len(self.task.labels)}] "
                                 f"(labels {', '.join(self.task.labels)}), got shape {tuple(logits.shape)}")
            predictions = [self.task.labels[i] for i in logits.argmax(dim=-1).tolist()]
        return [{"index": example_id, "prediction": p} for example_id, p in zip(ids, predictions)]

    def write_submission(self, rows: Sequence[dict[str, Any]], folder: Path, split: str) -> list[Path]:
        """The GLUE server's file: ``<folder>/glue/<NAME>.tsv`` (test split; another split writes
        ``<folder>/glue_<split>/<NAME>.tsv``, never mistaken for a submission).

        The format of gluebenchmark.com's submission zip, as jiant's ``GlueBenchmark.write_predictions``
        (jiant/scripts/benchmarks/benchmarks.py) and Hugging Face's ``run_glue.py`` write it: a header
        ``index<TAB>prediction``, then one line per test example in file order, its index and the
        label: ``0`` / ``1`` (CoLA, SST-2, MRPC, QQP), ``entailment`` / ``not_entailment`` (QNLI,
        RTE), ``entailment`` / ``neutral`` / ``contradiction`` (MNLI), the score with 3 decimals
        (STS-B). NAME is the server's: ``CoLA``, ``SST-2``, ``MRPC``, ``STS-B``, ``QQP``, ``MNLI-m``
        (test_matched), ``MNLI-mm`` (test_mismatched), ``QNLI``, ``RTE``. Zip the ``glue/`` folder once
        every task's file is in it (the server also wants ``WNLI.tsv`` and ``AX.tsv``).

        Args:
            rows: ``format_predictions`` rows of every rank, in any order.
            folder: ``<save_dir>/predictions``.
            split: the predicted split.

        Returns:
            The file written. Examples without a row (``evaluation.max_batches``) are left out with a
            warning: the server refuses such a file.
        """
        predicted: dict[str, Any] = {}
        known = {ex.example_id for ex in self.examples}
        for row in rows:
            index = str(row["index"])
            if index not in known:
                raise ValueError(f"dataset '{self.name}': a prediction for index {index!r}, which {self.source} "
                                 "does not hold")
            predicted.setdefault(index, row["prediction"])
        cell = "{:.3f}" if self.task.labels is None else "{}"
        lines = ["index\tprediction"] + [f"{ex.example_id}\t" + cell.format(predicted[ex.example_id])
                                         for ex in self.examples if ex.example_id in predicted]
        path = Path(folder) / ("glue" if split == "test" else f"glue_{split}") / f"{self.submission_name}.tsv"
        if len(predicted) < len(self.examples):
            logger.warning("dataset '%s': %d of %d examples of %s have no prediction (evaluation.max_batches?); "
                           "%s leaves them out, and the GLUE server refuses an incomplete file", self.name,
                           len(self.examples) - len(predicted), len(self.examples), self.source, path)
        atomic_write_text(path, "\n".join(lines) + "\n")
        return [path]


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
    strict: bool = False,
    max_samples: int | None = None,
) -> GlueDataset:
    """One GLUE task from ``<data_dir>/<Task folder>/{train,dev,test}.tsv``.

    Args:
        data_dir: the GLUE folder holding ``SST-2/``, ``MNLI/`` ...; when it does not exist, its
            sibling ``glue_data/`` (the name GLUE's download script writes) is read.
        task: ``sst2``, ``qnli``, ``qqp``, ``mnli``, ``rte``, ``mrpc``, ``stsb`` or ``cola``.
        split: ``train`` / ``val`` (dev) / ``test`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node; pairs are encoded as one sequence with segment ids.
        mnli_dev: MNLI's ``val`` / ``test`` files: ``matched`` or ``mismatched``.
        split_files: split -> file name inside the task folder.
        skip_bad_lines: skip rows whose field count differs from the header instead of failing at the
            first; the skipped lines are counted in one warning with their line numbers.
        strict: make that warning an error listing every such line.
        max_samples: keep only the first examples (None: all).

    Returns:
        Batches hold ``input_ids`` / ``attention_mask`` / ``token_type_ids`` ``[B, T]`` and
        ``label`` ``[B]``: long class indices (-1 on test files), float scores for STS-B
        (task type ``text_regression``). ``run_type=predict`` writes the GLUE server's
        ``<save_dir>/predictions/glue/<NAME>.tsv`` (``GlueDataset.write_submission``).
    """
    if task not in GLUE_TASKS:
        raise ConfigError(f"unknown GLUE task '{task}'; known: {', '.join(GLUE_TASKS)}", key="task")
    spec = GLUE_TASKS[task]
    files = named_splits(MNLI_SPLITS[mnli_dev] if task == "mnli" else GLUE_SPLITS, split_files)
    path = accept_alias(data_dir, DATA_DIR_ALIASES) / spec.folder / split_file(files, split, name)
    require_files([path], "glue")
    problems = RecordProblems(name, path, strict)
    examples = take(read_glue_tsv(path, spec, skip_bad_lines, problems), max_samples, name)
    problems.report()
    return GlueDataset(examples, task, tokenizer, name, source=path,
                       submission_name=server_file_name(task, mnli_dev))
