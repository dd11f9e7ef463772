"""VQA answer normalisation and scoring, as the official VQA evaluation does them.

Used both to build training targets (``soft_score``) and by the VQA accuracy metric
(``vqa_accuracy``), so that both see answers the same way:

* newlines and tabs become spaces; surrounding spaces go;
* punctuation: a mark next to a space, or any mark in a text holding a digit-comma-digit
  number, is deleted; otherwise it becomes a space (so ``"t-shirt"`` -> ``"t shirt"``,
  ``"yes!"`` -> ``"yes"``); a period not followed by a digit is deleted (``"2.5"`` stays);
* lower case; number words up to ten become digits (``"two"`` -> ``"2"``, ``"none"`` -> ``"0"``);
  the articles ``a``, ``an``, ``the`` are dropped;
* contractions written without their apostrophe get it back (``"dont"`` -> ``"don't"``).
"""
from __future__ import annotations

import re
from collections import Counter
from itertools import combinations
from typing import Iterable, Sequence

_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
                "@", "`", ",", "?", "!")
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
            "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = frozenset({"a", "an", "the"})
# Contractions as annotators typed them without the apostrophe -> the written form.
_CONTRACTIONS = {
    word.replace("'", ""): word
    for word in (
        "ain't", "aren't", "can't", "could've", "couldn't", "couldn't've", "didn't", "doesn't",
        "don't", "hadn't", "hadn't've", "hasn't", "haven't", "he'd", "he'd've", "he's", "how'd",
        "how'll", "how's", "i'd've", "i'm", "i've", "isn't", "it'd", "it'd've", "it'll", "let's",
        "ma'am", "mightn't", "mightn't've", "might've", "mustn't", "must've", "needn't", "not've",
        "o'clock", "oughtn't", "shan't", "she'd", "she'd've", "she's", "should've",
        "shouldn't", "shouldn't've", "somebody'd", "somebody'd've", "somebody'll", "somebody's",
        "someone'd", "someone'd've", "someone'll", "someone's", "something'd", "something'd've",
        "something'll", "that's", "there'd", "there'd've", "there're", "there's", "they'd",
        "they'd've", "they'll", "they're", "they've", "'twas", "wasn't", "we'd've", "we've",
        "weren't", "what'll", "what're", "what's", "what've", "when's", "where'd", "where's",
        "where've", "who'd", "who'd've", "who'll", "who's", "who've", "why'll", "why're", "why's",
        "won't", "would've", "wouldn't", "wouldn't've", "y'all", "y'all'll", "y'all'd've", "you'd",
        "you'd've", "you'll", "you're", "you've",
    )
}


def normalize_answer(answer: str) -> str:
    """The official normal form of a VQA answer (see the module docstring)."""
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    text = _strip_punctuation(text)
    words = []
    for word in text.lower().split():
        word = _NUMBERS.get(word, word)
        if word not in _ARTICLES:
            words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


def _strip_punctuation(text: str) -> str:
    has_number_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    for mark in _PUNCTUATION:
        if mark not in text:
            continue
        delete = has_number_comma or f"{mark} " in text or f" {mark}" in text
        text = text.replace(mark, "" if delete else " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", text)


def soft_score(matches: int) -> float:
    """Training target of an answer given by ``matches`` annotators: ``min(matches / 3, 1)``."""
    return min(matches / 3.0, 1.0)


def soft_scores(answers: Iterable[str]) -> dict[str, float]:
    """Normalised answer -> soft score, over one question's human answers."""
    counts = Counter(normalize_answer(a) for a in answers)
    return {answer: soft_score(n) for answer, n in counts.items()}


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Official VQA accuracy of one prediction against the human answers (usually 10).

    The accuracy is ``min(#humans who gave the prediction / 3, 1)`` averaged over the
    leave-one-out subsets of the answers (10 choose 9). With a single answer (Visual Genome
    QA) it is an exact match.
    """
    if not answers:
        return 0.0
    predicted = normalize_answer(prediction)
    given = [normalize_answer(a) for a in answers]
    if len(given) == 1:
        return float(given[0] == predicted)
    subsets = combinations(range(len(given)), len(given) - 1)
    scores = [soft_score(sum(given[i] == predicted for i in subset)) for subset in subsets]
    return sum(scores) / len(scores)


def answer_scores(answers: Sequence[str]) -> dict[str, float]:
    """Normalised answer -> training score for one question.

    Several human answers (VQAv2's ten) give ``soft_scores``; a single answer (Visual
    Genome QA) is taken as certain and scores 1.
    """
    if len(answers) == 1:
        return {normalize_answer(answers[0]): 1.0}
    return soft_scores(answers)
