"""Chance and "blind" baselines, fitted on a train split and measured on a validation split.

A model trained on the benchmark should be judged against these: the majority answer, a prior
that reads only the question (VQA) or only the hypothesis (entailment), a bag-of-words
logistic regression that sees the text but neither word order nor the picture, a prior per
sentence template (the text with its colours, shapes, sizes and counts masked) for the tasks whose
sentences come from templates, and, for
detection, a prior that puts each class's mean train box on every picture. Everything is plain
numpy (and pycocotools' ``COCOeval`` for detection mAP) and deterministic.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from unimm.benchmark.shapes import lexicon
from unimm.data.vqa_normalize import normalize_answer, vqa_accuracy
from unimm.metrics.coco_eval import evaluate_boxes

_WORD = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")


def majority(train_labels: Sequence[str], eval_labels: Sequence[str]) -> dict:
    """Accuracy of always predicting the most common train label (ties: the smallest label)."""
    tally = Counter(train_labels)
    label = min(tally, key=lambda name: (-tally[name], name))
    return {"label": label, "accuracy": _rounded(np.mean([y == label for y in eval_labels]))}


def _rounded(value: float) -> float:
    return round(float(value), 4)


def _grams(texts: Sequence[str]) -> set[str]:
    """Unigrams and bigrams of each text field, tagged with the field's position."""
    grams = set()
    for field, text in enumerate(texts):
        words = _WORD.findall(text.lower())
        grams.update(f"{field}|{w}" for w in words)
        grams.update(f"{field}|{a} {b}" for a, b in zip(words, words[1:]))
    return grams


