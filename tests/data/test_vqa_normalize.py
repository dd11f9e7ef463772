"""VQA answer processing, soft scores and the official accuracy (vqaEval.py), on hand-derived cases."""
from __future__ import annotations

import pytest

from unimm.data.answer_vocab import AnswerVocab
from unimm.data.vqa_normalize import (answer_scores, normalize_answer, official_forms, soft_score, soft_scores,
                                      vqa_accuracy)


@pytest.mark.parametrize("raw, normal", [
    # number words -> digits, lower case, articles dropped
    ("Two", "2"), ("two dogs", "2 dogs"), ("none", "0"), ("ten", "10"), ("eleven", "eleven"),
    ("The cat.", "cat"), ("a dog", "dog"), ("an apple?", "apple"), ("A man's hat", "man's hat"),
    # whitespace: newlines and tabs become spaces, the ends are stripped
    ("  no\n", "no"), ("red\tcar", "red car"),
    # a mark next to a space is deleted, any other becomes a space ("x - y" -> "x  y" -> "x y")
    ("yes!", "yes"), ("Yes", "yes"), ("red, white", "red white"), ("t-shirt", "t shirt"), ("x - y", "x y"),
    ("hi (there)", "hi there"), ("(red)", "red"), ("yes?!", "yes"),
    # a digit-comma-digit number deletes every mark, even the ones that would become spaces
    ("1,000", "1000"), ("1,000 (about)", "1000 about"),
    # a period is deleted unless a digit follows it
    ("2.5", "2.5"), (".5", ".5"), ("3.", "3"), ("U.S.A.", "usa"), ("cat . dog", "cat dog"),
    # the apostrophe is no punctuation mark: it stays
    ("don't", "don't"), ("'twas", "'twas"),
    # the official contraction table, including its partly apostrophised keys
    ("dont", "don't"), ("isnt", "isn't"), ("couldnt've", "couldn't've"), ("couldn'tve", "couldn't've"),
    ("y'allll", "y'all'll"), ("'ows'at", "'ow's'at"), ("twas", "'twas"),
    # ... and what it lacks: no apostrophe-free key for a double contraction, no reachable "im"/"ive"
    # (the official keys are capitalised "Im"/"Ive" and words are lower-cased first), no "lets"/"shes"
    ("couldntve", "couldntve"), ("itdve", "itdve"), ("im", "im"), ("Ive", "ive"), ("lets", "lets"),
    ("shes", "shes"), ("shed", "shed"),
    # the official entry that runs backwards
    ("somebody'd", "somebodyd"),
])
def test_official_processing(raw, normal):
    assert normalize_answer(raw) == normal


def test_more_than_32_periods_keep_the_rest_as_officially():
    # The official call passes re.UNICODE (32) as the count of periods to delete.
    assert normalize_answer("." * 40 + "x") == "." * 8 + "x"


@pytest.mark.parametrize("prediction, answers, expected", [
    # unanimous answers (after whitespace cleaning) are compared exactly, case included
    ("two", ["2"] * 10, 0.0),
    ("2", ["2"] * 10, 1.0),
    ("Yes", ["yes"] * 10, 0.0),
    ("yes", ["Yes"] * 10, 0.0),
    ("t shirt", ["t-shirt"] * 10, 0.0),
    ("The Dog!", ["dog"] * 10, 0.0),
    # whitespace is always cleaned, in the prediction and in the answers
    (" 2\n", ["2"] * 10, 1.0),
    ("yes", ["yes\n"] * 10, 1.0),
    ("two", ["2"] * 5 + ["2 "] * 5, 0.0),  # unanimous once cleaned: still exact
    # mixed answers: prediction and answers are processed
    ("two", ["2"] * 9 + ["3"], 1.0),
    ("Yes", ["yes"] * 9 + ["Yes"], 1.0),  # one capital letter is enough to switch processing on
    ("The Dog!", ["dog"] * 3 + ["cat"] * 7, 0.9),
    ("dog", ["a dog", "the dog", "A Dog.", "dogs"] + ["cat"] * 6, 0.9),
    ("t shirt", ["t-shirt"] * 9 + ["T-Shirt"], 1.0),
    ("1000", ["1,000"] * 2 + ["1000"] + ["500"] * 7, 0.9),
    ("couldn't've", ["couldnt've", "couldn'tve", "couldn't've"] + ["no"] * 7, 0.9),
    ("couldn't've", ["couldntve"] * 3 + ["no"] * 7, 0.0),  # not an official key
])
def test_official_accuracy(prediction, answers, expected):
    assert vqa_accuracy(prediction, answers) == pytest.approx(expected)


@pytest.mark.parametrize("matches, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (9, 1.0)])
def test_accuracy_averages_the_ten_leave_one_out_subsets(matches, expected):
    # k matching annotators: leaving one of them out leaves k - 1 matches, any other leaves k;
    # e.g. k = 3: (3 * min(2/3, 1) + 7 * min(3/3, 1)) / 10 = 0.9
    assert vqa_accuracy("2", ["2"] * matches + ["3"] * (10 - matches)) == pytest.approx(expected)


def test_official_forms_process_only_when_the_answers_differ():
    assert official_forms(" Two\n", ["Two", "Two "]) == ("Two", ["Two", "Two"])
    assert official_forms(" Two\n", ["Two", "a two"]) == ("2", ["2", "2"])


def test_soft_score_is_min_of_matches_over_three_and_one():
    assert [soft_score(n) for n in range(5)] == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    scores = soft_scores(["two", "2", "2 ", "3", "Three", "three.", "three", "4", "yes", "a yes"])
    assert scores == pytest.approx({"2": 1.0, "3": 1.0, "4": 1 / 3, "yes": 2 / 3})


def test_training_targets_normalise_even_unanimous_answers():
    # Targets are classes over normalised answers (as BUTD / MMF), unlike the official evaluation.
    assert soft_scores(["Two"] * 10) == {"2": 1.0}
    assert vqa_accuracy("2", ["Two"] * 10) == 0.0


def test_single_answer_is_full_credit():
    assert answer_scores(["The Dog"]) == {"dog": 1.0}
    assert vqa_accuracy("dog", ["dog"]) == 1.0 and vqa_accuracy("cat", ["dog"]) == 0.0
    assert vqa_accuracy("2", ["Two."]) == 1.0  # Visual Genome QA: normalised forms are compared
    assert vqa_accuracy("2", []) == 0.0


def test_answer_vocab_top_k_ties_alphabetical_and_out_of_vocabulary():
    from collections import Counter

    vocab = AnswerVocab.from_counts(Counter({"yes": 5, "no": 5, "2": 3, "red": 1}), size=3)
    assert vocab.answers == ["no", "yes", "2"]
    target = vocab.target({"yes": 1.0, "2": 1 / 3, "red": 1.0})  # red is outside the vocabulary
    assert target.tolist() == pytest.approx([0.0, 1.0, 1 / 3])
    assert vocab.index("red") is None and "yes" in vocab
