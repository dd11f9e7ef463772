"""The visual question answering dataset shared by VQAv2 and Visual Genome QA."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from torch.utils.data import Dataset

from unimm.data.answer_vocab import AnswerVocab
from unimm.data.collate import collate_batch
from unimm.data.common import read_image
from unimm.data.tokenizers import TextTokenizer
from unimm.data.vqa_normalize import answer_scores
from unimm.utils.fileio import atomic_write_text


@dataclass(frozen=True)
class VqaQuestion:
    """One question; ``answers`` are the raw human answers (empty on a test split);
    ``answer_type`` is VQAv2's "yes/no" / "number" / "other" and ``question_type`` its question
    prefix ("what color is the"), each None when not annotated."""

    question_id: int
    image_id: int
    image_path: Path
    question: str
    answers: tuple[str, ...]
    answer_type: str | None = None
    question_type: str | None = None


class VqaDataset(Dataset):
    """Image + question -> soft scores over an answer vocabulary.

    Samples hold ``image`` ``[3, H, W]``, ``input_ids`` / ``token_type_ids`` ``[T]``,
    ``answer_scores`` ``[A]`` (answers outside the vocabulary score nowhere; a question
    none of whose answers is in the vocabulary has all zeros), ``answers`` (the raw human
    answers, for the official accuracy), ``answer_type`` and ``question_type`` ("" when not annotated),
    ``question_id`` and ``image_id``.
    """

    task_type = "vqa"

    def __init__(self, questions: Sequence[VqaQuestion], vocab: AnswerVocab, tokenizer: TextTokenizer,
                 transform: Any, name: str, source: Path, results_name: str | None = None) -> None:
        self.questions = list(questions)
        self.results_name = results_name
        self.vocab = vocab
        self.tokenizer = tokenizer
        self.transform = transform
        self.name = name
        self.source = source

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, index: int) -> dict[str, Any]:
        q = self.questions[index]
        image, _ = read_image(q.image_path, f"question_id {q.question_id} of {self.source}", self.transform)
        text = self.tokenizer.encode(q.question)
        return {
            "image": image,
            "input_ids": text["input_ids"],
            "token_type_ids": text["token_type_ids"],
            "answer_scores": self.vocab.target(answer_scores(q.answers) if q.answers else {}),
            "answers": list(q.answers),
            "answer_type": q.answer_type or "",
            "question_type": q.question_type or "",
            "question_id": q.question_id,
            "image_id": q.image_id,
        }

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type, pad_id=self.tokenizer.pad_id)

    @property
    def has_labels(self) -> bool:
        """False on a test split (VQAv2's test2015 and test-dev2015 come without answers)."""
        return any(q.answers for q in self.questions)

    def image_files(self) -> list[tuple[Path, tuple[int, int] | None]]:
        """Every picture once; VQA annotations state no sizes."""
        return [(path, None) for path in dict.fromkeys(q.image_path for q in self.questions)]

    def label_counts(self) -> dict[str, int]:
        """Answered questions per answer type ("yes/no", "number", "other"; "untyped" without one), and
        those none of whose answers is in the answer vocabulary (they train towards no answer)."""
        counts = Counter((q.answer_type or "untyped") for q in self.questions if q.answers)
        outside = sum(1 for q in self.questions if q.answers and not self.vocab.target(answer_scores(q.answers)).any())
        if outside:
            counts["(no answer in the answer vocabulary)"] = outside
        return dict(counts)

    def info(self) -> dict[str, Any]:
        return {"num_classes": len(self.vocab), "num_answers": len(self.vocab),
                "answer_vocab": list(self.vocab.answers), "vocab_size": self.tokenizer.vocab_size}

    def format_predictions(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The official result format: ``[{"question_id": ..., "answer": ...}]`` from ``output["logits"]``.

        Each answer is the answer-vocabulary string of the arg-max logit, the very string the
        ``vqa_accuracy`` metric scores, so the official evaluation (vqaEval.py) of this file
        reproduces the metric.
        """
        best = output["logits"].argmax(dim=-1).tolist()
        return [{"question_id": int(qid), "answer": self.vocab.answers[i]}
                for qid, i in zip(batch["question_id"].tolist(), best)]

    def write_submission(self, rows: Sequence[dict[str, Any]], folder: Path, split: str) -> list[Path]:
        """The results file the VQA evaluation server (EvalAI) and the official ``vqaEval.py`` read:
        ``vqa_OpenEnded_<results_name>_unimm_results.json`` (e.g. ``mscoco_test-dev2015``), the rows
        as a JSON list. Only for datasets built from official VQA files (``results_name`` given)."""
        if not self.results_name:
            return []
        path = Path(folder) / f"vqa_OpenEnded_{self.results_name}_unimm_results.json"
        atomic_write_text(path, json.dumps(list(rows)))
        return [path]
