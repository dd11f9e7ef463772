"""Chance and "blind" baselines, fitted on a train split and measured on a validation split.

A model trained on the benchmark should be judged against these: the majority answer, a prior
that reads only the question (VQA) or only the hypothesis (entailment), and a bag-of-words
logistic regression that sees the text but neither word order nor the picture. Everything is plain
numpy and deterministic.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

from unimm.data.shapes.questions import normalise

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


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQAv2 accuracy of one prediction: min(#matching humans / 3, 1) averaged over the 10 leave-one-out sets."""
    matches = [normalise(a) == normalise(prediction) for a in answers]
    total = sum(matches)
    return float(np.mean([min((total - m) / 3.0, 1.0) for m in matches]))


def vqa_baselines(train: Sequence[tuple], evaluate: Sequence[tuple]) -> dict:
    """Chance, majority and question-only prior for VQA.

    Args:
        train, evaluate: ``(question, question_type, answers, multiple_choice_answer)`` tuples.

    Returns:
        ``chance`` (an answer drawn uniformly from the train answers), ``majority`` (the most common
        train answer) and ``question_only_prior`` (the most common train answer to the same
        question text, else to the same question type).
    """
    vocabulary = Counter(normalise(mc) for _, _, _, mc in train)
    by_question, by_type = defaultdict(Counter), defaultdict(Counter)
    for question, question_type, _, mc in train:
        by_question[question.lower()][normalise(mc)] += 1
        by_type[question_type][normalise(mc)] += 1

    def top(counter: Counter) -> str:
        return min(counter, key=lambda a: (-counter[a], a))

    common = top(vocabulary)
    chance, always, prior = [], [], []
    for question, question_type, answers, _ in evaluate:
        present = sorted({normalise(a) for a in answers} & set(vocabulary))  # sorted: a fixed summation order
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


def all_baselines(records: dict, retrieval: dict) -> dict:
    """Every task's baselines, from the records the writers return.

    Args:
        records: per task, per split, the rows the writers returned (see each writer).
        retrieval: Karpathy split counts, ``{"coco": {"test": n, ...}, "flickr30k": {...}}``.
    """
    detection_note = ("chance mAP is ~0: a detector must localise; a blind one that predicts the mean train box "
                      "per class scores near zero on these small, spread-out objects")
    vqa, glue = records["vqa2"], records["glue"]
    snli_ve = {split: _single_text(rows) for split, rows in records["snli_ve"].items()}
    nlvr2 = {split: _single_text(rows) for split, rows in records["nlvr2"].items()}
    images = records["imagefolder"]
    mnli = glue["MNLI"]
    result = {
        "coco_detection": {"metric": "mAP", "split": "val2017", "chance": 0.0, "note": detection_note},
        "vg_detection": {"metric": "mAP", "split": "val", "chance": 0.0, "note": detection_note},
        "vqa2": {"metric": "vqa_accuracy", "split": "val2014", **vqa_baselines(vqa["train2014"], vqa["val2014"])},
        "snli_ve": _text_baselines(snli_ve["train"], snli_ve["dev"], "dev", "hypothesis_only", full=None),
        "nlvr2": _text_baselines(nlvr2["train"], nlvr2["dev"], "dev", "sentence_only", full=None),
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
    for name, counts in retrieval.items():
        test_images = counts.get("test", 0)
        if test_images:
            chance = retrieval_chance(test_images, 5)
            result[f"retrieval_{name}"] = {"metric": "recall@k", "split": "test", "images": test_images,
                                           "chance": chance}
    for entry in result.values():
        entry.setdefault("note", "")
    return dict(sorted(result.items()))
