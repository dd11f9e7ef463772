import random

import pytest
import torch

from unimm.metrics.vqa_accuracy import vqa_accuracy

VOCAB = ["2", "yes", "dog", "t shirt", "no"]


class FakeVQA:
    def info(self):
        return {"answer_vocab": VOCAB, "num_answers": len(VOCAB)}


def logits_for(*answers):
    logits = torch.zeros(len(answers), len(VOCAB))
    for i, answer in enumerate(answers):
        logits[i, VOCAB.index(answer)] = 5.0
    return logits


def score(prediction, humans):
    metric = vqa_accuracy(FakeVQA(), name="vqa2")
    metric.update({"answers": [humans]}, {"logits": logits_for(prediction)})
    return metric.compute()["vqa_accuracy"]


@pytest.mark.parametrize("matches, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (9, 1.0)])
def test_subset_averaging(matches, expected):
    # The answers differ, so they are processed: "two" written out by the humans matches the
    # predicted "2". k matches: (k * min((k - 1) / 3, 1) + (10 - k) * min(k / 3, 1)) / 10.
    humans = ["two"] * matches + ["three"] * (10 - matches)
    assert score("2", humans) == pytest.approx(expected)


def test_unanimous_answers_are_compared_exactly():
    # Official rule: ten identical answers switch the processing off, so "2" does not match "two".
    assert score("2", ["two"] * 10) == 0.0
    assert score("2", ["2"] * 10) == 1.0
    assert score("yes", ["Yes"] * 10) == 0.0  # case included
    assert score("t shirt", ["t-shirt"] * 10) == 0.0
    assert score("yes", [" yes\n"] * 10) == 1.0  # whitespace is always cleaned


def test_normalisation_of_punctuation_articles_and_case_when_answers_differ():
    assert score("yes", ["Yes!"] * 2 + ["no"] * 8) == pytest.approx(0.6)
    assert score("dog", ["a dog", "the dog", "A Dog.", "dogs"] + ["cat"] * 6) == pytest.approx(0.9)
    assert score("t shirt", ["t-shirt"] * 9 + ["T-Shirt"]) == pytest.approx(1.0)


def test_matches_a_from_scratch_leave_one_out_average():
    rng = random.Random(0)
    metric = vqa_accuracy(FakeVQA(), name="vqa2")
    predictions, answer_lists, expected = [], [], []
    for _ in range(20):
        humans = [rng.choice(VOCAB[:3]) for _ in range(10)]
        prediction = rng.choice(VOCAB[:3])
        subsets = [humans[:i] + humans[i + 1:] for i in range(10)]
        expected.append(sum(min(1.0, s.count(prediction) / 3) for s in subsets) / 10)
        predictions.append(prediction)
        answer_lists.append(humans)
    metric.update({"answers": answer_lists[:7]}, {"logits": logits_for(*predictions[:7])})
    metric.update({"answers": answer_lists[7:]}, {"logits": logits_for(*predictions[7:])})
    assert metric.compute()["vqa_accuracy"] == pytest.approx(sum(expected) / 20)
    metric.reset()
    assert metric.compute()["vqa_accuracy"] == 0.0


def test_missing_answers_name_the_key():
    metric = vqa_accuracy(FakeVQA(), name="vqa2")
    with pytest.raises(KeyError, match="'answers'"):
        metric.update({}, {"logits": logits_for("2")})


def test_per_answer_type_accuracy_as_the_official_per_answer_type():
    metric = vqa_accuracy(FakeVQA(), name="vqa2", per_answer_type=True)
    humans = ["2"] * 10
    metric.update({"answers": [humans, ["yes"] * 10, ["no"] * 10, ["dog"] * 2 + ["cat"] * 8],
                   "answer_type": ["number", "yes/no", "yes/no", "other"]},
                  {"logits": logits_for("2", "yes", "yes", "dog")})
    metric.update({"answers": [["2"] * 10], "answer_type": [""]}, {"logits": logits_for("no")})  # no type
    result = metric.compute()
    assert result["vqa_accuracy/number"] == 1.0
    assert result["vqa_accuracy/yes/no"] == 0.5
    assert result["vqa_accuracy/other"] == pytest.approx(0.6)  # 2 of 10 humans: 0.6 (leave-one-out average)
    assert result["vqa_accuracy"] == pytest.approx((1 + 1 + 0 + 0.6 + 0) / 5)
    assert set(result) == {"vqa_accuracy", "vqa_accuracy/number", "vqa_accuracy/yes/no", "vqa_accuracy/other"}
    assert set(vqa_accuracy(FakeVQA(), name="vqa2").compute()) == {"vqa_accuracy"}  # off by default


def test_per_answer_type_without_types_in_the_batch_names_the_key():
    metric = vqa_accuracy(FakeVQA(), name="vqa2", per_answer_type=True)
    with pytest.raises(KeyError, match="answer_type"):
        metric.update({"answers": [["2"] * 10]}, {"logits": logits_for("2")})
    with pytest.raises(ValueError, match="1 values of answer_type for 2 questions"):
        metric.update({"answers": [["2"] * 10] * 2, "answer_type": ["number"]}, {"logits": logits_for("2", "2")})


def test_per_question_type_accuracy_as_the_official_per_question_type():
    metric = vqa_accuracy(FakeVQA(), name="vqa2", per_answer_type=True, per_question_type=True)
    metric.update({"answers": [["2"] * 10, ["yes"] * 10, ["no"] * 10],
                   "answer_type": ["number", "yes/no", "yes/no"],
                   "question_type": ["how many", "is there a", "is there a"]},
                  {"logits": logits_for("2", "yes", "yes")})
    metric.update({"answers": [["2"] * 10], "answer_type": ["number"], "question_type": [""]},
                  {"logits": logits_for("yes")})  # no question type: counts in its answer type only
    result = metric.compute()
    assert result["vqa_accuracy/question/how_many"] == 1.0
    assert result["vqa_accuracy/question/is_there_a"] == 0.5
    assert result["vqa_accuracy/number"] == 0.5 and result["vqa_accuracy/yes/no"] == 0.5
    assert result["vqa_accuracy"] == pytest.approx(2 / 4)
    assert set(result) == {"vqa_accuracy", "vqa_accuracy/number", "vqa_accuracy/yes/no",
                           "vqa_accuracy/question/how_many", "vqa_accuracy/question/is_there_a"}
    only = vqa_accuracy(FakeVQA(), name="vqa2", per_question_type=True)
    with pytest.raises(KeyError, match="per_question_type needs the batch's 'question_type'"):
        only.update({"answers": [["2"] * 10], "answer_type": ["number"]}, {"logits": logits_for("2")})
