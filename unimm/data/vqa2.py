"""VQAv2 from the official questions and annotations JSON files."""
from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from unimm.config.errors import ConfigError
from unimm.data.answer_vocab import AnswerVocab
from unimm.data.common import choose_transform, take
from unimm.data.files import field, json_list, read_json, require_files, split_file
from unimm.data.images import require_images
from unimm.data.problems import RecordProblems
from unimm.data.vqa import VqaDataset, VqaQuestion
from unimm.data.vqa_normalize import normalize_answer
from unimm.registry import DATASETS

VQA2_SPLITS = {"train": "train2014", "val": "val2014", "test": "test2015"}


def questions_path(root: Path, official: str) -> Path:
    return root / f"v2_OpenEnded_mscoco_{official}_questions.json"


def annotations_path(root: Path, official: str) -> Path:
    return root / f"v2_mscoco_{official}_annotations.json"


def has_annotations(official: str) -> bool:
    """Test splits (``test2015``, ``test-dev2015``) come without answers."""
    return not official.startswith("test")


def read_questions(path: Path) -> list[tuple[int, int, str]]:
    """``(question_id, image_id, question)`` in file order."""
    out = []
    for i, q in enumerate(json_list(read_json(path), "questions", path)):
        where = f"{path}, questions[{i}]"
        out.append((field(q, "question_id", where, int), field(q, "image_id", where, int),
                    field(q, "question", where, str)))
    return out


def read_annotations(path: Path) -> tuple[dict[int, tuple[str, ...]], dict[int, str], dict[int, str]]:
    """``(question_id -> the human answers (ten in VQAv2), question_id -> answer_type,
    question_id -> question_type)``.

    ``answer_type`` ("yes/no", "number" or "other" in VQAv2) and ``question_type`` (VQAv2's 65
    question prefixes, "what color is the") are optional: questions whose annotation lacks one
    are absent from its mapping.
    """
    answers, answer_types, question_types = {}, {}, {}
    for i, a in enumerate(json_list(read_json(path), "annotations", path)):
        where = f"{path}, annotations[{i}]"
        given = field(a, "answers", where, list)
        if not given:
            raise ConfigError(f"{where}: field 'answers' is empty")
        question_id = field(a, "question_id", where, int)
        answers[question_id] = tuple(field(ans, "answer", f"{where}.answers[{j}]", str) for j, ans in enumerate(given))
        if "answer_type" in a:
            answer_types[question_id] = field(a, "answer_type", where, str)
        if "question_type" in a:
            question_types[question_id] = field(a, "question_type", where, str)
    return answers, answer_types, question_types


HUMANS_PER_QUESTION = 10  # VQAv2 collects ten answers for every question


def check_annotations(answers: Mapping[int, tuple[str, ...]], questions: Sequence[tuple[int, int, str]],
                      problems: RecordProblems) -> None:
    """Annotations of no listed question (ignored) and with another number of answers than ten
    (kept; their accuracy averages over their own leave-one-out subsets) are reported once."""
    known = {question_id for question_id, _, _ in questions}
    for question_id, given in answers.items():
        if question_id not in known:
            problems.note("annotations of a question id the questions file does not list, ignored", question_id)
        elif len(given) != HUMANS_PER_QUESTION:
            problems.note(f"annotations with another number of answers than VQAv2's {HUMANS_PER_QUESTION}, kept",
                          question_id)
    problems.report()


def answer_counts(annotations: Mapping[int, tuple[str, ...]]) -> Counter[str]:
    """How often each normalised answer was given, over every human answer."""
    return Counter(normalize_answer(a) for answers in annotations.values() for a in answers)


@functools.lru_cache(maxsize=4)
def _cached_vocab(path: str, modified_ns: int, size: int) -> AnswerVocab:
    return AnswerVocab.from_counts(answer_counts(read_annotations(Path(path))[0]), size)


def train_answer_vocab(train_annotations: Path, size: int) -> AnswerVocab:
    """The ``size`` most frequent train answers (read once per file and size)."""
    return _cached_vocab(str(train_annotations), train_annotations.stat().st_mtime_ns, size)


