"""The answer vocabulary of a VQA classifier and the soft-score target vector."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping

import torch

from unimm.config.errors import ConfigError
from unimm.data.files import read_text
from unimm.data.vqa_normalize import normalize_answer


class AnswerVocab:
    """Normalised answers, in class-index order.

    Args:
        answers: the answers; each is normalised, duplicates keep their first index.
    """

    def __init__(self, answers: Iterable[str]) -> None:
        self.answers: list[str] = list(dict.fromkeys(normalize_answer(a) for a in answers))
        self._index = {a: i for i, a in enumerate(self.answers)}

    @classmethod
    def from_counts(cls, counts: Counter[str], size: int, min_count: int = 1) -> AnswerVocab:
        """The ``size`` most frequent answers seen at least ``min_count`` times.

        Ties are broken alphabetically so the vocabulary never depends on file order.
        """
        ranked = sorted(((n, a) for a, n in counts.items() if n >= min_count and a), key=lambda t: (-t[0], t[1]))
        return cls(a for _, a in ranked[:size])

    @classmethod
    def from_file(cls, path: str | Path) -> AnswerVocab:
        """One answer a line (blank lines skipped), e.g. the 3,129 answers commonly used for VQAv2."""
        if not Path(path).is_file():
            raise ConfigError(f"answer vocabulary file not found: {path}; give a text file with one "
                              "answer a line, or leave answer_vocab_file unset to build it from train")
        vocab = cls(line.strip() for line in read_text(path).splitlines() if line.strip())
        if not vocab.answers:
            raise ConfigError(f"{path}: the answer vocabulary file is empty")
        return vocab

    def __len__(self) -> int:
        return len(self.answers)

    def __contains__(self, answer: str) -> bool:
        return answer in self._index

    def index(self, answer: str) -> int | None:
        """Class index of an already-normalised answer, or None when it is outside the vocabulary."""
        return self._index.get(answer)

    def target(self, scores: Mapping[str, float]) -> torch.Tensor:
        """Float ``[len(self)]`` soft-score vector; answers outside the vocabulary add nothing."""
        vector = torch.zeros(len(self.answers))
        for answer, score in scores.items():
            i = self._index.get(answer)
            if i is not None:
                vector[i] = max(float(vector[i]), score)
        return vector
