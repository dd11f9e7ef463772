"""Image classification from class folders."""
from __future__ import annotations

import pytest

from tests.data.conftest import write_image
from unimm.config.errors import ConfigError
from unimm.registry import DATASETS


def write_folder(root):
    for split, counts in (("train", {"circle": 3, "square": 2, "triangle": 1}), ("val", {"square": 1, "triangle": 1})):
        for name, count in counts.items():
            for i in range(count):
                write_image(root / split / name / f"{i}.png", (16 + i, 16))
    (root / "train" / "circle" / "notes.txt").write_text("not an image")


def test_classes_from_train_and_round_robin_order(tmp_path):
    write_folder(tmp_path)
    train = DATASETS.build({"type": "image_folder", "data_dir": str(tmp_path)}, split="train", name="shapes_cls")
    assert train.info() == {"num_classes": 3, "labels": ["circle", "square", "triangle"]}
    assert [label for _, label in train.items] == [0, 1, 2, 0, 1, 0]
    val = DATASETS.build({"type": "image_folder", "data_dir": str(tmp_path)}, split="val", name="shapes_cls")
    assert [label for _, label in val.items] == [1, 2]  # numbered like train although circle is absent
    batch = val.collate([val[0], val[1]])
    assert batch["label"].tolist() == [1, 2] and batch["image"].shape == (2, 3, 16, 16)
    short = DATASETS.build({"type": "image_folder", "data_dir": str(tmp_path), "max_samples": 3}, split="train",
                           name="shapes_cls")
    assert sorted(label for _, label in short.items) == [0, 1, 2]


def test_missing_split_folder(tmp_path):
    write_folder(tmp_path)
    with pytest.raises(ConfigError, match=r"missing folder: .*test"):
        DATASETS.build({"type": "image_folder", "data_dir": str(tmp_path)}, split="test", name="shapes_cls")
