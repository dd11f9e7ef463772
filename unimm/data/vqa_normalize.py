"""VQA answers: the official evaluation's answer processing and accuracy, and training targets.

``vqa_accuracy`` scores one prediction as the official VQA evaluation (vqaEval.py of the VQA API,
GT-Vision-Lab/VQA) does:

1. newlines and tabs become spaces and surrounding whitespace goes, in the prediction and in
   every human answer;
2. only if the human answers are not all the same string after step 1 are the prediction and the
   human answers processed (``normalize_answer``); when they are unanimous the comparison is
   exact, case included (the VQA authors meant to leave text read in the image, OCR answers,
   untouched). So "two" against ten "2" scores 0, and "Yes" against ten "yes" scores 0;
3. each annotator in turn is left out, the prediction scores ``min(#matching others / 3, 1)``
   against the other (nine) answers, and these scores are averaged.

The processing of step 2 (``normalize_answer``), in the official order:

* punctuation (``;/[]"{}()=+\\_-><@`,?!``): if the text holds a digit-comma-digit number, every
  mark is deleted; otherwise a mark that the *original* text has next to a space is deleted and
  any other mark becomes a space (``"t-shirt"`` -> ``"t shirt"``, ``"yes!"`` -> ``"yes"``); then a
  period not followed by a digit is deleted (``"2.5"`` stays);
* lower case, split into words; number words up to ten become digits (``"two"`` -> ``"2"``,
  ``"none"`` -> ``"0"``); the articles ``a``, ``an``, ``the`` go; the official contraction table
  gives contractions back their apostrophes (``"dont"`` -> ``"don't"``, ``"couldnt've"`` ->
  ``"couldn't've"``).

Training targets (``soft_scores``, ``answer_scores``) and the answer vocabulary normalise every
answer, unanimous or not, as BUTD and MMF do: a target is a class over normalised answers, while
the evaluation follows the official rule above.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
                "@", "`", ",", "?", "!")
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
# The official call hands re.UNICODE (32) to the ``count`` parameter of ``sub``, so it deletes at
# most the first 32 such periods; kept so that even such a text is scored as officially.
_MAX_PERIODS_STRIPPED = 32
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
            "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = frozenset({"a", "an", "the"})
# The official contraction table, written form -> the forms annotators typed. Some typed forms keep
# part of the apostrophe ("couldn'tve"). The official "somebody'd" entry runs backwards (it maps
# "somebody'd" to "somebodyd"); it is kept so that scores stay official. The official table also
# lists "Id've", "I'dve", "Im" and "Ive", which never match because words are lower-cased first,
# and the identities "let's" and "she's": leaving those out changes nothing.
_CONTRACTION_FORMS = {
    "ain't": ("aint",), "aren't": ("arent",), "can't": ("cant",), "could've": ("couldve",),
    "couldn't": ("couldnt",), "couldn't've": ("couldnt've", "couldn'tve"), "didn't": ("didnt",),
    "doesn't": ("doesnt",), "don't": ("dont",), "hadn't": ("hadnt",),
    "hadn't've": ("hadnt've", "hadn'tve"), "hasn't": ("hasnt",), "haven't": ("havent",),
    "he'd": ("hed",), "he'd've": ("hed've", "he'dve"), "he's": ("hes",), "how'd": ("howd",),
    "how'll": ("howll",), "how's": ("hows",), "isn't": ("isnt",), "it'd": ("itd",),
    "it'd've": ("itd've", "it'dve"), "it'll": ("itll",), "ma'am": ("maam",),
    "mightn't": ("mightnt",), "mightn't've": ("mightnt've", "mightn'tve"), "might've": ("mightve",),
    "mustn't": ("mustnt",), "must've": ("mustve",), "needn't": ("neednt",), "not've": ("notve",),
    "o'clock": ("oclock",), "oughtn't": ("oughtnt",), "'ow's'at": ("ow's'at", "'ows'at", "'ow'sat"),
    "shan't": ("shant",), "she'd've": ("shed've", "she'dve"), "should've": ("shouldve",),
    "shouldn't": ("shouldnt",), "shouldn't've": ("shouldnt've", "shouldn'tve"),
    "somebodyd": ("somebody'd",), "somebody'd've": ("somebodyd've", "somebody'dve"),
    "somebody'll": ("somebodyll",), "somebody's": ("somebodys",), "someone'd": ("someoned",),
    "someone'd've": ("someoned've", "someone'dve"), "someone'll": ("someonell",),
    "someone's": ("someones",), "something'd": ("somethingd",),
    "something'd've": ("somethingd've", "something'dve"), "something'll": ("somethingll",),
    "that's": ("thats",), "there'd": ("thered",), "there'd've": ("thered've", "there'dve"),
    "there're": ("therere",), "there's": ("theres",), "they'd": ("theyd",),
    "they'd've": ("theyd've", "they'dve"), "they'll": ("theyll",), "they're": ("theyre",),
    "they've": ("theyve",), "'twas": ("twas",), "wasn't": ("wasnt",), "we'd've": ("wed've", "we'dve"),
    "we've": ("weve",), "weren't": ("werent",), "what'll": ("whatll",), "what're": ("whatre",),
    "what's": ("whats",), "what've": ("whatve",), "when's": ("whens",), "where'd": ("whered",),
    "where's": ("wheres",), "where've": ("whereve",), "who'd": ("whod",),
    "who'd've": ("whod've", "who'dve"), "who'll": ("wholl",), "who's": ("whos",), "who've": ("whove",),
    "why'll": ("whyll",), "why're": ("whyre",), "why's": ("whys",), "won't": ("wont",),
    "would've": ("wouldve",), "wouldn't": ("wouldnt",), "wouldn't've": ("wouldnt've", "wouldn'tve"),
    "y'all": ("yall",), "y'all'll": ("yall'll", "y'allll"),
    "y'all'd've": ("yall'd've", "y'alld've", "y'all'dve"), "you'd": ("youd",),
    "you'd've": ("youd've", "you'dve"), "you'll": ("youll",), "you're": ("youre",), "you've": ("youve",),
}
_CONTRACTIONS = {typed: written for written, forms in _CONTRACTION_FORMS.items() for typed in forms}


def clean_whitespace(answer: str) -> str:
    """Newlines and tabs become spaces; surrounding whitespace goes.

    The official VQA evaluation (vqaEval.py) does this to every answer, processed or not.
    """
    return answer.replace("\n", " ").replace("\t", " ").strip()


def strip_punctuation(text: str) -> str:
    """The punctuation step of the official VQA evaluation (vqaEval.py).

    Whether a mark is deleted or becomes a space is decided on ``text`` as given, not on the text
    left by the marks handled before it: all marks are deleted when ``text`` holds a
    digit-comma-digit number (``"1,000"`` -> ``"1000"``), a mark found next to a space is deleted,
    and any other mark becomes a space. Then a period not followed by a digit is deleted.
    """
    has_number_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _PUNCTUATION:
        delete = has_number_comma or f"{mark} " in text or f" {mark}" in text
        out = out.replace(mark, "" if delete else " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_MAX_PERIODS_STRIPPED)


def standardize_words(text: str) -> str:
    """The word step of the official VQA evaluation (vqaEval.py), run after ``strip_punctuation``.

    Lower case and split on whitespace; number words become digits, then articles are dropped,
    then each remaining word found in the contraction table is replaced by its written form.
    """
    words = [_NUMBERS.get(word, word) for word in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES)


def normalize_answer(answer: str) -> str:
    """The form the official VQA evaluation (vqaEval.py) gives an answer when it processes it.

    Whitespace, then punctuation, then digits, articles and contractions (see the module
    docstring). The official evaluation applies it only to questions whose human answers differ;
    training targets and the answer vocabulary apply it to every answer.
    """
    return standardize_words(strip_punctuation(clean_whitespace(answer)))


def official_forms(prediction: str, answers: Sequence[str]) -> tuple[str, list[str]]:
    """The prediction and human answers as the official VQA evaluation (vqaEval.py) compares them.

    Whitespace is always cleaned; the rest of ``normalize_answer`` runs, on the prediction and on
    every human answer, only when the cleaned human answers are not all the same string.
    """
    predicted, given = clean_whitespace(prediction), [clean_whitespace(a) for a in answers]
    if len(set(given)) > 1:
        predicted = standardize_words(strip_punctuation(predicted))
        given = [standardize_words(strip_punctuation(a)) for a in given]
    return predicted, given


def soft_score(matches: int) -> float:
    """``min(matches / 3, 1)``: the credit of an answer that ``matches`` annotators gave."""
    return min(matches / 3.0, 1.0)


def soft_scores(answers: Iterable[str]) -> dict[str, float]:
    """Normalised answer -> training target ``soft_score(#answers with that normal form)``.

    Every answer is normalised, as in BUTD and MMF, even when the official evaluation would compare
    a question's (unanimous) answers exactly.
    """
    counts = Counter(normalize_answer(a) for a in answers)
    return {answer: soft_score(n) for answer, n in counts.items()}


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Accuracy of one prediction against a question's raw human answers (VQAv2: ten).

    With two or more answers this is the official VQA evaluation (vqaEval.py): the forms of
    ``official_forms``, then for each annotator left out in turn ``soft_score(#other annotators
    whose answer equals the prediction)``, averaged over the annotators. A prediction that 1, 2, 3
    or 4+ of ten annotators gave scores 0.3, 0.6, 0.9 or 1.0.

    A single answer (Visual Genome QA, which has no official evaluation; the official rule would
    score it 0 whatever the prediction) scores 1 when its normal form equals the prediction's.
    No answer scores 0.

    Args:
        prediction: the predicted answer string.
        answers: the human answers as annotated, not normalised.
    """
    if not answers:
        return 0.0
    if len(answers) == 1:
        return float(normalize_answer(answers[0]) == normalize_answer(prediction))
    predicted, given = official_forms(prediction, answers)
    matches = [answer == predicted for answer in given]
    total = sum(matches)
    # Leaving annotator i out leaves total - matches[i] matching answers among the others.
    scores = [soft_score(total - matched) for matched in matches]
    return sum(scores) / len(scores)


def answer_scores(answers: Sequence[str]) -> dict[str, float]:
    """Normalised answer -> training target for one question.

    Several human answers (VQAv2's ten) give ``soft_scores``; a single answer (Visual Genome QA)
    is taken as certain and scores 1.
    """
    if len(answers) == 1:
        return {normalize_answer(answers[0]): 1.0}
    return soft_scores(answers)
