"""Text tokenisers loaded from a local Hugging Face tokenizer folder.

Always through ``from_pretrained(folder)`` (``AutoTokenizer``'s, or ``CLIPTokenizer``'s for CLIP):
building ``BertTokenizerFast`` from a ``vocab_file`` silently maps every word to ``[UNK]`` in
transformers 5, so after loading we also check that words of the vocabulary map to themselves.

One entry per vocabulary METER's text encoders use (Table 3): BERT's WordPiece (BERT, ELECTRA),
RoBERTa's byte-level BPE, DeBERTa's (RoBERTa's BPE with BERT's special tokens), ALBERT's
SentencePiece, and CLIP's BPE (lower-cased, ``</w>`` word ends, ``<|startoftext|>`` /
``<|endoftext|>`` around the text and no mask token, so no MLM with it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unimm.config.errors import ConfigError
from unimm.data.files import OFFICIAL_SOURCES
from unimm.registry import PROCESSORS

# Alternatives of files that make a usable folder, per kind of tokenizer.
_BERT_FILES = (("tokenizer.json",), ("vocab.txt",))
_ROBERTA_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"))
_ALBERT_FILES = (("tokenizer.json",), ("spiece.model",))
_PROBE_WORDS = 32  # vocabulary words encoded to check that they do not become [UNK]


class TextTokenizer:
    """Encodes one text or a pair into id tensors, truncated to ``max_length``.

    Attributes:
        vocab_size: number of token ids (embedding rows a model needs).
        pad_id, cls_id, sep_id, mask_id, unk_id: ids of the special tokens (cls / sep are
            ``<s>`` / ``</s>`` for RoBERTa).
    """

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.hf = tokenizer
        self.max_length = max_length
        self.vocab_size = len(tokenizer)
        self.pad_id = tokenizer.pad_token_id
        self.cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        self.sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.mask_id = tokenizer.mask_token_id
        self.unk_id = tokenizer.unk_token_id

    def encode(self, text: str, text_pair: str | None = None, max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Token ids of ``text`` (and ``text_pair``), with special tokens.

        Returns:
            ``input_ids``, ``token_type_ids`` and ``special_tokens_mask`` (1 on special
            tokens), each a long tensor ``[T]`` with ``T <= max_length``.
        """
        encoded = self.hf(
            text, text_pair, truncation=True, max_length=max_length or self.max_length,
            return_token_type_ids=True, return_special_tokens_mask=True, return_attention_mask=False)
        return {key: torch.tensor(encoded[key], dtype=torch.long)
                for key in ("input_ids", "token_type_ids", "special_tokens_mask")}

    def tokenize(self, text: str) -> list[str]:
        return self.hf.tokenize(text)

    def decode(self, ids: torch.Tensor | list[int], skip_special_tokens: bool = True) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return self.hf.decode(ids, skip_special_tokens=skip_special_tokens)

    def __repr__(self) -> str:
        return f"TextTokenizer({type(self.hf).__name__}, vocab_size={self.vocab_size}, max_length={self.max_length})"


def load_tokenizer(path: str, max_length: int, alternatives: tuple[tuple[str, ...], ...], kind: str,
                   loader: str = "AutoTokenizer") -> TextTokenizer:
    """A ``TextTokenizer`` from ``loader.from_pretrained(path)`` (a transformers class name), refused when
    the folder lacks every alternative set of files or maps its own words to the unknown token."""
    folder = Path(path)
    if not any(all((folder / f).is_file() for f in files) for files in alternatives):
        wanted = " or ".join(" + ".join(files) for files in alternatives)
        raise ConfigError(
            f"{kind} tokenizer folder {folder} has no {wanted}"
            + ("" if folder.is_dir() else " (the folder does not exist)")
            + f"; give {OFFICIAL_SOURCES['vocab']}")
    import transformers  # heavy: only when a tokenizer is built

    try:
        hf = getattr(transformers, loader).from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # transformers raises many kinds for a broken folder
        raise ConfigError(f"cannot load the {kind} tokenizer in {folder}: {type(err).__name__}: {err}") from err
    check_known_words(hf, folder)
    return TextTokenizer(hf, max_length)


