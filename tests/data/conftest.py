"""Fixtures for the dataset tests: a tiny WordPiece vocabulary, small images, JSON writers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import unimm.data  # noqa: F401  (registers the dataset builders and processors)

# Words of the fixture sentences; everything else becomes [UNK] or word pieces.
WORDS = """the a is of and on in to what how many color colour are there left right above below
red blue green yellow circle circles square squares triangle big small two three one dog cat man
woman sitting playing picture image shows statement true false yes no question answer people
riding horse street good bad movie film great boring sentence grammatical first second next""".split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PIECES = ["##s", "##ing", "##ed", ".", ",", "?", "!", '"', "'", "-"]


def write_wordpiece_folder(folder: Path) -> Path:
    """A Hugging Face BERT tokenizer folder: ``vocab.txt`` + ``tokenizer_config.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + sorted(set(WORDS)) + PIECES) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                              "do_lower_case": True}))
    return folder


@pytest.fixture(scope="session")
def wordpiece_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wordpiece_folder(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="session")
def bert_tok(wordpiece_dir: Path):
    from unimm.data.tokenizers import bert_tokenizer

    return bert_tokenizer(str(wordpiece_dir), max_length=32)


def write_image(path: Path, size: tuple[int, int] = (32, 24), color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    """A solid ``size`` = (width, height) image; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_jsonl(path: Path, records: list[Any], blank_line_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in records]
    if blank_line_after is not None:
        lines.insert(blank_line_after, "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
