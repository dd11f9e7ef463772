"""SNLI-VE visual entailment from the official jsonl files.

The three files as distributed (https://github.com/necla-ml/SNLI-VE) all carry gold labels, the
test split too, so every split is labelled. Flickr30k's archive unpacks to ``flickr30k-images/``,
accepted where unimm's ``flickr30k_images/`` is configured.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from unimm.config.errors import ConfigError
from unimm.data.common import choose_transform, take
from unimm.data.files import accept_alias, field, named_splits, read_jsonl, require_files, split_file
from unimm.data.image_text_classification import ImageTextClassification, LabelledPair, SubmissionFormat
from unimm.data.images import require_images
from unimm.data.problems import RecordProblems
from unimm.registry import DATASETS

SNLI_VE_SPLITS = {"train": "snli_ve_train.jsonl", "val": "snli_ve_dev.jsonl", "test": "snli_ve_test.jsonl"}
SNLI_VE_LABELS = ("contradiction", "neutral", "entailment")
NO_CONSENSUS = "-"  # SNLI's gold label when annotators disagreed
IMAGE_DIR_ALIASES = ("flickr30k-images",)  # the folder Flickr30k's archive unpacks to


def render_predictions(predictions: Sequence[tuple[str, str]]) -> str:
    """``{"pairID": ..., "prediction": "entailment" | "neutral" | "contradiction"}``, one JSON object a line.

    SNLI-VE has neither a server nor an official evaluation script: this file keys each prediction
    by the ``pairID`` of the official jsonl, in its order, so it joins with the split's
    ``gold_label`` in a line of code, and its label strings are the ``gold_label`` values.
    """
    return "".join(json.dumps({"pairID": pair, "prediction": label}) + "\n" for pair, label in predictions)


SUBMISSION = SubmissionFormat("pairID", "{name}_{split}_predictions.jsonl", render_predictions)


def read_snli_ve(path: Path, image_dir: Path, problems: RecordProblems | None = None) -> list[LabelledPair]:
    """Image (``Flickr30K_ID``) + hypothesis (``sentence2``) -> ``gold_label``; ``-`` lines (no consensus,
    which SNLI-VE's generator already drops) are skipped and noted in ``problems``."""
    out = []
    for line, record in read_jsonl(path):
        where = f"{path}, line {line}"
        gold = field(record, "gold_label", where, str)
        if gold == NO_CONSENSUS:
            if problems is not None:
                problems.note("lines with gold_label '-' (no annotator consensus), skipped", f"line {line}")
            continue
        if gold not in SNLI_VE_LABELS:
            raise ConfigError(f"{where}: field 'gold_label' is {gold!r}; expected one of {', '.join(SNLI_VE_LABELS)}")
        image_id = str(field(record, "Flickr30K_ID", where, (str, int)))
        example_id = str(record.get("pairID", f"line{line}"))
        out.append(LabelledPair(example_id, (image_dir / f"{image_id}.jpg",), field(record, "sentence2", where, str),
                                SNLI_VE_LABELS.index(gold)))
    return out


@DATASETS.register(parts={"tokenizer": "processors", "train_transform": "processors",
                          "eval_transform": "processors"})
def snli_ve(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    image_dir: str | None = None,
    split_files: Mapping[str, str] | None = None,
    max_samples: int | None = None,
    check_images: bool = True,
    strict: bool = False,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> ImageTextClassification:
    """SNLI-VE: does the image (premise) entail the hypothesis text? Three classes.

    Args:
        data_dir: the SNLI-VE folder with ``snli_ve_{train,dev,test}.jsonl``.
        split: ``train`` / ``val`` (dev) / ``test`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        image_dir: the Flickr30k images, ``<Flickr30K_ID>.jpg`` (None: ``<data_dir>/flickr30k_images``);
            when it does not exist, its sibling ``flickr30k-images/`` (the archive's name) is read.
        split_files: split -> jsonl file name.
        max_samples: keep only the first examples (None: all).
        check_images: check every image file exists when the dataset is built.
        strict: make the warning about skipped ``gold_label`` ``-`` lines an error.
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        Batches hold ``image`` ``[B, 3, H, W]``, ``pixel_mask`` ``[B, H, W]``, ``input_ids`` /
        ``attention_mask`` / ``token_type_ids`` ``[B, T]`` (the hypothesis) and ``label``
        ``[B]``: 0 contradiction, 1 neutral, 2 entailment. ``run_type=predict`` writes
        ``<save_dir>/predictions/<name>_<split>_predictions.jsonl`` (``render_predictions``).
    """
    root = Path(data_dir)
    path = root / split_file(named_splits(SNLI_VE_SPLITS, split_files), split, name)
    images = accept_alias(Path(image_dir) if image_dir else root / "flickr30k_images", IMAGE_DIR_ALIASES)
    require_files([path, images], "snli_ve")
    problems = RecordProblems(name, path, strict)
    examples = take(read_snli_ve(path, images, problems), max_samples, name)
    problems.report()
    if check_images:
        require_images((p for ex in examples for p in ex.image_paths), name)
    return ImageTextClassification(examples, SNLI_VE_LABELS, tokenizer,
                                   choose_transform(split, train_transform, eval_transform), name, path,
                                   task_type="classification", submission=SUBMISSION)