def vqa2_answer_vocab(data_dir: str | Path, size: int, split_names: Mapping[str, str] | None = None) -> AnswerVocab:
    """The answer vocabulary that ``vqa2`` builds from ``data_dir``'s train annotations."""
    official = split_file(split_names or VQA2_SPLITS, "train", "vqa2")
    path = annotations_path(Path(data_dir), official)
    require_files([path], "vqa2")
    return train_answer_vocab(path, size)


@DATASETS.register(parts={"tokenizer": "processors", "train_transform": "processors",
                          "eval_transform": "processors"})
def vqa2(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    image_dir: str | None = None,
    split_names: Mapping[str, str] | None = None,
    answer_vocab_file: str | None = None,
    answer_vocab_size: int = 3129,
    max_samples: int | None = None,
    check_images: bool = True,
    train_transform: Any = None,
    eval_transform: Any = None,
    strict: bool = False,
) -> VqaDataset:
    """VQAv2: ``v2_OpenEnded_mscoco_<x>_questions.json`` + ``v2_mscoco_<x>_annotations.json``.

    Images are ``<image_dir>/<x>/COCO_<x>_<image_id:012d>.jpg``. The answer vocabulary is
    the ``answer_vocab_size`` most frequent normalised answers of the train annotations
    (all ten answers of every question count), or the lines of ``answer_vocab_file``.

    Args:
        data_dir: the VQAv2 folder.
        split: ``train`` / ``val`` / ``test`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node (``bert_tokenizer`` ...).
        image_dir: the COCO image root holding ``<x>/`` (None: ``data_dir``).
        split_names: split -> official name ``<x>`` (default train2014 / val2014 / test2015).
        answer_vocab_file: one answer a line, relative to ``data_dir`` (None: from train).
        answer_vocab_size: answers kept when built from train.
        max_samples: keep only the first questions (None: all).
        check_images: check every image file exists when the dataset is built.
        train_transform: image transform of the train split (e.g. ``vl_train_transform``).
        eval_transform: image transform of the other splits (e.g. ``vl_eval_transform``).
        strict: annotations of unlisted questions or with other than ten answers are an error
            instead of a warning.

    Returns:
        A VQA dataset: batches hold ``image`` ``[B, 3, H, W]``, ``pixel_mask`` ``[B, H, W]``,
        ``input_ids`` / ``attention_mask`` / ``token_type_ids`` ``[B, T]``,
        ``answer_scores`` ``[B, A]`` (``min(#matches / 3, 1)``), ``answers`` (B lists of
        raw answers), ``answer_type`` and ``question_type`` (B strings each, "" where the
        annotations give none),
        ``question_id`` / ``image_id`` ``[B]``.
    """
    names = split_names or VQA2_SPLITS
    official, train_official = split_file(names, split, name), split_file(names, "train", name)
    root = Path(data_dir)
    images_root = Path(image_dir) if image_dir else root
    needed = [questions_path(root, official)]
    if has_annotations(official):
        needed.append(annotations_path(root, official))
    needed.append(root / answer_vocab_file if answer_vocab_file else annotations_path(root, train_official))
    require_files(dict.fromkeys(needed), "vqa2")
    answers: dict[int, tuple[str, ...]] = {}
    answer_types: dict[int, str] = {}
    question_types: dict[int, str] = {}
    if has_annotations(official):
        answers, answer_types, question_types = read_annotations(annotations_path(root, official))
    if answer_vocab_file:
        vocab = AnswerVocab.from_file(root / answer_vocab_file)
    elif official == train_official:
        vocab = AnswerVocab.from_counts(answer_counts(answers), answer_vocab_size)
    else:
        vocab = train_answer_vocab(annotations_path(root, train_official), answer_vocab_size)
    every_question = read_questions(questions_path(root, official))
    check_annotations(answers, every_question, RecordProblems(name, annotations_path(root, official), strict))
    questions = []
    for question_id, image_id, text in take(every_question, max_samples, name):
        if answers and question_id not in answers:
            raise ConfigError(f"{annotations_path(root, official)}: no annotation for question_id {question_id}")
        path = images_root / official / f"COCO_{official}_{image_id:012d}.jpg"
        questions.append(VqaQuestion(question_id, image_id, path, text, answers.get(question_id, ()),
                                     answer_types.get(question_id), question_types.get(question_id)))
    if check_images:
        require_images((q.image_path for q in questions), name)
    return VqaDataset(questions, vocab, tokenizer, choose_transform(split, train_transform, eval_transform),
                      name, questions_path(root, official))
