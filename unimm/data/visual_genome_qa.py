"""Visual Genome question answers (``question_answers.json``) as extra VQA data."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Mapping

from unimm.data.answer_vocab import AnswerVocab
from unimm.data.common import choose_transform, take
from unimm.data.files import field, json_list, read_json, require_files, split_file
from unimm.data.images import require_images
from unimm.data.visual_genome import VG_SPLITS, read_image_data, read_image_ids, record_image_id
from unimm.data.vqa import VqaDataset, VqaQuestion
from unimm.data.vqa2 import vqa2_answer_vocab
from unimm.data.vqa_normalize import normalize_answer
from unimm.registry import DATASETS

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
    answer_vocab_size: int = 3129,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
) -> VqaDataset:
    """Visual Genome QA: ``question_answers.json`` with the images of ``image_data.json``.

    One answer per question, scored 1. To train with VQAv2 on one answer space (UniT's
    VG + VQA setting), share the vocabulary: give the same ``answer_vocab_file``, or
    ``vqa2_data_dir`` to use the vocabulary ``vqa2`` builds from its train annotations.

    Args:
        data_dir: the Visual Genome folder.
        split: ``train`` / ``val`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node.
        split_files: split -> JSON list of its image ids (default ``<split>_image_ids.json``).
        answer_vocab_file: one answer a line, relative to ``data_dir``.
        vqa2_data_dir: the VQAv2 folder whose train answers make the vocabulary.
        answer_vocab_size: answers kept when the vocabulary is built from answers.
        max_samples: keep only the first questions (None: all).
        check_images: check every image file exists when the dataset is built.
        train_transform: image transform of the train split.
        eval_transform: image transform of the other splits.

    Returns:
        A VQA dataset with the batch keys of ``vqa2`` (``answers`` holds the one answer).
    """
    root = Path(data_dir)
    names = split_files or VG_SPLITS
    qa_file, image_data = root / "question_answers.json", root / "image_data.json"
    train_ids, split_ids = root / split_file(names, "train", name), root / split_file(names, split, name)
    vocab_file = [root / answer_vocab_file] if answer_vocab_file else []
    require_files(dict.fromkeys([qa_file, image_data, split_ids, train_ids, *vocab_file]), "vg")
    meta = read_image_data(image_data, root)
    ids, train = set(read_image_ids(split_ids)), set(read_image_ids(train_ids))
    records = read_question_answers(qa_file, ids | train)
    if answer_vocab_file:
        vocab = AnswerVocab.from_file(root / answer_vocab_file)
    elif vqa2_data_dir:
        vocab = vqa2_answer_vocab(vqa2_data_dir, answer_vocab_size)
    else:
        counts = Counter(normalize_answer(answer) for _, image_id, _, answer in records if image_id in train)
        vocab = AnswerVocab.from_counts(counts, answer_vocab_size)
    records = [r for r in records if r[1] in ids and r[1] in meta]
    questions = [VqaQuestion(qa_id, image_id, meta[image_id][0], question, (answer,))
                 for qa_id, image_id, question, answer in take(records, max_samples, name)]
    if check_images:
        require_images((q.image_path for q in questions), name)
    return VqaDataset(questions, vocab, tokenizer, choose_transform(split, train_transform, eval_transform),
                      name, qa_file)