def _sparse(examples: Sequence[Sequence[str]], vocabulary: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(row_ids, column_ids)`` of binary features; column 0 is a bias, unknown grams are dropped."""
    rows, columns = [], []
    for row, texts in enumerate(examples):
        ids = [0] + sorted(vocabulary[g] for g in _grams(texts) if g in vocabulary)
        rows += [row] * len(ids)
        columns += ids
    return np.array(rows, dtype=np.int64), np.array(columns, dtype=np.int64)


def _logits(weights: np.ndarray, rows: np.ndarray, columns: np.ndarray, count: int) -> np.ndarray:
    out = np.zeros((count, weights.shape[1]))
    for c in range(weights.shape[1]):
        out[:, c] = np.bincount(rows, weights=weights[columns, c], minlength=count)
    return out


def bag_of_words_accuracy(
    train: Sequence[tuple[Sequence[str], str]],
    evaluate: Sequence[tuple[Sequence[str], str]],
    steps: int = 100,
    max_train: int = 4000,
    learning_rate: float = 0.1,
    weight_decay: float = 1e-4,
) -> float:
    """Accuracy of a softmax regression on unigrams + bigrams seen in train, trained with full-batch Adam.

    Args:
        train, evaluate: ``(texts, label)`` pairs; ``texts`` holds one or more strings (e.g.
            question and sentence), each with its own features.
        steps: full-batch optimisation steps.
        max_train: only the first ``max_train`` train examples are used (keeps generation fast).
    """
    train = train[:max_train]
    labels = sorted({label for _, label in train})
    index = {label: i for i, label in enumerate(labels)}
    grams = sorted(set().union(*(_grams(texts) for texts, _ in train)))
    vocabulary = {gram: i + 1 for i, gram in enumerate(grams)}
    dimensions = len(vocabulary) + 1
    rows, columns = _sparse([texts for texts, _ in train], vocabulary)
    targets = np.zeros((len(train), len(labels)))
    targets[np.arange(len(train)), [index[label] for _, label in train]] = 1.0
    weights = np.zeros((dimensions, len(labels)))
    moment, second = np.zeros_like(weights), np.zeros_like(weights)
    for step in range(1, steps + 1):
        logits = _logits(weights, rows, columns, len(train))
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        error = (probabilities - targets) / len(train)
        gradient = np.stack(
            [np.bincount(columns, weights=error[rows, c], minlength=dimensions) for c in range(len(labels))], axis=1
        )
        gradient += weight_decay * weights
        moment = 0.9 * moment + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient**2
        weights -= learning_rate * (moment / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
    rows, columns = _sparse([texts for texts, _ in evaluate], vocabulary)
    predicted = _logits(weights, rows, columns, len(evaluate)).argmax(axis=1)
    return _rounded(np.mean([labels[p] == label for p, (_, label) in zip(predicted, evaluate)]))


# The words a template is filled with; masking them leaves the template a sentence came from.
TEMPLATE_FILLERS = frozenset(
    lexicon.SHAPES + tuple(lexicon.PLURALS.values()) + tuple(lexicon.COLOURS) + tuple(lexicon.SIZES)
    + lexicon.NUMBER_WORDS + tuple(lexicon.BACKGROUNDS.values()) + tuple(str(n) for n in range(21))
)


def template(text: str) -> str:
    """``text`` lower-cased with every template filler (colour, shape, size, count, background) as ``_``."""
    return " ".join("_" if word in TEMPLATE_FILLERS else word for word in _WORD.findall(text.lower()))


def template_prior_accuracy(train: Sequence[tuple[str, str]], evaluate: Sequence[tuple[str, str]]) -> float:
    """Accuracy of the most common train label of each sentence's template (ties: the smallest label).

    A blind reader that knows which kind of statement it reads ("there is a _ _ in the picture",
    "the _ _ is made of wood") but not what fills it. Templates never seen in train get the train
    majority.
    """
    by_template: dict[str, Counter] = defaultdict(Counter)
    for text, label in train:
        by_template[template(text)][label] += 1
    overall = Counter(label for _, label in train)

    def top(counter: Counter) -> str:
        return min(counter, key=lambda name: (-counter[name], name))

    hits = [top(by_template.get(template(text)) or overall) == label for text, label in evaluate]
    return _rounded(np.mean(hits))


def vqa_baselines(train: Sequence[tuple], evaluate: Sequence[tuple]) -> dict:
    """Chance, majority and question-only prior for VQA.

    Args:
        train, evaluate: ``(question, question_type, answers, multiple_choice_answer)`` tuples.

    Returns:
        ``chance`` (an answer drawn uniformly from the train answers), ``majority`` (the most common
        train answer) and ``question_only_prior`` (the most common train answer to the same
        question text, else to the same question type).
    """
    vocabulary = Counter(normalize_answer(mc) for _, _, _, mc in train)
    by_question, by_type = defaultdict(Counter), defaultdict(Counter)
    for question, question_type, _, mc in train:
        by_question[question.lower()][normalize_answer(mc)] += 1
        by_type[question_type][normalize_answer(mc)] += 1

    def top(counter: Counter) -> str:
        return min(counter, key=lambda a: (-counter[a], a))

    common = top(vocabulary)
    chance, always, prior = [], [], []
    for question, question_type, answers, _ in evaluate:
        present = sorted({normalize_answer(a) for a in answers} & set(vocabulary))  # sorted: a fixed summation order
        chance.append(sum(vqa_accuracy(a, answers) for a in present) / len(vocabulary))
        always.append(vqa_accuracy(common, answers))
        guess = by_question.get(question.lower()) or by_type.get(question_type) or vocabulary
        prior.append(vqa_accuracy(top(guess), answers))
    return {
        "chance": _rounded(np.mean(chance)),
        "majority": {"label": common, "accuracy": _rounded(np.mean(always))},
        "question_only_prior": _rounded(np.mean(prior)),
    }


def retrieval_chance(images: int, captions_per_image: int, ks: Sequence[int] = (1, 5, 10)) -> dict:
    """Recall@k of random ranking: image->text finds one of 5 captions, text->image the one image."""
    captions = images * captions_per_image
    text_to_image = {f"r{k}": _rounded(min(k / images, 1.0)) for k in ks}
    image_to_text = {}
    for k in ks:  # 1 - P(none of the image's captions among k drawn without replacement)
        miss = np.prod([(captions - captions_per_image - i) / (captions - i) for i in range(min(k, captions))])
        image_to_text[f"r{k}"] = _rounded(1 - miss)
    return {"image_to_text": image_to_text, "text_to_image": text_to_image}


def _text_baselines(
    train: list, evaluate: list, split: str, blind: str | None = None, full: str | None = "bag_of_words"
) -> dict:
    """Chance, majority and bag-of-words accuracies on a labelled text split.

    Args:
        train, evaluate: ``(texts, label)`` pairs.
        split: the name of the evaluated split.
        blind: if given, the key of a bag of words that reads only the last text (the hypothesis).
        full: if given, the key of a bag of words that reads every text.
    """
    result = {
        "metric": "accuracy",
        "split": split,
        "chance": _rounded(1.0 / len({label for _, label in train})),
        "majority": majority([y for _, y in train], [y for _, y in evaluate]),
    }
    if full:
        result[full] = bag_of_words_accuracy(train, evaluate)
    if blind:
        result[blind] = bag_of_words_accuracy([((t[-1],), y) for t, y in train], [((t[-1],), y) for t, y in evaluate])
    return result


def _single_text(rows: Sequence[tuple[str, str]]) -> list[tuple[tuple[str], str]]:
    return [((text,), label) for text, label in rows]


@dataclass(frozen=True)
class BoxImage:
    """One picture's size and ground-truth boxes: absolute ``(x0, y0, x1, y1)`` pixels, one category id each."""

    image_id: int
    width: int
    height: int
    boxes: Sequence[Sequence[float]]
    categories: Sequence[int]


def _clip(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float] | None:
    """``box`` clipped to the picture, or None when nothing is left (as the detection datasets clip targets)."""
    x0, y0 = min(max(float(box[0]), 0.0), float(width)), min(max(float(box[1]), 0.0), float(height))
    x1, y1 = min(max(float(box[2]), 0.0), float(width)), min(max(float(box[3]), 0.0), float(height))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def box_priors(train: Sequence[BoxImage]) -> dict[int, tuple[np.ndarray, float]]:
    """Per category id (ascending): its mean train box ``(cx, cy, w, h)`` relative to the picture
    size, and its share of the train boxes (boxes clipped to their picture, empty ones dropped)."""
    relative: dict[int, list[tuple[float, float, float, float]]] = defaultdict(list)
    for image in train:
        for box, category in zip(image.boxes, image.categories):
            clipped = _clip(box, image.width, image.height)
            if clipped is not None:
                x0, y0, x1, y1 = clipped
                relative[int(category)].append(((x0 + x1) / 2 / image.width, (y0 + y1) / 2 / image.height,
                                                (x1 - x0) / image.width, (y1 - y0) / image.height))
    total = sum(len(boxes) for boxes in relative.values())
    return {category: (np.mean(np.array(boxes, dtype=np.float64), axis=0), len(boxes) / total)
            for category, boxes in sorted(relative.items())}


def prior_detections(priors: Mapping[int, tuple[np.ndarray, float]], images: Sequence[BoxImage]) -> np.ndarray:
    """``[N, 7]`` rows ``image_id, x, y, w, h, score, category_id`` (the ``coco_map`` metric's rows): on every
    picture one detection per category, its mean box scaled to the picture, scored by its train share."""
    rows = []
    for image in images:
        for category, ((cx, cy, w, h), share) in priors.items():
            rows.append((image.image_id, (cx - w / 2) * image.width, (cy - h / 2) * image.height,
                         w * image.width, h * image.height, share, category))
    return np.array(rows, dtype=np.float64).reshape(-1, 7)


def box_map(ground_truth, rows: np.ndarray, image_ids: Sequence[int]) -> float:
    """``COCOeval`` bbox mAP@[.5:.95] of ``rows`` on ``image_ids``, through the ``coco_map`` metric's own
    evaluation (``unimm.metrics.coco_eval.evaluate_boxes``): 0 without detections or ground truth."""
    return evaluate_boxes(ground_truth, rows, list(image_ids))["map"]


def coco_ground_truth(images: Sequence[BoxImage], category_ids: Sequence[int]):
    """The boxes as an in-memory pycocotools ``COCO``, clipped to their picture (as ``DetectionDataset.coco``)."""
    annotations = []
    for image in images:
        for box, category in zip(image.boxes, image.categories):
            clipped = _clip(box, image.width, image.height)
            if clipped is not None:
                x0, y0, x1, y1 = clipped
                annotations.append({"id": len(annotations) + 1, "image_id": image.image_id, "iscrowd": 0,
                                    "category_id": int(category), "bbox": [x0, y0, x1 - x0, y1 - y0],
                                    "area": (x1 - x0) * (y1 - y0)})
    return _coco({"images": [{"id": im.image_id, "height": im.height, "width": im.width} for im in images],
                  "annotations": annotations, "categories": [{"id": int(c)} for c in category_ids]})


def _coco(dataset: dict):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def mean_box_prior(train: Sequence[BoxImage], evaluate: Sequence[BoxImage], ground_truth) -> float:
    """mAP of the blind detector that never looks at the pixels: one detection per train category on
    every evaluated picture, at the category's mean train box, scored by its share of train boxes.

    Args:
        train: the train pictures the priors are fitted on.
        evaluate: the evaluated pictures (every one gets the detections, with or without boxes).
        ground_truth: the evaluated split's pycocotools ``COCO``, as the ``coco_map`` metric uses it.
    """
    rows = prior_detections(box_priors(train), evaluate)
    return _rounded(box_map(ground_truth, rows, [image.image_id for image in evaluate]))


def _read_json(path: Path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _coco_images(data: dict) -> list[BoxImage]:
    """The pictures of a COCO instances file (file order) with their non-crowd boxes (``coco_detection``'s reading)."""
    boxes: dict[int, list] = defaultdict(list)
    for annotation in data["annotations"]:
        if not int(annotation.get("iscrowd", 0)):
            x, y, w, h = (float(v) for v in annotation["bbox"])
            boxes[int(annotation["image_id"])].append(([x, y, x + w, y + h], int(annotation["category_id"])))
    return [BoxImage(int(im["id"]), int(im["width"]), int(im["height"]),
                     [b for b, _ in boxes[int(im["id"])]], [c for _, c in boxes[int(im["id"])]])
            for im in data["images"]]


def coco_box_images(coco_dir: str | Path, train: str = "train2017", evaluate: str = "val2017"):
    """``(train pictures, evaluated pictures, ground truth)`` of COCO detection, read as ``coco_detection``
    reads them: ``annotations/instances_<split>.json``, crowd boxes dropped; the ground truth is the
    evaluated file as pycocotools' ``COCO(annotation_file)`` holds it (what ``coco_map`` scores against)."""
    folder = Path(coco_dir) / "annotations"
    evaluated = _read_json(folder / f"instances_{evaluate}.json")
    ground_truth = _coco(evaluated)
    return _coco_images(_read_json(folder / f"instances_{train}.json")), _coco_images(evaluated), ground_truth


def coco_mean_box_prior(coco_dir: str | Path, train: str = "train2017", evaluate: str = "val2017") -> float:
    """``mean_box_prior`` fitted on ``instances_<train>.json``, measured on ``instances_<evaluate>.json``."""
    return mean_box_prior(*coco_box_images(coco_dir, train, evaluate))


def _vg_image_id(record: dict) -> int:
    return int(record["image_id"] if "image_id" in record else record["id"])


def _vg_name(name: str) -> str:
    return " ".join(name.lower().split())


def vg_box_images(vg_dir: str | Path, split: str = "val", num_object_classes: int = 1600):
    """``(train pictures, evaluated pictures, ground truth)`` of Visual Genome detection, read as the
    ``visual_genome`` dataset reads them with its default arguments.

    Classes are the ``num_object_classes`` most frequent object names of the train pictures (ties
    alphabetical), category id = rank + 1; objects of other names are dropped; boxes ``x, y, w, h``
    become ``x0, y0, x1, y1``; the ground truth is built in memory and clipped, as ``DetectionDataset.coco``.
    """
    root = Path(vg_dir)
    sizes = {_vg_image_id(r): (int(r["width"]), int(r["height"])) for r in _read_json(root / "image_data.json")}
    evaluated = [i for i in _read_json(root / f"{split}_image_ids.json") if i in sizes]
    train_ids = set(_read_json(root / "train_image_ids.json"))
    wanted = set(evaluated) | train_ids
    objects: dict[int, list[tuple[list[float], str]]] = {}
    for record in _read_json(root / "objects.json"):
        image_id = _vg_image_id(record)
        if image_id in wanted:
            found = objects.setdefault(image_id, [])
            for obj in record["objects"]:
                x, y, w, h = (float(obj[k]) for k in ("x", "y", "w", "h"))
                names = obj.get("names") or [obj["name"]]
                found.append(([x, y, x + w, y + h], _vg_name(names[0])))
    counts = Counter(name for i in train_ids for _, name in objects.get(i, []))
    classes = [n for n, _ in sorted(counts.items(), key=lambda t: (-t[1], t[0]))[:num_object_classes]]
    category_of = {name: rank + 1 for rank, name in enumerate(classes)}

    def images(ids) -> list[BoxImage]:
        out = []
        for i in ids:
            kept = [(box, category_of[name]) for box, name in objects.get(i, []) if name in category_of]
            out.append(BoxImage(i, *sizes[i], [b for b, _ in kept], [c for _, c in kept]))
        return out

    evaluate = images(evaluated)
    train = images(sorted(i for i in train_ids if i in sizes))
    return train, evaluate, coco_ground_truth(evaluate, sorted(category_of.values()))


def vg_mean_box_prior(vg_dir: str | Path, split: str = "val", num_object_classes: int = 1600) -> float:
    """``mean_box_prior`` fitted on the Visual Genome train pictures, measured on every picture of ``split``."""
    return mean_box_prior(*vg_box_images(vg_dir, split, num_object_classes))


def detection_baselines(root: str | Path) -> dict[str, dict[str, float]]:
    """The detection entries' measured baselines for a benchmark folder (``coco/`` and ``vg/`` under ``root``)."""
    root = Path(root)
    return {"coco_detection": {"mean_box_prior": coco_mean_box_prior(root / "coco")},
            "vg_detection": {"mean_box_prior": vg_mean_box_prior(root / "vg")}}


def all_baselines(records: dict, retrieval: dict, detection: Mapping[str, Mapping[str, float]] | None = None) -> dict:
    """Every task's baselines, from the records the writers return.

    Args:
        records: per task, per split, the rows the writers returned (see each writer).
        retrieval: Karpathy split counts, ``{"coco": {"test": n, ...}, "flickr30k": {...}}``.
        detection: measured detection baselines, merged into their entries (``detection_baselines``).
    """
    detection_note = ("mean_box_prior: one detection per class on every picture at the class's mean train box, "
                      "scored by its share of the train boxes, never looking at the pixels (COCOeval bbox "
                      "mAP@[.5:.95], as coco_map); chance: a detector must localise, so random boxes score ~0")
    vqa, glue = records["vqa2"], records["glue"]
    snli_ve = {split: _single_text(rows) for split, rows in records["snli_ve"].items()}
    nlvr2 = {split: _single_text(rows) for split, rows in records["nlvr2"].items()}
    images = records["imagefolder"]
    mnli = glue["MNLI"]
    result = {
        "coco_detection": {"metric": "mAP", "split": "val2017", "chance": 0.0, "note": detection_note},
        "vg_detection": {"metric": "mAP", "split": "val", "chance": 0.0, "note": detection_note},
        "vqa2": {"metric": "vqa_accuracy", "split": "val2014", **vqa_baselines(vqa["train2014"], vqa["val2014"])},
        "snli_ve": {**_text_baselines(snli_ve["train"], snli_ve["dev"], "dev", "hypothesis_only", full=None),
                    "hypothesis_template_prior": template_prior_accuracy(records["snli_ve"]["train"],
                                                                         records["snli_ve"]["dev"])},
        "nlvr2": {**_text_baselines(nlvr2["train"], nlvr2["dev"], "dev", "sentence_only", full=None),
                  "sentence_template_prior": template_prior_accuracy(records["nlvr2"]["train"],
                                                                     records["nlvr2"]["dev"])},
        "imagefolder": {
            "metric": "accuracy",
            "split": "val",
            "chance": _rounded(1.0 / len(set(images["train"]))),
            "majority": majority(images["train"], images["val"]),
        },
        "sst2": _text_baselines(glue["SST-2"]["train"], glue["SST-2"]["dev"], "dev"),
        "qnli": _text_baselines(glue["QNLI"]["train"], glue["QNLI"]["dev"], "dev", "sentence_only"),
        "qqp": _text_baselines(glue["QQP"]["train"], glue["QQP"]["dev"], "dev"),
        "rte": _text_baselines(glue["RTE"]["train"], glue["RTE"]["dev"], "dev", "hypothesis_only"),
        "mnli_matched": _text_baselines(mnli["train"], mnli["dev_matched"], "dev_matched", "hypothesis_only"),
        "mnli_mismatched": _text_baselines(mnli["train"], mnli["dev_mismatched"], "dev_mismatched", "hypothesis_only"),
    }
    for task, measured in (detection or {}).items():
        result[task].update(measured)
    for name, counts in retrieval.items():
        test_images = counts.get("test", 0)
        if test_images:
            chance = retrieval_chance(test_images, 5)
            result[f"retrieval_{name}"] = {"metric": "recall@k", "split": "test", "images": test_images,
                                           "chance": chance}
    for entry in result.values():
        entry.setdefault("note", "")
    return dict(sorted(result.items()))
