"""Oxford Flowers-102 from the tiny fixture of tests/assets/official/flowers102, in the distributed layout:
jpg/image_<n:05d>.jpg, imagelabels.mat and setid.mat (MATLAB v5, written by scipy.io.savemat).

The fixture: 12 pictures; class numbers (1-based, picture 1 first) 77 1 1 2 102 2 77 1 102 2 77 102;
trnid = [2, 3, 4, 5], valid = [6, 7, 8], tstid = [1, 9, 10, 11, 12].
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import loadmat, savemat

from unimm.cli.data_cmd import main as unimm_data
from unimm.config.errors import ConfigError
from unimm.config.validate import check_node
from unimm.registry import DATASETS

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "assets" / "official" / "flowers102"
CONFIG = REPO / "projects" / "vit_bert" / "finetune_flowers102.yaml"
CLASS_NUMBERS = [77, 1, 1, 2, 102, 2, 77, 1, 102, 2, 77, 102]
IDENTITY = {"type": "normalize_image", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}  # pixels / 255


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the fixture that a test may break."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "flowers102"))


def build(data_dir: Path, split: str = "train", **node: Any):
    return DATASETS.build({"type": "oxford_flowers102", "data_dir": str(data_dir), **node}, split=split,
                          name="flowers102")


def names(dataset) -> list[str]:
    return [p.path.name for p in dataset.pictures]


def test_the_fixture_is_in_the_distributed_format():
    for file in ("imagelabels.mat", "setid.mat"):
        assert (FIXTURE / file).read_bytes().startswith(b"MATLAB 5.0 MAT-file")  # v5, as downloaded
    labels = loadmat(FIXTURE / "imagelabels.mat")["labels"]
    assert labels.shape == (1, 12) and labels.ravel().tolist() == CLASS_NUMBERS
    sets = loadmat(FIXTURE / "setid.mat")
    assert {k: sets[k].ravel().tolist() for k in ("trnid", "valid", "tstid")} == {
        "trnid": [2, 3, 4, 5], "valid": [6, 7, 8], "tstid": [1, 9, 10, 11, 12]}
    assert sorted(p.name for p in (FIXTURE / "jpg").iterdir()) == [f"image_{n:05d}.jpg" for n in range(1, 13)]


def test_the_official_splits_with_0_based_labels_and_the_classes_taken_in_turn():
    train = build(FIXTURE)
    assert train.info() == {"num_classes": 102, "labels": [str(c) for c in range(1, 103)]}
    assert train.task_type == "classification"
    # trnid: pictures 2, 3 (class 1), 4 (class 2), 5 (class 102); one of each class, then the rest
    assert names(train) == ["image_00002.jpg", "image_00004.jpg", "image_00005.jpg", "image_00003.jpg"]
    assert train.labels == [0, 1, 101, 0]
    val = build(FIXTURE, "val")
    assert names(val) == ["image_00008.jpg", "image_00006.jpg", "image_00007.jpg"] and val.labels == [0, 1, 76]
    test = build(FIXTURE, "test")
    assert names(test) == ["image_00010.jpg", "image_00001.jpg", "image_00009.jpg", "image_00011.jpg",
                           "image_00012.jpg"]
    assert test.labels == [1, 76, 101, 76, 101]
    assert test.label_counts()["77"] == 2 and sum(test.label_counts().values()) == 5
    assert test.image_files()[0] == (FIXTURE / "jpg" / "image_00010.jpg", None)
    for dataset in (train, val, test):  # every label is the picture's class number - 1
        assert all(p.label == CLASS_NUMBERS[int(p.path.stem[-5:]) - 1] - 1 for p in dataset.pictures)


def test_train_and_validation_together_as_the_config_reads_them():
    both = build(FIXTURE, split_sets={"train": ["trnid", "valid"]})
    assert len(both) == 7 and sorted(both.labels) == [0, 0, 0, 1, 1, 76, 101]
    assert names(both)[:4] == ["image_00002.jpg", "image_00004.jpg", "image_00007.jpg", "image_00005.jpg"]
    assert len(build(FIXTURE, "test", split_sets={"train": ["trnid", "valid"]})) == 5  # the others keep theirs
    assert names(build(FIXTURE, max_samples=2)) == ["image_00002.jpg", "image_00004.jpg"]


def test_samples_and_batches_are_the_image_classification_ones():
    train = build(FIXTURE, train_transform=IDENTITY)
    sample = train[0]
    with Image.open(FIXTURE / "jpg" / "image_00002.jpg") as picture:
        expected = torch.from_numpy(np.array(picture.convert("RGB"))).permute(2, 0, 1).float() / 255
    assert sample["label"] == 0 and torch.allclose(sample["image"], expected)
    resize = {"type": "image_pipeline", "steps": [{"type": "resize_center_crop", "size": 16}, IDENTITY]}
    test = build(FIXTURE, "test", eval_transform=resize)
    batch = test.collate([test[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 16, 16) and bool(batch["pixel_mask"].all())
    assert batch["label"].tolist() == [1, 76, 101] and batch["task_type"] == "classification"


def test_class_names_from_a_file(root: Path, tmp_path: Path):
    file = tmp_path / "names.txt"
    file.write_text("".join(f"flower {c}\n" for c in range(1, 103)))
    assert build(root, class_names_file=str(file)).info()["labels"][76] == "flower 77"
    file.write_text("".join(f"flower {c}\n" for c in range(1, 102)))
    with pytest.raises(ConfigError, match=r"class_names_file: .*names\.txt: 101 names; Flowers-102 has 102"):
        build(root, class_names_file=str(file))


def write_labels(root: Path, labels: list[Any], dtype: Any = np.float64) -> None:
    savemat(root / "imagelabels.mat", {"labels": np.array([labels], dtype=dtype)})


def test_integer_matrices_are_read_like_doubles(root: Path):
    write_labels(root, CLASS_NUMBERS, np.uint8)
    savemat(root / "setid.mat", {"trnid": np.array([[2], [3], [4], [5]], dtype=np.uint16),  # a column
                                 "valid": np.array([[6, 7, 8]]), "tstid": np.array([[1, 9, 10, 11, 12]])})
    assert build(root).labels == [0, 1, 101, 0]


@pytest.mark.parametrize("bad, problem", [
    (103, r"labels\(5\), the class of image_00005\.jpg, is 103, outside the class numbers 1\.\.102 "
          r"\(1 labels out of range\)"),
    (0, r"labels\(5\), the class of image_00005\.jpg, is 0, outside the class numbers 1\.\.102"),
    (2.5, r"labels\(5\) is 2\.5, not a whole number"),
])
def test_a_wrong_class_number_names_the_file_the_picture_and_the_fix(root: Path, bad: Any, problem: str):
    write_labels(root, CLASS_NUMBERS[:4] + [bad] + CLASS_NUMBERS[5:])
    with pytest.raises(ConfigError, match=problem) as err:
        build(root, "test")
    assert str(root / "imagelabels.mat") in str(err.value) and "102flowers.tgz" in str(err.value)


def test_a_missing_picture_is_named_at_build_time(root: Path):
    (root / "jpg" / "image_00004.jpg").unlink()
    (root / "jpg" / "image_00003.jpg").unlink()
    with pytest.raises(ConfigError) as err:
        build(root)
    message = str(err.value)
    assert f"missing picture: {root / 'jpg' / 'image_00004.jpg'}" in message
    assert f"missing picture: {root / 'jpg' / 'image_00003.jpg'}" in message  # every one, in one error
    assert "extract it" in message and "check_images=false" in message
    assert len(build(root, "test")) == 5  # the other splits do not read them
    unchecked = build(root, check_images=False)
    with pytest.raises(ConfigError, match=r"image file not found: .*image_00004\.jpg \(named by .*setid\.mat "
                                          r"trnid\(3\) of dataset 'flowers102'\)"):
        unchecked[1]


def test_an_unreadable_picture_names_the_file(root: Path):
    (root / "jpg" / "image_00002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ConfigError, match=r"cannot read image .*image_00002\.jpg \(named by .*trnid\(1\)"):
        build(root)[0]


def test_missing_files_are_listed_together(root: Path):
    (root / "setid.mat").unlink()
    shutil.rmtree(root / "jpg")
    with pytest.raises(ConfigError) as err:
        build(root)
    assert err.value.problems == [f"missing file or folder: {root / 'setid.mat'}",
                                  f"missing file or folder: {root / 'jpg'}"]
    assert "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/" in str(err.value)


def test_malformed_mat_files(root: Path):
    savemat(root / "setid.mat", {"trnid": np.array([[2, 13]]), "valid": np.array([[6]]), "tstid": np.array([[1]])})
    with pytest.raises(ConfigError, match=r"setid\.mat: trnid\(2\) is picture 13, but imagelabels\.mat labels "
                                          r"pictures 1\.\.12 .*different downloads"):
        build(root)
    savemat(root / "setid.mat", {"train": np.array([[2]])})
    with pytest.raises(ConfigError, match=r"variable 'trnid' is missing \(variables found: train\)"):
        build(root)
    savemat(root / "setid.mat", {"trnid": np.ones((2, 3)), "valid": np.array([[6]]), "tstid": np.array([[1]])})
    with pytest.raises(ConfigError, match=r"variable 'trnid' should be a 1 x N vector of numbers, got a float64 "
                                          r"array of shape \[2, 3\]"):
        build(root)
    (root / "setid.mat").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    with pytest.raises(ConfigError, match=r"setid\.mat: not a readable MATLAB file"):
        build(root)


def test_a_picture_read_twice_by_one_split_is_an_error(root: Path):
    with pytest.raises(ConfigError, match=r"picture 2 is in trnid\(1\) and in trnid\(1\), both read by split "
                                          r"'train' \(trnid, trnid\)"):
        build(root, split_sets={"train": ["trnid", "trnid"]})


def test_splits_and_set_names_are_checked():
    with pytest.raises(ConfigError, match=r"unknown split 'dev'; known splits: train, val, test"):
        build(FIXTURE, "dev")
    errors: list[str] = []
    node = {"type": "oxford_flowers102", "data_dir": "d", "split_sets": {"train": ["trnid", "validation"]}}
    check_node(node, DATASETS, "datasets.x", errors, runtime=())
    assert errors and errors[0].startswith("datasets.x.split_sets.train[1]: 'validation' is not one of")


# ----------------------------------------------------------------------------- unimm_data check

def check(data: Path, *extra: str) -> list[str]:
    return ["check", f"config={CONFIG}", f"env.data_dir={data}", *extra]


def test_unimm_data_check_reads_what_the_config_reads(root: Path, capsys):
    assert unimm_data(check(root.parent)) == 0
    report = capsys.readouterr().out
    assert "datasets.flowers102\n  train  ok       7 samples; labels: 1 3, 2 2, 102 1, 77 1," in report
    assert "\n  test   ok       5 samples; labels: 102 2, 77 2, 2 1," in report
    assert "7 pictures (headers and end markers read)" in report and report.rstrip().endswith("no problems found")


def test_unimm_data_check_reports_every_broken_picture(root: Path, capsys):
    (root / "jpg" / "image_00002.jpg").unlink()
    cut = root / "jpg" / "image_00009.jpg"
    cut.write_bytes(cut.read_bytes()[:-20])
    assert unimm_data(check(root.parent)) == 1
    report = capsys.readouterr().out
    assert f"problem: missing pictures (1): {root / 'jpg' / 'image_00002.jpg'}" in report
    assert f"problem: pictures cut short (no end marker: an interrupted download?) (1): {cut}" in report
    assert report.rstrip().endswith("2 problem(s) in 1 dataset(s); fix them before training")
