"""Oxford-IIIT Pets from the tiny fixture of tests/assets/official/pets, in the distributed layout:
images/<Breed_name>_<n>.jpg and annotations/{trainval,test}.txt ("Abyssinian_100 1 1 1" a line).

The fixture: trainval.txt lists <breed>_100 of each of the 37 breeds in class-id order, plus
Abyssinian_101 and american_bulldog_101 after their _100 (39 lines); test.txt lists Abyssinian_201,
american_bulldog_201, Bengal_201 and yorkshire_terrier_201.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from unimm.cli.data_cmd import main as unimm_data
from unimm.config.errors import ConfigError
from unimm.registry import DATASETS

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "assets" / "official" / "pets"
CONFIG = REPO / "projects" / "vit_bert" / "finetune_pets.yaml"
BREEDS = ["Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "Bengal",
          "Birman", "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau", "english_cocker_spaniel",
          "english_setter", "german_shorthaired", "great_pyrenees", "havanese", "japanese_chin", "keeshond",
          "leonberger", "Maine_Coon", "miniature_pinscher", "newfoundland", "Persian", "pomeranian", "pug",
          "Ragdoll", "Russian_Blue", "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "Siamese",
          "Sphynx", "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier"]  # class ids 1..37


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the fixture that a test may break."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "pets"))


def build(data_dir: Path, split: str = "train", **node: Any):
    return DATASETS.build({"type": "oxford_pets", "data_dir": str(data_dir), **node}, split=split, name="pets")


def stems(dataset) -> list[str]:
    return [p.path.stem for p in dataset.pictures]


def edit_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_the_fixture_is_in_the_distributed_format():
    trainval = (FIXTURE / "annotations" / "trainval.txt").read_text().splitlines()
    assert trainval[:3] == ["Abyssinian_100 1 1 1", "Abyssinian_101 1 1 1", "american_bulldog_100 2 2 1"]
    assert trainval[-1] == "yorkshire_terrier_100 37 2 25" and len(trainval) == 39
    listed = {line.split()[0] for file in ("trainval.txt", "test.txt")
              for line in (FIXTURE / "annotations" / file).read_text().splitlines()}
    assert {p.stem for p in (FIXTURE / "images").iterdir()} == listed and len(listed) == 43


def test_splits_classes_and_0_based_labels():
    train = build(FIXTURE)
    assert train.info() == {"num_classes": 37, "labels": BREEDS}
    assert train.task_type == "classification" and len(train) == 39
    # the classes in turn: each breed's first picture in class order, then the second pictures
    assert stems(train) == [f"{b}_100" for b in BREEDS] + ["Abyssinian_101", "american_bulldog_101"]
    assert train.labels == list(range(37)) + [0, 1]
    assert train.label_counts()["Abyssinian"] == 2 and train.label_counts()["Sphynx"] == 1
    for split in ("val", "test"):  # Pets has no validation list: val reads test.txt
        test = build(FIXTURE, split)
        assert stems(test) == ["Abyssinian_201", "american_bulldog_201", "Bengal_201", "yorkshire_terrier_201"]
        assert test.labels == [0, 1, 5, 36] and test.info()["labels"] == BREEDS
    assert build(FIXTURE, max_samples=3).labels == [0, 1, 2]  # a prefix mixes the classes
    assert build(FIXTURE).image_files()[5] == (FIXTURE / "images" / "Bengal_100.jpg", None)


def test_samples_and_batches_are_the_image_classification_ones():
    resize = {"type": "image_pipeline", "steps": [{"type": "resize_center_crop", "size": 16},
                                                  {"type": "normalize_image"}]}
    test = build(FIXTURE, "test", eval_transform=resize)
    assert test[3]["image"].shape == (3, 16, 16) and test[3]["label"] == 36
    batch = test.collate([test[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 16, 16) and batch["pixel_mask"].shape == (4, 16, 16)
    assert batch["label"].tolist() == [0, 1, 5, 36] and batch["dataset_name"] == "pets"


def test_comments_and_blank_lines_are_skipped(root: Path):
    test = root / "annotations" / "test.txt"
    test.write_text("#Image CLASS-ID SPECIES BREED ID\n# ID: 1:37 Class ids\n\n" + test.read_text() + "\n")
    assert build(root, "test").labels == [0, 1, 5, 36]
    assert build(root, "test").pictures[0].record == f"{test}, line 4"


def test_custom_list_files(root: Path):
    (root / "annotations" / "dev.txt").write_text("Bengal_100 6 1 2\nAbyssinian_101 1 1 1\n")
    dev = build(root, "val", split_files={"val": "dev.txt"})
    assert stems(dev) == ["Abyssinian_101", "Bengal_100"] and dev.labels == [0, 5]
    with pytest.raises(ConfigError, match=r"unknown split 'dev'; known splits: train, val, test"):
        build(root, "dev")


def test_a_wrong_class_id_names_the_line(root: Path):
    edit_line(root / "annotations" / "test.txt", 3, "Bengal_201 7 1 2")  # Birman's id
    with pytest.raises(ConfigError) as err:
        build(root)  # the names come from every list, so train's build sees it too
    assert err.value.problems == [
        f"{root / 'annotations' / 'test.txt'}, line 3: Bengal_201 has class id 7, but "
        f"{root / 'annotations' / 'trainval.txt'}, line 8 gives Bengal class id 6; one breed has one class id: "
        "correct the line"]
    edit_line(root / "annotations" / "test.txt", 3, "Bengal_201 38 1 2")
    with pytest.raises(ConfigError, match=r"test\.txt, line 3: class id 38 of Bengal_201 is outside 1\.\.37"):
        build(root, "test")


def test_a_class_id_with_two_names_is_an_error(root: Path):
    edit_line(root / "annotations" / "test.txt", 1, "Abyssinians_201 1 1 1")
    with pytest.raises(ConfigError, match=r"test\.txt, line 1: class id 1 is Abyssinians here, but Abyssinian at "
                                          r".*trainval\.txt, line 1; one class id names one breed"):
        build(root, "test")


def test_every_bad_line_is_named_in_one_error(root: Path):
    trainval = root / "annotations" / "trainval.txt"
    edit_line(trainval, 2, "Abyssinian_101 1 1")
    edit_line(trainval, 4, "american_bulldog_101 2 dog 1")
    edit_line(trainval, 6, "basset_hound 4 2 3")
    edit_line(trainval, 7, "beagle_100 5 3 4")
    edit_line(trainval, 9, "Bengal_100 6 1 2")  # Bengal_100 again, on Birman's line
    with pytest.raises(ConfigError) as err:
        build(root, "test")
    where = f"{trainval}, line"
    assert err.value.problems == [
        f"{where} 2: expected 4 fields '<image name> <class id 1..37> <species 1|2> <breed id>', e.g. "
        "'Abyssinian_100 1 1 1', got 3: 'Abyssinian_101 1 1'",
        f"{where} 4: class id, species and breed id should be whole numbers '<image name> <class id 1..37> "
        "<species 1|2> <breed id>', e.g. 'Abyssinian_100 1 1 1', got 'american_bulldog_101 2 dog 1'",
        f"{where} 6: image name 'basset_hound' is not '<Breed_name>_<number>', as the names of images/ are",
        f"{where} 7: species 3 of beagle_100 is neither 1 (cat) nor 2 (dog)",
        f"{where} 9: Bengal_100 is listed again (first on line 8); list each picture once"]
    assert "annotations.tar.gz" in str(err.value)


def test_a_class_id_no_line_names_is_an_error(root: Path):
    trainval = root / "annotations" / "trainval.txt"
    trainval.write_text("".join(line + "\n" for line in trainval.read_text().splitlines()
                                if not line.startswith(("Sphynx", "pug"))))
    with pytest.raises(ConfigError, match=r"class ids 26, 34 are named by no line of .*trainval\.txt, .*test\.txt; "
                                          r"the official lists name all 37 breeds"):
        build(root, "test")


def test_a_missing_picture_or_list_is_named(root: Path):
    (root / "images" / "Bengal_201.jpg").unlink()
    with pytest.raises(ConfigError) as err:
        build(root, "test")
    assert err.value.problems == [f"missing picture: {root / 'images' / 'Bengal_201.jpg'}"]
    assert "images.tar.gz" in str(err.value) and "check_images=false" in str(err.value)
    assert len(build(root)) == 39  # train does not read it
    unchecked = build(root, "test", check_images=False)
    with pytest.raises(ConfigError, match=r"image file not found: .*Bengal_201\.jpg \(named by .*test\.txt, line 3 "
                                          r"of dataset 'pets'\)"):
        unchecked[2]
    (root / "annotations" / "test.txt").unlink()
    with pytest.raises(ConfigError) as err:
        build(root)
    assert err.value.problems == [f"missing file or folder: {root / 'annotations' / 'test.txt'}"]
    assert "https://www.robots.ox.ac.uk/~vgg/data/pets/" in str(err.value)


def test_an_unreadable_picture_names_the_file(root: Path):
    (root / "images" / "Abyssinian_201.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ConfigError, match=r"cannot read image .*Abyssinian_201\.jpg \(named by .*test\.txt, line 1"):
        build(root, "test")[0]


# ----------------------------------------------------------------------------- unimm_data check

def test_unimm_data_check_reads_what_the_config_reads(root: Path, capsys):
    assert unimm_data(["check", f"config={CONFIG}", f"env.data_dir={root.parent}"]) == 0
    report = capsys.readouterr().out
    assert "datasets.pets\n  train  ok       39 samples; labels: Abyssinian 2, american_bulldog 2, Bengal 1," in report
    assert "\n  test   ok       4 samples; labels: Abyssinian 1, Bengal 1, american_bulldog 1, " \
           "yorkshire_terrier 1, Birman 0," in report
    assert report.rstrip().endswith("no problems found")


def test_unimm_data_check_reports_a_test_picture_listed_for_training(root: Path, capsys):
    with (root / "annotations" / "trainval.txt").open("a") as f:
        f.write("Bengal_201 6 1 2\n")
    (root / "images" / "Birman_100.jpg").unlink()
    assert unimm_data(["check", f"config={CONFIG}", f"env.data_dir={root.parent}"]) == 1
    report = capsys.readouterr().out
    assert f"problem: missing pictures (1): {root / 'images' / 'Birman_100.jpg'}" in report
    assert "problem: 1 of its 4 pictures are also pictures of the train split" in report
