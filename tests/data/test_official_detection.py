"""COCO 2017 and Visual Genome 1.2 as distributed (the hand-written fixture of tests/assets/official):
UniT's VG split lists, the errors that replace silent failures, COCO test2017, and UniT runs on them."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.data.conftest import write_json
from tests.helpers import predict_with_random_weights
from unimm.config.errors import ConfigError
from unimm.data.images import PIXEL_CACHE
from unimm.data.files import coco_image_ids
from unimm.data.vg_splits import make_vg_splits, vg_splits_summary, write_vg_splits
from unimm.interfaces import ListsImages
from unimm.registry import DATASETS

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = REPO / "tests" / "assets" / "official"
VG_TRAIN, VG_VAL = [1, 2, 4, 107899], [3, 5]  # val: the VG images whose coco_id (139, 285) is a val2017 image


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """A copy of the COCO and VG fixtures, with the VG split lists written by the tool."""
    root = tmp_path / "official"
    for name in ("coco", "vg"):
        shutil.copytree(OFFICIAL / name, root / name)
    write_vg_splits(root / "vg", root / "coco" / "annotations" / "instances_val2017.json")
    return root


def coco(root: Path, split: str = "val", **kwargs):
    return DATASETS.build({"type": "coco_detection", "data_dir": str(root / "coco"), **kwargs}, split=split,
                          name="coco")


def vg(root: Path, split: str = "train", **kwargs):
    return DATASETS.build({"type": "visual_genome", "data_dir": str(root / "vg"), **kwargs}, split=split, name="vg")


# ----------------------------------------------------------------------------- the VG split lists

def test_vg_splits_follow_coco_val2017(tmp_path):
    coco_val = OFFICIAL / "coco" / "annotations" / "instances_val2017.json"
    assert make_vg_splits(OFFICIAL / "vg", coco_val) == (VG_TRAIN, VG_VAL)
    paths = write_vg_splits(OFFICIAL / "vg", coco_val, out_dir=tmp_path / "lists")
    assert paths == [tmp_path / "lists" / "train_image_ids.json", tmp_path / "lists" / "val_image_ids.json"]
    assert [json.loads(p.read_text()) for p in paths] == [VG_TRAIN, VG_VAL]
    assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == ["train_image_ids.json", "val_image_ids.json"]
    assert vg_splits_summary(paths) == (f"Visual Genome splits in {tmp_path / 'lists'}: "
                                        "train_image_ids.json 4 images, val_image_ids.json 2 images")
    assert not list((OFFICIAL / "vg").glob("*_image_ids.json"))  # the fixture holds no split lists


def test_vg_splits_refuse_a_coco_file_without_vg_images():
    with pytest.raises(ConfigError, match=r"no image of .*image_data.json is one of the 3 COCO images of "
                                          r".*image_info_test2017.json \(4 of its 6 images have a coco_id\)"):
        make_vg_splits(OFFICIAL / "vg", OFFICIAL / "coco" / "annotations" / "image_info_test2017.json")


def test_coco_image_ids_read_coco_and_vqa2_files(tmp_path):
    assert coco_image_ids(OFFICIAL / "coco" / "annotations" / "instances_val2017.json") == {139, 285, 632}
    questions = write_json(tmp_path / "q.json", {"questions": [{"image_id": 9, "question": "?", "question_id": 90}]})
    assert coco_image_ids(questions) == {9}
    with pytest.raises(ConfigError, match="a COCO annotations file .* or a VQAv2 questions file"):
        coco_image_ids(write_json(tmp_path / "other.json", {"annotations": []}))


def test_coco_ids_in_a_split_list_are_an_error_that_points_to_the_tool(data):
    write_json(data / "vg" / "val_image_ids.json", [139, 285, 632])  # COCO val2017 ids, written by mistake
    with pytest.raises(ConfigError) as err:
        vg(data, split="val")
    text = str(err.value)
    assert "val_image_ids.json: 3 of its 3 image ids are not images of" in text and "(139, 285, 632)" in text
    assert "2 of them are 'coco_id' values of image_data.json: the list looks like COCO image ids" in text
    assert f"unimm_data vg-splits --vg {data / 'vg'} --coco-val" in text


def test_unknown_and_repeated_split_ids_are_errors(data):
    write_json(data / "vg" / "train_image_ids.json", [1, 2, 999])
    with pytest.raises(ConfigError, match=r"train_image_ids.json: 1 of its 3 image ids .* \(999\); a split list "
                                          r"holds Visual Genome image ids") as err:
        vg(data, split="val")  # the train list chooses the classes: it is checked for every split
    assert "COCO" not in str(err.value)
    write_json(data / "vg" / "train_image_ids.json", [1, 2, 1])
    with pytest.raises(ConfigError, match="image id 1 is listed more than once"):
        vg(data)


def test_an_evaluation_split_sharing_train_images_is_reported(data, caplog):
    write_json(data / "vg" / "val_image_ids.json", [3, 5, 1])
    with caplog.at_level(logging.WARNING, logger="unimm"):
        vg(data, split="val")
    assert "1 of the 3 images of its 'val' split" in caplog.text and "are also train images" in caplog.text


# ----------------------------------------------------------------------------- VG questions

def test_vg_questions_on_images_of_the_vqa2_evaluation_split_are_excluded(data, wordpiece_dir, caplog):
    vqa2_val = write_json(data / "vqa2" / "v2_OpenEnded_mscoco_val2014_questions.json", {
        "info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "license": {}, "data_subtype": "val2014",
        "questions": [{"image_id": 25, "question": "Is it a dog?", "question_id": 25000},
                      {"image_id": 9, "question": "What is this?", "question_id": 9000},
                      {"image_id": 139, "question": "Who?", "question_id": 139000},
                      {"image_id": 424242, "question": "Where?", "question_id": 424242000}]})
    node = {"type": "visual_genome_qa", "data_dir": str(data / "vg"), "answer_vocab_size": 10,
            "tokenizer": {"type": "bert_tokenizer", "path": str(wordpiece_dir), "max_length": 16}}
    every = DATASETS.build(node, split="train", name="vg_qa")
    assert [q.question_id for q in every.questions] == [986768, 986769, 2001, 2002, 1078991]
    with caplog.at_level(logging.INFO, logger="unimm"):
        kept = DATASETS.build({**node, "exclude_images_of": [str(vqa2_val)]}, split="train", name="vg_qa")
    assert [q.question_id for q in kept.questions] == [986768, 986769]  # VG 2 (COCO 25) and 107899 (COCO 9) go
    assert ("dataset 'vg_qa' (train split): excluded 3 questions on 2 VG images whose COCO image (coco_id) is one "
            "of the 4 images of") in caplog.text
    assert kept.info()["answer_vocab"] == ["blue", "man"]  # the excluded answers make no vocabulary either
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="unimm"):  # COCO val2017 is already outside the VG train list
        coco_val = str(data / "coco" / "annotations" / "instances_val2017.json")
        assert len(DATASETS.build({**node, "exclude_images_of": [coco_val]}, split="train", name="vg_qa")) == 5
    assert "excluded no question" in caplog.text
    with pytest.raises(ConfigError, match=r"exclude_images_of: missing file: .*nowhere.json"):
        DATASETS.build({**node, "exclude_images_of": [str(data / "nowhere.json")]}, split="train", name="vg_qa")


# ----------------------------------------------------------------------------- pictures and their sizes

def test_image_files_and_label_counts(data):
    train = coco(data, split="train")
    assert isinstance(train, ListsImages) and train.has_labels
    folder = data / "coco" / "train2017"
    assert train.image_files() == [(folder / "000000000009.jpg", (32, 24)), (folder / "000000000025.jpg", (24, 32)),
                                   (folder / "000000000030.jpg", (40, 30))]
    assert train.label_counts() == {"person": 1, "car": 1, "dog": 2, "bottle": 1, "chair": 1, "toothbrush": 0}
    assert coco(data, split="train", keep_crowd=True).label_counts()["person"] == 2
    genome = vg(data)
    assert genome.image_files() == [(data / "vg" / "VG_100K_2" / "1.jpg", (32, 24)),
                                    (data / "vg" / "VG_100K_2" / "2.jpg", (24, 32)),
                                    (data / "vg" / "VG_100K" / "4.jpg", (32, 24)),
                                    (data / "vg" / "VG_100K_2" / "107899.jpg", (32, 24))]
    assert genome.label_counts() == {"man": 3, "dog": 2, "shirt": 1, "tree": 1, "trees": 1, "window": 1}
    assert vg(data, split="val").label_counts() == {"man": 1, "dog": 1, "shirt": 0, "tree": 0, "trees": 0,
                                                    "window": 0}  # the giraffe is no class
    for path, size in [*train.image_files(), *genome.image_files()]:
        assert Image.open(path).size == size  # the fixture's pictures have their annotated sizes


@pytest.mark.parametrize("transform", [None, {"type": "detr_eval_transform", "size": 12, "max_size": 20}],
                         ids=["no_cache", "pixel_cache"])
def test_a_picture_of_another_size_than_its_annotation_is_an_error(data, transform):
    PIXEL_CACHE.clear()
    ds = coco(data, eval_transform=transform)
    assert tuple(ds[0]["image"].shape[-2:]) == ((30, 40) if transform is None else (12, 16))  # as distributed
    hits = PIXEL_CACHE.hits
    ds[0]  # from the cache when there is one
    assert transform is None or PIXEL_CACHE.max_bytes == 0 or PIXEL_CACHE.hits == hits + 1
    picture = data / "coco" / "val2017" / "000000000139.jpg"
    Image.open(picture).resize((80, 60)).save(picture)  # someone resized the pictures
    with pytest.raises(ConfigError) as err:
        ds[0]
    text = str(err.value)
    annotations = data / "coco" / "annotations" / "instances_val2017.json"
    assert f"image {picture} (named by image_id 139 of {annotations})" in text
    assert "is 80 x 60 pixels (width x height) but its annotation states 40 x 30" in text
    assert "Use the pictures as distributed" in text and "correct the record's width and height" in text
    assert "swapped" not in text


def test_sizes_are_those_of_the_stored_pixels_not_the_exif_rotated_ones(data):
    picture = data / "coco" / "val2017" / "000000000139.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    Image.open(picture).save(picture, exif=exif)  # stored 40 x 30, shown 30 x 40
    assert tuple(coco(data)[0]["image"].shape[-2:]) == (30, 40)  # the annotation (40 x 30) describes the stored grid
    annotations = data / "coco" / "annotations" / "instances_val2017.json"
    content = json.loads(annotations.read_text())
    content["images"][0].update(width=30, height=40)  # an annotation of the rotated picture
    write_json(annotations, content)
    with pytest.raises(ConfigError, match="is 40 x 30 pixels .* states 30 x 40.*the sizes are swapped"):
        coco(data)[0]


# ----------------------------------------------------------------------------- COCO test2017

def test_coco_test2017_has_no_labels_and_refuses_metrics(data):
    from unimm.training.trainer import require_labels

    test = coco(data, split="test")
    assert not test.has_labels and len(test) == 3 and test.label_counts() == {}
    assert "annotation_file" not in test.info() and test.info()["num_classes"] == 6
    assert [c["id"] for c in test.info()["categories"]] == [1, 3, 18, 44, 62, 90]
    sample = test[1]
    assert sample["image_id"] == 16 and sample["target"]["boxes"].shape == (0, 4)
    assert test.image_files()[1] == (data / "coco" / "test2017" / "000000000016.jpg", (24, 32))
    with pytest.raises(ConfigError, match=r"(?s)image_info_test2017.json\) has no labels.*run_type=predict"):
        require_labels({"coco": test}, "val", "test")
    content = json.loads((data / "coco" / "annotations" / "image_info_test2017.json").read_text())
    content["images"] = content["images"][1:]  # test-dev: a part of test2017, whose folder holds its pictures
    write_json(data / "coco" / "annotations" / "image_info_test-dev2017.json", content)
    dev = coco(data, split="test", split_names={"test": "test-dev2017"})
    assert not dev.has_labels and [im.image_id for im in dev.images] == [16, 19]
    assert dev.images[0].path == data / "coco" / "test2017" / "000000000016.jpg"
    # split_names names only what it changes: train and val keep train2017 / val2017
    assert len(coco(data, split="train", split_names={"test": "test-dev2017"})) == 3


# ----------------------------------------------------------------------------- UniT runs

def unit_overrides(data: Path, tiny_benchmark: Path, save_dir: Path) -> list[str]:
    return [f"vars.data={data}", f"env.data_dir={tiny_benchmark}", "env.benchmark.size=tiny",
            "model.type=unit_tiny", "env.device=cpu", f"env.save_dir={save_dir}", "checkpoint.init_from=null",
            "training.batch_size=2", "evaluation.batch_size=2"]


def test_unit_single_task_vg_trains_and_evaluates_on_the_official_layout(data, tiny_benchmark, tmp_path):
    from unimm import session

    config = REPO / "projects" / "unit" / "single_task" / "vg.yaml"
    overrides = [*unit_overrides(data, tiny_benchmark, tmp_path / "run"), "run_type=train_val",
                 "training.max_updates=2", "scheduler.warmup_steps=1"]
    cfg, text = session.prepare(config, overrides, variant="shapes")
    results = session.execute(cfg, text)
    assert 0.0 <= results["vg/map"] <= 1.0 and 0.0 <= results["vg/ap50"] <= 1.0


def test_unit_coco_predicts_on_test2017(data, tiny_benchmark, tmp_path):
    config = REPO / "projects" / "unit" / "single_task" / "coco.yaml"
    overrides = [*unit_overrides(data, tiny_benchmark, tmp_path / "run"), "run_type=predict",
                 "evaluation.split=test"]
    predict_with_random_weights(config, overrides, "test", tmp_path)
    folder = tmp_path / "run" / "predictions"
    assert sorted(p.name for p in folder.iterdir()) == ["coco_test.json", "coco_test.png",
                                                        "detections_test2017_unimm_results.json"]
    rows = json.loads((folder / "coco_test.json").read_text())
    assert json.loads((folder / "detections_test2017_unimm_results.json").read_text()) == rows  # the server's name
    assert list(dict.fromkeys(r["image_id"] for r in rows)) == [1, 16, 19] and len(rows) % 3 == 0
    assert {r["category_id"] for r in rows} <= {1, 3, 18, 44, 62, 90}
    assert all(len(r["bbox"]) == 4 and 0 <= r["score"] <= 1 for r in rows)