def check_known_words(hf: Any, folder: Path) -> None:
    """Refuse a tokenizer without words, or one that maps its own words to the unknown token."""
    special = set(hf.all_special_tokens)
    vocab = [w for w in hf.get_vocab() if w not in special]
    if not vocab:
        raise ConfigError(f"the tokenizer in {folder} has no tokens besides its special tokens; "
                          "save the folder from a working tokenizer (tokenizer.save_pretrained)")
    words = sorted(w for w in vocab if w.isalpha() and w.isascii())
    words = words[:: max(1, len(words) // _PROBE_WORDS)][:_PROBE_WORDS]
    if hf.unk_token_id is None or not words:
        return
    ids = [hf(w, add_special_tokens=False)["input_ids"] for w in words]
    if all(seq == [hf.unk_token_id] for seq in ids):
        raise ConfigError(
            f"the tokenizer in {folder} maps every word of its vocabulary to {hf.unk_token}; "
            "save the folder from a working tokenizer (tokenizer.save_pretrained)")


@PROCESSORS.register()
def bert_tokenizer(path: str, max_length: int = 512) -> TextTokenizer:
    """BERT WordPiece tokeniser from a local folder (``vocab.txt`` + ``tokenizer_config.json``).

    Args:
        path: the Hugging Face tokenizer folder, e.g. ``<data_dir>/vocab``.
        max_length: longest encoded sequence (special tokens included); longer inputs are truncated.
    """
    return load_tokenizer(path, max_length, _BERT_FILES, "BERT")


@PROCESSORS.register()
def roberta_tokenizer(path: str, max_length: int = 512) -> TextTokenizer:
    """RoBERTa byte-level BPE tokeniser from a local folder (``vocab.json`` + ``merges.txt``).

    Args:
        path: the Hugging Face tokenizer folder.
        max_length: longest encoded sequence (special tokens included); longer inputs are truncated.
    """
    return load_tokenizer(path, max_length, _ROBERTA_FILES, "RoBERTa")


@PROCESSORS.register()
def deberta_tokenizer(path: str, max_length: int = 512) -> TextTokenizer:
    """DeBERTa (v1) byte-level BPE tokeniser from a local folder (``vocab.json`` + ``merges.txt``, e.g.
    ``microsoft/deberta-base``'s): RoBERTa's vocabulary with BERT's ``[CLS]`` / ``[SEP]`` / ``[PAD]`` (0).

    Args:
        path: the Hugging Face tokenizer folder.
        max_length: longest encoded sequence (special tokens included); longer inputs are truncated.
    """
    return load_tokenizer(path, max_length, _ROBERTA_FILES, "DeBERTa", loader="DebertaTokenizer")


@PROCESSORS.register()
def albert_tokenizer(path: str, max_length: int = 512) -> TextTokenizer:
    """ALBERT SentencePiece tokeniser from a local folder (``tokenizer.json``, or ``spiece.model``, e.g.
    ``albert-xlarge-v2``'s; lower-cased, ``[CLS]`` / ``[SEP]``, ``<pad>`` 0).

    Args:
        path: the Hugging Face tokenizer folder.
        max_length: longest encoded sequence (special tokens included); longer inputs are truncated.
    """
    return load_tokenizer(path, max_length, _ALBERT_FILES, "ALBERT", loader="AlbertTokenizer")


@PROCESSORS.register()
def clip_tokenizer(path: str, max_length: int = 77) -> TextTokenizer:
    """CLIP's BPE tokeniser from a local folder (``vocab.json`` + ``merges.txt``, e.g.
    ``openai/clip-vit-base-patch32``'s), through ``CLIPTokenizer.from_pretrained``.

    The text is wrapped in ``<|startoftext|>`` ... ``<|endoftext|>`` (``cls_id`` / ``sep_id``); the
    OpenAI folders pad with ``<|endoftext|>``. CLIP has no mask token (``mask_id`` is None).

    Args:
        path: the Hugging Face tokenizer folder.
        max_length: longest encoded sequence (special tokens included; CLIP's text tower has 77
            positions); longer inputs are truncated.
    """
    return load_tokenizer(path, max_length, _ROBERTA_FILES, "CLIP", loader="CLIPTokenizer")
