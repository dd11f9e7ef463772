"""VQAv2 from the official questions and annotations JSON files."""
from __future__ import annotations

import functools
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from unimm.config.errors import ConfigError
from unimm.data.answer_vocab import AnswerVocab
from unimm.data.common import choose_transform, take
from unimm.data.files import coco_image_ids, field, json_list, named_splits, read_json, require_files, split_file
from unimm.data.images import require_images
from unimm.data.problems import RecordProblems
from unimm.data.vqa import VqaDataset, VqaQuestion
from unimm.data.vqa_normalize import normalize_answer
from unimm.registry import DATASETS

logger = logging.getLogger("unimm")

VQA2_SPLITS = {"train": "train2014", "val": "val2014", "test": "test2015"}
# test-dev2015 is a subset of test2015: its pictures are test2015's (folder and file names)
IMAGE_FOLDERS = {"test-dev2015": "test2015"}


def questions_path(root: Path, official: str) -> Path:
    return root / f"v2_OpenEnded_mscoco_{official}_questions.json"


def annotations_path(root: Path, official: str) -> Path:
    return root / f"v2_mscoco_{official}_annotations.json"


def image_folder(official: str, image_dir: Path | None, data_dir: Path) -> Path:
    """The folder of a split's COCO pictures (``train2014/`` ...): under ``image_dir`` (the COCO root, as
    the UniT configs set it), else under the VQAv2 folder itself, where the VQA download page's image
    archives unpack beside the question files. Neither existing is an error naming both places."""
    folder = IMAGE_FOLDERS.get(official, official)
    places = list(dict.fromkeys(p / folder for p in (image_dir, data_dir) if p is not None))
    found = next((p for p in places if p.is_dir()), None)
    if found is None:
        raise ConfigError([f"missing folder: {p}" for p in places],
                          source=f"the vqa2 pictures of {official} (COCO's {folder}.zip from "
                                 "https://cocodataset.org/#download or the VQA download page, unpacked into one "
                                 "of these places; nothing is downloaded at run time)")
    return found


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
def _cached_vocab(paths: tuple[str, ...], modified_ns: tuple[int, ...], size: int, coco2017_split: str | None
                  ) -> AnswerVocab:
    answers: dict[int, tuple[str, ...]] = {}
    for path in paths:
        answers.update(read_annotations(Path(path))[0])
    if coco2017_split:
        val_images = coco_image_ids(Path(coco2017_split))
        image_of = {q: image for path in paths for q, image, _ in read_questions(questions_file_of(Path(path)))}
        answers = {q: given for q, given in answers.items() if image_of.get(q) not in val_images}
    return AnswerVocab.from_counts(answer_counts(answers), size)


def questions_file_of(annotations: Path) -> Path:
    """``v2_mscoco_<x>_annotations.json`` -> ``v2_OpenEnded_mscoco_<x>_questions.json`` beside it."""
    official = annotations.name[len("v2_mscoco_"):-len("_annotations.json")]
    return questions_path(annotations.parent, official)


def vqa2_answer_vocab(data_dir: str | Path, size: int, split_names: Mapping[str, str] | None = None,
                      coco2017_split: str | None = None) -> AnswerVocab:
    """The answer vocabulary that ``vqa2`` builds from ``data_dir``'s train annotations (the ``size`` most
    frequent normalised answers; with ``coco2017_split``, those of train2014 + val2014 outside COCO
    val2017). Read once per set of files and size."""
    names = named_splits(VQA2_SPLITS, split_names)
    sources = [split_file(names, "train", "vqa2")] + ([split_file(names, "val", "vqa2")] if coco2017_split else [])
    paths = [annotations_path(Path(data_dir), o) for o in sources]
    require_files(paths, "vqa2")
    return _cached_vocab(tuple(map(str, paths)), tuple(p.stat().st_mtime_ns for p in paths), size,
                         str(coco2017_split) if coco2017_split else None)


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
    coco2017_split: str | None = None,
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
        image_dir: the COCO image root holding ``<x>/``; pictures are also found in ``data_dir/<x>/``,
            where the VQA download page's image archives unpack (``test-dev2015`` reads ``test2015/``).
        split_names: split -> official name ``<x>`` (default train2014 / val2014 / test2015;
            ``{test: test-dev2015}`` reads the test-dev questions). Test splits have no answers: the
            dataset's ``has_labels`` is False, metrics refuse it and ``run_type=predict`` writes the
            results file the evaluation server reads.
        coco2017_split: COCO's ``annotations/instances_val2017.json``: train and val then follow UniT
            Sec. 4.1 ("we train on those images not overlapping with COCO val2017 and evaluate on those
            images in COCO val2017"): both read the questions of train2014 and val2014, val keeps
            those on val2017 pictures and train the others (None: the official train2014 / val2014).
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
    names = named_splits(VQA2_SPLITS, split_names)
    official, train_official = split_file(names, split, name), split_file(names, "train", name)
    root = Path(data_dir)
    pictures_root = Path(image_dir) if image_dir else None
    if coco2017_split and split in ("train", "val"):
        sources = [train_official, split_file(names, "val", name)]
        val_images = coco_image_ids(Path(coco2017_split))
    else:
        sources, val_images = [official], None
    needed = [questions_path(root, o) for o in sources]
    needed += [annotations_path(root, o) for o in sources if has_annotations(o)]
    needed.append(root / answer_vocab_file if answer_vocab_file else annotations_path(root, train_official))
    require_files(dict.fromkeys(needed), "vqa2")
    every_question = [q for o in sources for q in read_split(root, o, pictures_root, name, strict)]
    if val_images is not None:
        every_question = [q for q in every_question if (q.image_id in val_images) == (split == "val")]
        logger.info("datasets.%s: %d questions of %s on %s COCO val2017 pictures (%s)", name, len(every_question),
                    " + ".join(sources), "the" if split == "val" else "no", coco2017_split)
    if answer_vocab_file:
        vocab = AnswerVocab.from_file(root / answer_vocab_file)
    elif split == "train":
        vocab = AnswerVocab.from_counts(answer_counts({q.question_id: q.answers for q in every_question}),
                                        answer_vocab_size)
    else:
        vocab = vqa2_answer_vocab(root, answer_vocab_size, names, coco2017_split)
    questions = take(every_question, max_samples, name)
    if check_images:
        require_images((q.image_path for q in questions), name)
    return VqaDataset(questions, vocab, tokenizer, choose_transform(split, train_transform, eval_transform),
                      name, questions_path(root, official), results_name=f"mscoco_{official}")


def read_split(root: Path, official: str, image_dir: Path | None, name: str, strict: bool) -> list[VqaQuestion]:
    """The questions of one official file (``train2014`` ...) with their answers (none on a test split)."""
    answers: dict[int, tuple[str, ...]] = {}
    answer_types: dict[int, str] = {}
    question_types: dict[int, str] = {}
    if has_annotations(official):
        answers, answer_types, question_types = read_annotations(annotations_path(root, official))
    every_question = read_questions(questions_path(root, official))
    check_annotations(answers, every_question, RecordProblems(name, annotations_path(root, official), strict))
    pictures = image_folder(official, image_dir, root)
    out = []
    for question_id, image_id, text in every_question:
        if answers and question_id not in answers:
            raise ConfigError(f"{annotations_path(root, official)}: no annotation for question_id {question_id}")
        path = pictures / f"COCO_{pictures.name}_{image_id:012d}.jpg"
        out.append(VqaQuestion(question_id, image_id, path, text, answers.get(question_id, ()),
                               answer_types.get(question_id), question_types.get(question_id)))
    return out
