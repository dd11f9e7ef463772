"""Image(s) + text -> one label: the dataset shared by SNLI-VE and NLVR2."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.data.collate import collate_batch
from unimm.data.common import read_image
from unimm.data.tokenizers import TextTokenizer
from unimm.utils.fileio import atomic_write_text

logger = logging.getLogger("unimm")
IMAGE_KEYS = ("image", "image2")
SHOWN_IDS = 5  # ids named in the error about a split mixing labelled and unlabelled examples


@dataclass(frozen=True)
class LabelledPair:
    """One example: its images (one or two), the text, the label index (-1: unknown), an id."""

    example_id: str
    image_paths: tuple[Path, ...]
    text: str
    label: int


@dataclass(frozen=True)
class SubmissionFormat:
    """How a dataset's official evaluation reads predictions.

    Attributes:
        id_key: the official id field, the key of each row's id (``"pairID"``, ``"identifier"``).
        file_name: the file's name under the predictions folder, with ``{name}`` (the dataset's
            config key) and ``{split}``, e.g. ``"{name}_{split}_predictions.csv"``.
        render: ``[(id, predicted label name)]`` in the annotation file's order -> the file's text.
    """

    id_key: str
    file_name: str
    render: Callable[[Sequence[tuple[str, str]]], str]


class ImageTextClassification(Dataset):
    """Samples hold ``image`` ``[3, H, W]`` (and ``image2`` for pairs), ``input_ids`` /
    ``token_type_ids`` ``[T]``, ``label`` and ``example_id``.

    A split is labelled (every label >= 0) or not (every label -1: a test split without answers,
    ``has_labels`` False, for ``run_type=predict`` only); one mixing both is an error.

    Args:
        examples: the examples of the split, in file order.
        labels: label names, in index order.
        tokenizer: encodes the text.
        transform: the image transform.
        name: the dataset's config key.
        source: the annotation file, named in errors.
        task_type: the task type of the batches.
        submission: the official prediction file's format (``write_submission``).

    Raises:
        ConfigError: some examples have a label and others none.
    """

    def __init__(self, examples: Sequence[LabelledPair], labels: Sequence[str], tokenizer: TextTokenizer,
                 transform: Any, name: str, source: Path, task_type: str, submission: SubmissionFormat) -> None:
        self.examples = list(examples)
        self.labels = list(labels)
        self.tokenizer = tokenizer
        self.transform = transform
        self.name = name
        self.source = source
        self.task_type = task_type
        self.submission = submission
        unlabelled = [ex.example_id for ex in self.examples if ex.label < 0]
        if unlabelled and len(unlabelled) < len(self.examples):
            shown = ", ".join(unlabelled[:SHOWN_IDS]) + (", ..." if len(unlabelled) > SHOWN_IDS else "")
            raise ConfigError(f"{source}: {len(unlabelled)} of {len(self.examples)} examples have no label "
                              f"({submission.id_key} {shown}) and the others have one; a split is labelled (for "
                              "training and metrics) or not (run_type=predict only): give those examples their "
                              "label, or move them to a file of their own")

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ex = self.examples[index]
        sample: dict[str, Any] = {}
        for key, path in zip(IMAGE_KEYS, ex.image_paths):
            sample[key], _ = read_image(path, f"example {ex.example_id} of {self.source}", self.transform)
        text = self.tokenizer.encode(ex.text)
        sample.update(input_ids=text["input_ids"], token_type_ids=text["token_type_ids"], label=ex.label,
                      example_id=ex.example_id)
        return sample

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type, pad_id=self.tokenizer.pad_id)

    def info(self) -> dict[str, Any]:
        return {"num_classes": len(self.labels), "labels": list(self.labels), "vocab_size": self.tokenizer.vocab_size,
                "images_per_example": len(self.examples[0].image_paths) if self.examples else 1}

    @property
    def has_labels(self) -> bool:
        """False on a split without answers (NLVR2's hidden test): metrics need a labelled split."""
        return any(ex.label >= 0 for ex in self.examples)

    def label_counts(self) -> dict[str, int]:
        """Labelled examples per label name, every name (0 included) in index order; empty without labels."""
        counts = Counter(ex.label for ex in self.examples if ex.label >= 0)
        return {label: counts[i] for i, label in enumerate(self.labels)} if counts else {}

    def image_files(self) -> list[tuple[Path, tuple[int, int] | None]]:
        """Every picture of the split once, in first-use order; no sizes (the annotations state none)."""
        paths = dict.fromkeys(path for ex in self.examples for path in ex.image_paths)
        return [(path, None) for path in paths]

    def format_predictions(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``[{<id_key>: <example id>, "prediction": <label name>}]``: arg-max of ``output["logits"]`` ``[B, C]``."""
        logits = output["logits"]
        if logits.dim() != 2 or logits.shape[1] != len(self.labels):
            raise ValueError(f"dataset '{self.name}': 'logits' must be [B, {len(self.labels)}] (labels "
                             f"{', '.join(self.labels)}), got shape {tuple(logits.shape)}")
        best = logits.argmax(dim=-1).tolist()
        return [{self.submission.id_key: example_id, "prediction": self.labels[i]}
                for example_id, i in zip(batch["example_id"], best)]

    def write_submission(self, rows: Sequence[dict[str, Any]], folder: Path, split: str) -> list[Path]:
        """The official prediction file (``self.submission``), one prediction per example in file order.

        Args:
            rows: ``format_predictions`` rows of every rank, in any order.
            folder: ``<save_dir>/predictions``.
            split: the predicted split.

        Returns:
            The file written. Examples without a row (``evaluation.max_batches``) are left out with a
            warning.
        """
        key = self.submission.id_key
        known = {ex.example_id for ex in self.examples}
        predicted: dict[str, str] = {}
        for row in rows:
            example_id = str(row[key])
            if example_id not in known:
                raise ValueError(f"dataset '{self.name}': a prediction for {key} {example_id!r}, which "
                                 f"{self.source} does not hold")
            predicted.setdefault(example_id, row["prediction"])
        ordered = [(ex.example_id, predicted[ex.example_id]) for ex in self.examples if ex.example_id in predicted]
        path = Path(folder) / self.submission.file_name.format(name=self.name, split=split)
        if len(ordered) < len(self.examples):
            logger.warning("dataset '%s': %d of %d examples of %s have no prediction (evaluation.max_batches?); "
                           "%s leaves them out", self.name, len(self.examples) - len(ordered), len(self.examples),
                           self.source, path)
        atomic_write_text(path, self.submission.render(ordered))
        return [path]
