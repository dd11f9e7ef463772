"""NLVR2: is the statement true of the pair of images?

The released ``train``, ``dev``, ``test1`` (and, since its release, ``test2``) files carry labels;
the leaderboard's hidden test set does not, and a file without ``label`` fields gives a split
with ``has_labels`` False, for ``run_type=predict``, which writes the CSV that the official
evaluation script reads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from unimm.config.errors import ConfigError
from unimm.data.common import choose_transform, take
from unimm.data.files import field, named_splits, read_jsonl, require_files, split_file
from unimm.data.image_text_classification import ImageTextClassification, LabelledPair, SubmissionFormat
from unimm.data.images import require_images
from unimm.registry import DATASETS

NLVR2_SPLITS = {"train": "train", "val": "dev", "test": "test1"}
NLVR2_LABELS = ("False", "True")


def render_predictions(predictions: Sequence[tuple[str, str]]) -> str:
    """``<identifier>,<True|False>`` lines, no header: the CSV of NLVR2's official evaluation script.

    lil-lab/nlvr ``nlvr2/eval/metrics.py`` splits each line on ``,``, takes the first value as the
    example's ``identifier`` and the second as its prediction "in the same format as labels in the
    JSON files", and compares it with the label case-insensitively; it reports missing predictions
    and expects one per example (a header line would count as one).
    """
    return "".join(f"{identifier},{label}\n" for identifier, label in predictions)


SUBMISSION = SubmissionFormat("identifier", "{name}_{split}_predictions.csv", render_predictions)


def pair_paths(folder: Path, identifier: str, directory: Any) -> tuple[Path, Path]:
    """``dev-850-0-0`` -> ``dev-850-0-img0.png``, ``dev-850-0-img1.png`` (train: in ``<directory>/``)."""
    prefix = identifier.rsplit("-", 1)[0]
    if directory is not None and not (folder / f"{prefix}-img0.png").exists():
        folder = folder / str(directory)
    return folder / f"{prefix}-img0.png", folder / f"{prefix}-img1.png"


def read_nlvr2(path: Path, image_folder: Path) -> list[LabelledPair]:
    """One example per line: ``identifier``, ``sentence``, ``label`` (``"True"``/``"False"``; absent: -1)."""
    out = []
    for line, record in read_jsonl(path):
        where = f"{path}, line {line}"
        identifier = field(record, "identifier", where, str)
        label = record.get("label")
        if label is not None and str(label) not in NLVR2_LABELS:
            raise ConfigError(f"{where}: field 'label' is {label!r}; expected \"True\" or \"False\"")
        out.append(LabelledPair(identifier, pair_paths(image_folder, identifier, record.get("directory")),
                                field(record, "sentence", where, str),
                                NLVR2_LABELS.index(str(label)) if label is not None else -1))
    return out


@DATASETS.register(parts={"tokenizer": "processors", "train_transform": "processors",
                          "eval_transform": "processors"})
def nlvr2(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    image_dir: str | None = None,
    split_names: Mapping[str, str] | None = None,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> ImageTextClassification:
    """NLVR2 from ``<x>.json`` (one JSON object per line) and ``<image_dir>/<x>/<pair>-img{0,1}.png``.

    Args:
        data_dir: the NLVR2 folder.
        split: ``train`` / ``val`` (dev) / ``test`` (test1) (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        image_dir: the image root holding one folder per split (None: ``<data_dir>/images``).
        split_names: split -> official name ``<x>`` (``{"test": "test2"}`` reads the second public
            test set; a hidden test file without labels reads as a split without labels).
        max_samples: keep only the first examples (None: all).
        check_images: check every image file exists when the dataset is built.
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        Batches hold ``image`` and ``image2`` ``[B, 3, H, W]`` (left / right image) with
        ``pixel_mask`` / ``pixel_mask2`` ``[B, H, W]``, ``input_ids`` / ``attention_mask`` /
        ``token_type_ids`` ``[B, T]`` and ``label`` ``[B]`` (1 = the statement is true; -1 in a
        file without labels). ``run_type=predict`` writes ``<save_dir>/predictions/<name>_<split>_predictions.csv``
        (``render_predictions``).
    """
    official = split_file(named_splits(NLVR2_SPLITS, split_names), split, name)
    root = Path(data_dir)
    path = root / f"{official}.json"
    images = (Path(image_dir) if image_dir else root / "images") / official
    require_files([path, images], "nlvr2")
    examples = take(read_nlvr2(path, images), max_samples, name)
    if check_images:
        require_images((p for ex in examples for p in ex.image_paths), name)
    return ImageTextClassification(examples, NLVR2_LABELS, tokenizer,
                                   choose_transform(split, train_transform, eval_transform), name, path,
                                   task_type="classification", submission=SUBMISSION)
