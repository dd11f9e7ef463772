"""Visual Genome question answers (``question_answers.json``) as extra VQA data."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from unimm.config.errors import ConfigError
from unimm.data.answer_vocab import AnswerVocab
from unimm.data.common import choose_transform, take
from unimm.data.files import coco_image_ids, field, json_list, named_splits, read_json, require_files, split_file
from unimm.data.images import require_images
from unimm.data.visual_genome import (VG_SPLITS, VgImage, check_split_ids, read_image_data, read_image_ids,
                                      record_image_id)
from unimm.data.vqa import VqaDataset, VqaQuestion
from unimm.data.vqa2 import vqa2_answer_vocab
from unimm.data.vqa_normalize import normalize_answer
from unimm.registry import DATASETS

logger = logging.getLogger("unimm")

QaRecord = tuple[int, int, str, str]  # qa_id, image_id, question, answer


def read_question_answers(path: Path, wanted: set[int]) -> list[QaRecord]:
    """The question-answer pairs of the ``wanted`` images, in file order."""
    out = []
    for i, record in enumerate(json_list(read_json(path), None, path)):
        if record_image_id(record, f"{path}, [{i}]") not in wanted:
            continue
        for j, qa in enumerate(field(record, "qas", f"{path}, [{i}]", list)):
            where = f"{path}, [{i}].qas[{j}]"
            out.append((field(qa, "qa_id", where, int), field(qa, "image_id", where, int),
                        field(qa, "question", where, str), field(qa, "answer", where, str)))
    return out


def exclude_coco_images(records: list[QaRecord], images: Mapping[int, VgImage], files: Sequence[str],
                        split_ids: set[int], name: str, split: str) -> list[QaRecord]:
    """Drop the questions on VG images whose COCO image (``coco_id``) one of ``files`` lists, and log
    how many of ``split``'s questions and images went (a count, never in silence).

    Args:
        records: the question-answer pairs read.
        images: ``image_data.json`` by VG image id.
        files: VQAv2 questions files or COCO annotation files (``files.coco_image_ids``).
        split_ids: the VG images of the split being built (the counts logged are of them).
        name: the dataset's config key.
        split: the split being built.
    """
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise ConfigError([f"missing file: {f} (a VQAv2 questions file or a COCO annotations file; paths are used "
                           "as given, relative to the working directory)" for f in missing], key="exclude_images_of")
    excluded_coco = set().union(*(coco_image_ids(f) for f in files))
    excluded = {i for i, image in images.items() if image.coco_id is not None and image.coco_id in excluded_coco}
    kept = [r for r in records if r[1] not in excluded]
    gone = [r for r in records if r[1] in excluded and r[1] in split_ids]
    listed = ", ".join(str(f) for f in files)
    if gone:
        logger.info("dataset '%s' (%s split): excluded %d questions on %d VG images whose COCO image (coco_id) is "
                    "one of the %d images of %s", name, split, len(gone), len({r[1] for r in gone}),
                    len(excluded_coco), listed)
    else:
        logger.warning("dataset '%s' (%s split): excluded no question: none of its VG images has a coco_id among "
                       "the %d images of %s; check that exclude_images_of names the evaluation split's files",
                       name, split, len(excluded_coco), listed)
    return kept


@DATASETS.register(parts={"tokenizer": "processors", "train_transform": "processors",
                          "eval_transform": "processors"})
def visual_genome_qa(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    split_files: Mapping[str, str] | None = None,
    answer_vocab_file: str | None = None,
    vqa2_data_dir: str | None = None,
    vqa2_coco2017_split: str | None = None,
    answer_vocab_size: int = 3129,
    exclude_images_of: Sequence[str] | None = None,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> VqaDataset:
    """Visual Genome QA: ``question_answers.json`` with the images of ``image_data.json``.

    One answer per question, scored 1. To train with VQAv2 on one answer space (UniT's
    VG + VQA setting), share the vocabulary: give the same ``answer_vocab_file``, or
    ``vqa2_data_dir`` to use the vocabulary ``vqa2`` builds from its train annotations.

    UniT adds VG questions "on images not overlapping with COCO val2017" to VQAv2's training
    data (Sec. 4.1): the VG split lists (``unimm.data.vg_splits``) keep COCO val2017 out, and
    ``exclude_images_of`` keeps out the images VQAv2 is evaluated on (its ``val2014`` by
    default, which overlaps COCO train2017): e.g. ``[<vqa2>/v2_OpenEnded_mscoco_val2014_questions.json]``.

    Args:
        data_dir: the Visual Genome folder.
        split: ``train`` / ``val`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        split_files: split -> JSON list of its image ids (default ``<split>_image_ids.json``).
        answer_vocab_file: one answer a line, relative to ``data_dir``.
        vqa2_data_dir: the VQAv2 folder whose train answers make the vocabulary.
        vqa2_coco2017_split: the ``coco2017_split`` the ``vqa2`` dataset is given (its train answers
            are then those of train2014 + val2014 outside COCO val2017): the same file, so that both
            build one vocabulary.
        answer_vocab_size: answers kept when the vocabulary is built from answers.
        exclude_images_of: files listing COCO images whose VG pictures (through
            ``image_data.json``'s ``coco_id``) give no question: VQAv2 questions files
            (``{"questions": [{"image_id", ...}]}``) or COCO annotation files
            (``{"images": [{"id", ...}]}``), paths used as given. The questions and images
            excluded are counted in the log; the vocabulary built from answers leaves them out too.
        max_samples: keep only the first questions (None: all).
        check_images: check every image file exists when the dataset is built.
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        A VQA dataset with the batch keys of ``vqa2`` (``answers`` holds the one answer).
    """
    root = Path(data_dir)
    names = named_splits(VG_SPLITS, split_files)
    qa_file, image_data = root / "question_answers.json", root / "image_data.json"
    train_ids, split_ids = root / split_file(names, "train", name), root / split_file(names, split, name)
    vocab_file = [root / answer_vocab_file] if answer_vocab_file else []
    require_files(dict.fromkeys([qa_file, image_data, split_ids, train_ids, *vocab_file]), "vg")
    meta = read_image_data(image_data, root)
    split_list, train_list = read_image_ids(split_ids), read_image_ids(train_ids)
    for path, listed in {split_ids: split_list, train_ids: train_list}.items():  # once when split is train
        check_split_ids(listed, meta, path, image_data)
    ids, train = set(split_list), set(train_list)
    records = read_question_answers(qa_file, ids | train)
    if exclude_images_of:
        records = exclude_coco_images(records, meta, list(exclude_images_of), ids, name, split)
    if answer_vocab_file:
        vocab = AnswerVocab.from_file(root / answer_vocab_file)
    elif vqa2_data_dir:
        vocab = vqa2_answer_vocab(vqa2_data_dir, answer_vocab_size, coco2017_split=vqa2_coco2017_split)
    else:
        counts = Counter(normalize_answer(answer) for _, image_id, _, answer in records if image_id in train)
        vocab = AnswerVocab.from_counts(counts, answer_vocab_size)
    records = [r for r in records if r[1] in ids]
    questions = [VqaQuestion(qa_id, image_id, meta[image_id].path, question, (answer,))
                 for qa_id, image_id, question, answer in take(records, max_samples, name)]
    if check_images:
        require_images((q.image_path for q in questions), name)
    return VqaDataset(questions, vocab, tokenizer, choose_transform(split, train_transform, eval_transform),
                      name, qa_file)
