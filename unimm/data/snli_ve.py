"""SNLI-VE visual entailment from the official jsonl files."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from unimm.config.errors import ConfigError
from unimm.data.common import choose_transform, take
from unimm.data.files import field, read_jsonl, require_files, split_file
from unimm.data.image_text_classification import ImageTextClassification, LabelledPair
from unimm.data.images import require_images
from unimm.registry import DATASETS

SNLI_VE_SPLITS = {"train": "snli_ve_train.jsonl", "val": "snli_ve_dev.jsonl", "test": "snli_ve_test.jsonl"}
SNLI_VE_LABELS = ("contradiction", "neutral", "entailment")
NO_CONSENSUS = "-"  # SNLI's gold label when annotators disagreed


def read_snli_ve(path: Path, image_dir: Path) -> list[LabelledPair]:
    """Image (``Flickr30K_ID``) + hypothesis (``sentence2``) -> ``gold_label``; ``-`` lines are skipped."""
    out = []
    for line, record in read_jsonl(path):
        where = f"{path}, line {line}"
        gold = field(record, "gold_label", where, str)
        if gold == NO_CONSENSUS:
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
    train_transform: Any = None,
    eval_transform: Any = None,
) -> ImageTextClassification:
    """SNLI-VE: does the image (premise) entail the hypothesis text? Three classes.

    Args:
        data_dir: the SNLI-VE folder with ``snli_ve_{train,dev,test}.jsonl``.
        split: ``train`` / ``val`` (dev) / ``test`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        image_dir: the Flickr30k images, ``<Flickr30K_ID>.jpg`` (None: ``<data_dir>/flickr30k_images``).
        split_files: split -> jsonl file name.
        max_samples: keep only the first examples (None: all).
        check_images: check every image file exists when the dataset is built.
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        Batches hold ``image`` ``[B, 3, H, W]``, ``pixel_mask`` ``[B, H, W]``, ``input_ids`` /
        ``attention_mask`` / ``token_type_ids`` ``[B, T]`` (the hypothesis) and ``label``
        ``[B]``: 0 contradiction, 1 neutral, 2 entailment.
    """
    root = Path(data_dir)
    path = root / split_file(split_files or SNLI_VE_SPLITS, split, name)
    images = Path(image_dir) if image_dir else root / "flickr30k_images"
    require_files([path, images], "snli_ve")
    examples = take(read_snli_ve(path, images), max_samples, name)
    if check_images:
        require_images((p for ex in examples for p in ex.image_paths), name)
    return ImageTextClassification(examples, SNLI_VE_LABELS, tokenizer,
                                   choose_transform(split, train_transform, eval_transform), name, path,
                                   task_type="classification")
