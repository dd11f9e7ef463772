"""VQA answer normalisation, soft scores and the official accuracy on official-style answers."""
from __future__ import annotations

import pytest

from unimm.data.answer_vocab import AnswerVocab
from unimm.data.vqa_normalize import answer_scores, normalize_answer, soft_score, soft_scores, vqa_accuracy


@pytest.mark.parametrize("raw, normal", [
    ("Two", "2"), ("two dogs", "2 dogs"), ("none", "0"), ("ten", "10"),
    ("The cat.", "cat"), ("a dog", "dog"), ("an apple?", "apple"),
    ("yes!", "yes"), ("Yes", "yes"), ("  no\n", "no"), ("red, white", "red white"),
    ("t-shirt", "t shirt"), ("2.5", "2.5"), ("1,000", "1000"), ("hi (there)", "hi there"),
    ("dont", "don't"), ("isnt", "isn't"), ("A man's hat", "man's hat"), ("cat . dog", "cat dog"),
])
def test_official_normalisation(raw, normal):
    assert normalize_answer(raw) == normal


def test_soft_score_is_min_of_matches_over_three_and_one():
    assert [soft_score(n) for n in range(5)] == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    scores = soft_scores(["two", "2", "2 ", "3", "Three", "three.", "three", "4", "yes", "a yes"])
    assert scores == pytest.approx({"2": 1.0, "3": 1.0, "4": 1 / 3, "yes": 2 / 3})


def test_single_answer_is_full_credit():
    assert answer_scores(["The Dog"]) == {"dog": 1.0}
    assert vqa_accuracy("dog", ["dog"]) == 1.0 and vqa_accuracy("cat", ["dog"]) == 0.0


def test_accuracy_averages_the_ten_leave_one_out_subsets():
    assert vqa_accuracy("2", ["two"] * 3 + ["3"] * 7) == pytest.approx(0.9)  # 7 subsets x 1 + 3 x 2/3
    assert vqa_accuracy("two", ["2"] * 2 + ["3"] * 8) == pytest.approx(0.6)
    assert vqa_accuracy("3", ["3"] * 10) == 1.0
    assert vqa_accuracy("5", ["3"] * 10) == 0.0


def test_answer_vocab_top_k_ties_alphabetical_and_out_of_vocabulary():
    from collections import Counter

    vocab = AnswerVocab.from_counts(Counter({"yes": 5, "no": 5, "2": 3, "red": 1}), size=3)
    assert vocab.answers == ["no", "yes", "2"]
    target = vocab.target({"yes": 1.0, "2": 1 / 3, "red": 1.0})  # red is outside the vocabulary
    assert target.tolist() == pytest.approx([0.0, 1.0, 1 / 3])
    assert vocab.index("red") is None and "yes" in vocab
