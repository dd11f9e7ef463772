"""A plain-text corpus for masked language modelling and next-sentence prediction."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from unimm.config.errors import ConfigError
from unimm.data.collate import collate_batch
from unimm.data.common import TRAIN_SPLIT, take
from unimm.data.files import named_splits, read_text, require_files, split_file
from unimm.data.masking import mask_tokens, sample_generator
from unimm.data.tokenizers import TextTokenizer
from unimm.registry import DATASETS

CORPUS_SPLITS = {"train": "train.txt", "val": "val.txt"}
SentencePair = tuple[str, str | None, int]  # sentence A, sentence B (None without NSP), is_next (-1: none)


def read_documents(path: Path) -> list[list[str]]:
    """Documents (lists of sentences): one sentence a line, a blank line between documents."""
    documents: list[list[str]] = [[]]
    for line in read_text(path).splitlines():
        sentence = line.strip()
        if sentence:
            documents[-1].append(sentence)
        elif documents[-1]:
            documents.append([])
    return [d for d in documents if d]


def make_pairs(documents: Sequence[Sequence[str]], next_probability: float, seed: int) -> list[SentencePair]:
    """One pair per sentence A: with ``next_probability`` the sentence after it (is_next = 1),
    otherwise a random sentence of another document (is_next = 0; with a single document,
    one that is neither A nor the next). The last sentence of a document always gets a
    random partner. The draws come from ``seed``, so the pairs are fixed.
    """
    sentences = [s for doc in documents for s in doc]
    if not sentences or (len(documents) == 1 and len(sentences) < 3):
        raise ConfigError("the text corpus is too small for next-sentence prediction: it needs two "
                          "documents or one of at least three sentences")
    generator = torch.Generator().manual_seed(seed)
    pairs, start = [], 0
    for doc in documents:
        for i, sentence in enumerate(doc):
            if i + 1 < len(doc) and float(torch.rand((), generator=generator)) < next_probability:
                pairs.append((sentence, doc[i + 1], 1))
                continue
            # Skip over the excluded block: the document itself, or A and its successor.
            low, size = (start, len(doc)) if len(documents) > 1 else (start + i, min(2, len(doc) - i))
            k = int(torch.randint(len(sentences) - size, (1,), generator=generator))
            pairs.append((sentence, sentences[k if k < low else k + size], 0))
        start += len(doc)
    return pairs


class TextCorpus(Dataset):
    """Sentence pairs with BERT MLM corruption.

    Samples hold ``input_ids`` (masked), ``token_type_ids``, ``mlm_labels`` ``[T]`` (-100
    where not masked) and ``is_next`` (1: B follows A, 0: B is random, -1: no pair).
    """

    task_type = "text_pretraining"

    def __init__(self, pairs: Sequence[SentencePair], tokenizer: TextTokenizer, name: str,
                 mlm_probability: float, mask_seed: int | None) -> None:
        if tokenizer.mask_id is None:
            raise ConfigError("the tokenizer has no mask token, needed for MLM", key="tokenizer")
        self.pairs = list(pairs)
        self.tokenizer = tokenizer
        self.name = name
        self.mlm_probability = mlm_probability
        self.mask_seed = mask_seed

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        first, second, is_next = self.pairs[index]
        encoded = self.tokenizer.encode(first, second)
        input_ids, labels = mask_tokens(encoded["input_ids"], encoded["special_tokens_mask"], self.tokenizer.mask_id,
                                        self.tokenizer.vocab_size, self.mlm_probability,
                                        sample_generator(self.mask_seed, index))
        return {"input_ids": input_ids, "token_type_ids": encoded["token_type_ids"], "mlm_labels": labels,
                "is_next": is_next, "special_tokens_mask": encoded["special_tokens_mask"]}

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate_batch(samples, self.name, self.task_type, pad_id=self.tokenizer.pad_id)

    def info(self) -> dict[str, Any]:
        return {"vocab_size": self.tokenizer.vocab_size, "mask_id": self.tokenizer.mask_id,
                "pad_id": self.tokenizer.pad_id}


@DATASETS.register(parts={"tokenizer": "processors"})
def text_corpus(
    *,
    data_dir: str,
    split: str,
    name: str,
    tokenizer: Any,
    split_files: Mapping[str, str] | None = None,
    next_sentence: bool = True,
    next_probability: float = 0.5,
    mlm_probability: float = 0.15,
    seed: int = 0,
    max_samples: int | None = None,
) -> TextCorpus:
    """MLM (+ NSP) samples from ``<data_dir>/{train,val}.txt``.

    Args:
        data_dir: the corpus folder.
        split: ``train`` / ``val`` (runtime).
        name: the dataset's config key (runtime).
        tokenizer: a text processor node (needs a mask token).
        split_files: split -> file name.
        next_sentence: build sentence pairs for NSP; False: one sentence per sample.
        next_probability: share of pairs whose B really follows A.
        mlm_probability: share of tokens chosen for MLM (80% masked, 10% random, 10% kept); 0: the
            ids stay clean, for a model that masks by itself (MoMo).
        seed: fixes the pairs; masks are fresh every read for train, fixed for other splits.
        max_samples: keep only the first samples (None: all).

    Returns:
        Batches hold ``input_ids`` / ``attention_mask`` / ``token_type_ids`` / ``mlm_labels``
        ``[B, T]`` and ``is_next`` ``[B]``. Task type ``text_pretraining``.
    """
    path = Path(data_dir) / split_file(named_splits(CORPUS_SPLITS, split_files), split, name)
    require_files([path], "corpus")
    documents = read_documents(path)
    if not documents:
        raise ConfigError(f"{path}: the corpus has no sentences")
    if next_sentence:
        pairs = make_pairs(documents, next_probability, seed)
    else:
        pairs = [(sentence, None, -1) for doc in documents for sentence in doc]
    return TextCorpus(take(pairs, max_samples, name), tokenizer, name, mlm_probability,
                      mask_seed=None if split == TRAIN_SPLIT else seed)
