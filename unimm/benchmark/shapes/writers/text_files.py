"""The text corpus and the WordPiece vocabulary of the shapes world.

``corpus/{train,val}.txt``: one sentence a line, documents separated by a blank line.
``vocab/``: a Hugging Face BERT tokenizer folder (``vocab.txt``, ``tokenizer_config.json``,
``special_tokens_map.json``), uncased, that ``transformers.AutoTokenizer.from_pretrained`` loads.
The vocabulary comes from the word lists and templates of the generators, never from sampled text,
so it is the same at every size and seed; any other word falls back to single-character pieces.
"""
from __future__ import annotations

import re
import string

from unimm.benchmark.shapes import corpus, inference, language, lexicon, questions, text_tasks, two_images
from unimm.benchmark.shapes.sizes import BenchmarkSize
from unimm.benchmark.shapes.writers.files import BenchmarkFolder, rng_for

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
SUFFIX_PIECES = ("##s", "##es", "##ed", "##ing", "##ly", "##er", "##est")
MODEL_MAX_LENGTH = 128
# Words that earlier format versions wrote and this one no longer does (format 1's MNLI
# mismatched genres). They stay in the vocabulary so that token ids, and so text encoders and
# checkpoints trained on earlier versions, stay valid.
FORMER_WORDS = ("like", "too", "uh", "um", "yeah", "you")
_PLACEHOLDER = re.compile(r"\{[^}]*\}")
_WORD = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")


def world_words() -> list[str]:
    """Every word and punctuation mark the generators can write, lower case, sorted."""
    texts = list(lexicon.word_lists())
    texts += language.CAPTION_TEMPLATES + language.EMPTY_CAPTION_TEMPLATES
    texts += tuple(language.STATEMENT_TEMPLATES.values())
    texts += [template for template, _, _ in questions.QUESTION_TEMPLATES.values()]
    texts += text_tasks.ALL_TEMPLATES + inference.ALL_TEMPLATES + corpus.ALL_TEMPLATES
    texts += tuple(two_images.TEMPLATES.values()) + tuple(inference.MATCHED_GENRES) + tuple(inference.MISMATCHED_GENRES)
    words = set()
    for text in texts:
        words.update(_WORD.findall(_PLACEHOLDER.sub(" ", text).lower()))
    return sorted(words)


def vocabulary() -> list[str]:
    """The vocab.txt lines: special tokens, single characters, the world's words (with
    ``FORMER_WORDS``, in one sorted list), continuation pieces."""
    characters = list(string.punctuation) + list(string.digits) + list(string.ascii_lowercase)
    pieces = ["##" + c for c in string.digits + string.ascii_lowercase] + list(SUFFIX_PIECES)
    tokens = list(SPECIAL_TOKENS)
    for token in characters + sorted(set(world_words()) | set(FORMER_WORDS)) + pieces:
        if token not in tokens:
            tokens.append(token)
    return tokens


def write_vocab(folder: BenchmarkFolder) -> dict:
    """Write the tokenizer folder; returns its vocabulary size."""
    tokens = vocabulary()
    folder.write_text("vocab/vocab.txt", "\n".join(tokens) + "\n")
    special = {
        "cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]"
    }
    folder.write_json("vocab/tokenizer_config.json", {
        **special,
        "do_basic_tokenize": True,
        "do_lower_case": True,
        "model_max_length": MODEL_MAX_LENGTH,
        "strip_accents": None,
        "tokenize_chinese_chars": True,
        "tokenizer_class": "BertTokenizer",
    })
    folder.write_json("vocab/special_tokens_map.json", special)
    return {"tokens": len(tokens)}


def write_corpus(folder: BenchmarkFolder, seed: int, size: BenchmarkSize) -> dict:
    """Write ``corpus/train.txt`` and ``corpus/val.txt``; returns documents per split."""
    for split, documents in zip(("train", "val"), size.corpus):
        text = corpus.corpus_text(rng_for(seed, f"corpus-{split}"), documents, size.image_size)
        folder.write_text(f"corpus/{split}.txt", text)
    return dict(zip(("train", "val"), size.corpus))
