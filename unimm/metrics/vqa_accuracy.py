"""VQA accuracy as the official VQA evaluation (vqaEval.py) computes it (Antol et al., 2015; VQAv2)."""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from unimm.config.errors import ConfigError
from unimm.data.vqa_normalize import vqa_accuracy as answer_accuracy
from unimm.registry import METRICS
from unimm.training import distributed as dist


@METRICS.register(outputs=lambda per_answer_type=False, per_question_type=False, **_: (
    ["vqa_accuracy"] + (["vqa_accuracy/*"] if per_answer_type else [])
    + (["vqa_accuracy/question/*"] if per_question_type else [])))
class vqa_accuracy:  # noqa: N801 (registered name == builder name)
    """Mean over questions of the per-question accuracy of the official VQA evaluation (vqaEval.py).

    The predicted answer is the arg-max of the model's logits over the answer vocabulary, the
    string ``format_predictions`` writes to a results file, so the official evaluator scores that
    file as this metric does. It is scored against the raw human answers by
    ``unimm.data.vqa_normalize.vqa_accuracy``: whitespace is always cleaned; punctuation, number
    words, articles and contractions are processed only when the human answers of the question
    differ (ten identical answers are compared exactly: "two" against ten "2" scores 0); then for
    each of the 10 annotators, ``min(#other annotators who gave the prediction / 3, 1)``, averaged
    over the 10 leave-one-out subsets. A prediction given by 1, 2, 3 or 4+ humans scores 0.3, 0.6,
    0.9 or 1.0. A question with a single answer (Visual Genome QA) scores 1 on a match of the
    normalised forms.

    Args:
        dataset: the evaluated dataset; ``dataset.info()["answer_vocab"]`` maps logit index ->
            answer string (run time).
        name: the dataset's config key (run time).
        logits_key: output entry with logits ``[B, A]``.
        answers_key: batch entry with the human answers as annotated (not normalised): B lists
            of (usually 10) strings.
        per_answer_type: also report the accuracy of each answer type as
            ``vqa_accuracy/<type>`` with the official names (``vqa_accuracy/yes/no``), as the official
            evaluation's ``perAnswerType``; the batch must hold ``answer_type`` (B strings,
            VQAv2's "yes/no", "number", "other"). Questions without a type count only in
            the overall accuracy.
        per_question_type: also report the accuracy of each question type as
            ``vqa_accuracy/question/<type>`` ("what color is the" is written
            ``what_color_is_the``), as the official evaluation's ``perQuestionType``; the batch
            must hold ``question_type`` (B strings, VQAv2's question prefixes).
    """

    # option -> (batch key, result key prefix)
    GROUPS = {"per_answer_type": ("answer_type", "vqa_accuracy/"),
              "per_question_type": ("question_type", "vqa_accuracy/question/")}

    def __init__(self, dataset: Any, name: str = "", logits_key: str = "logits", answers_key: str = "answers",
                 per_answer_type: bool = False, per_question_type: bool = False) -> None:
        info = dataset.info()
        if "answer_vocab" not in info:
            raise ConfigError(f"vqa_accuracy on dataset '{name}': its info() has no 'answer_vocab' "
                              "(the answer string of each logit); use a VQA dataset")
        self.vocab: list[str] = list(info["answer_vocab"])
        self.name, self.logits_key, self.answers_key = name, logits_key, answers_key
        chosen = {"per_answer_type": per_answer_type, "per_question_type": per_question_type}
        self.groups = [option for option, on in chosen.items() if on]
        self.reset()

    def reset(self) -> None:
        self.total_score = 0.0
        self.count = 0
        # option -> group (e.g. an answer type) -> [score sum, questions]
        self.tallies: dict[str, dict[str, list[float]]] = {option: {} for option in self.groups}

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None:
        answers: Sequence[Sequence[str]] | None = batch.get(self.answers_key)
        if answers is None:
            raise KeyError(f"vqa_accuracy on dataset '{self.name}': the batch has no '{self.answers_key}' "
                           "(each question's human answers); the VQA dataset must provide them")
        logits = output[self.logits_key]
        if logits.shape[-1] != len(self.vocab):
            raise ValueError(f"vqa_accuracy: logits have {logits.shape[-1]} answers but answer_vocab has "
                             f"{len(self.vocab)}")
        groups = {option: self._groups_of(batch, option, len(answers)) for option in self.groups}
        for row, (index, humans) in enumerate(zip(logits.argmax(dim=-1).tolist(), answers)):
            score = answer_accuracy(self.vocab[index], list(humans))
            self.total_score += score
            self.count += 1
            for option, names in groups.items():
                if names[row]:
                    tally = self.tallies[option].setdefault(names[row], [0.0, 0])
                    tally[0] += score
                    tally[1] += 1

    def _groups_of(self, batch: Mapping[str, Any], option: str, count: int) -> Sequence[str]:
        key = self.GROUPS[option][0]
        names = batch.get(key)
        if names is None:
            raise KeyError(f"vqa_accuracy on dataset '{self.name}': {option} needs the batch's '{key}' "
                           f"(from the annotations' {key} field); set {option}=false for a dataset without it")
        if len(names) != count:
            raise ValueError(f"vqa_accuracy on dataset '{self.name}': {len(names)} values of {key} for "
                             f"{count} questions in one batch")
        return names

    def compute(self) -> dict[str, float]:
        parts = dist.all_gather_object((self.total_score, self.count, self.tallies))
        score, count = sum(p[0] for p in parts), sum(p[1] for p in parts)
        results = {"vqa_accuracy": score / count if count else 0.0}
        for option in self.groups:
            merged: dict[str, list[float]] = {}
            for part in parts:
                for group, (group_score, group_count) in part[2][option].items():
                    tally = merged.setdefault(group, [0.0, 0])
                    tally[0] += group_score
                    tally[1] += group_count
            prefix = self.GROUPS[option][1]
            for group in sorted(merged):
                # answer types keep the official evaluation's perAnswerType names ("yes/no"); question
                # types (free text, "what color is the") become key-safe words ("what_color_is_the")
                key = group if option == "per_answer_type" else re.sub(r"[^0-9A-Za-z]+", "_", group).strip("_")
                results[prefix + key] = merged[group][0] / merged[group][1]
        return results
