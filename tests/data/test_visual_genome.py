"""Visual Genome objects + attributes (detection) and question answers (VQA)."""
from __future__ import annotations

import pytest

from tests.data.conftest import write_image, write_json
from tests.data.test_vqa2 import write_vqa2
from unimm.config.errors import ConfigError
from unimm.registry import DATASETS

URL = "https://cs.stanford.edu/people/rak248"


def obj(object_id, x, y, w, h, name):
    return {"object_id": object_id, "x": x, "y": y, "w": w, "h": h, "names": [name], "synsets": []}


def write_vg(root):
    write_json(root / "image_data.json", [
        {"image_id": 1, "url": f"{URL}/VG_100K_2/1.jpg", "width": 32, "height": 24, "coco_id": None, "flickr_id": None},
        {"image_id": 2, "url": f"{URL}/VG_100K/2.jpg", "width": 32, "height": 24, "coco_id": 139, "flickr_id": None},
        {"image_id": 3, "url": f"{URL}/VG_100K/3.jpg", "width": 32, "height": 24, "coco_id": None, "flickr_id": None},
    ])
    objects = {1: [obj(10, 2, 3, 8, 6, "Dog"), obj(11, 12, 0, 10, 20, "tree"), obj(12, 0, 0, 4, 4, "rare thing")],
               2: [obj(20, 1, 1, 30, 40, "dog"), obj(21, 5, 5, 5, 5, "tree ")], 3: []}
    write_json(root / "objects.json", [{"image_id": i, "objects": o} for i, o in objects.items()])
    write_json(root / "attributes.json", [
        {"image_id": 1, "attributes": [{**obj(10, 2, 3, 8, 6, "Dog"), "attributes": ["Brown", "small"]},
                                       obj(11, 12, 0, 10, 20, "tree")]},
        {"image_id": 2, "attributes": [{**obj(20, 1, 1, 30, 40, "dog"), "attributes": ["brown"]}]},
        {"image_id": 3, "attributes": []},
    ])
    write_json(root / "question_answers.json", [
        {"id": 1, "qas": [{"qa_id": 100, "image_id": 1, "question": "What color is the dog?", "answer": "Brown.",
                           "a_objects": [], "q_objects": []}]},
        {"id": 2, "qas": [{"qa_id": 200, "image_id": 2, "question": "How many dogs?", "answer": "Two",
                           "a_objects": [], "q_objects": []},
                          {"qa_id": 201, "image_id": 2, "question": "Is there a dog?", "answer": "yes",
                           "a_objects": [], "q_objects": []}]},
        {"id": 3, "qas": [{"qa_id": 300, "image_id": 3, "question": "What is there?", "answer": "nothing",
                           "a_objects": [], "q_objects": []}]},
    ])
    write_json(root / "train_image_ids.json", [1, 2])
    write_json(root / "val_image_ids.json", [3, 2])
    for folder, i in (("VG_100K_2", 1), ("VG_100K", 2), ("VG_100K", 3)):
        write_image(root / folder / f"{i}.jpg")


def detection(root, split="train", **kwargs):
    node = {"type": "visual_genome", "data_dir": str(root), "num_object_classes": 2, "num_attribute_classes": 1,
            "max_attributes": 3, **kwargs}
    return DATASETS.build(node, split=split, name="vg")


def test_objects_with_attributes_from_train_vocabulary(tmp_path):
    write_vg(tmp_path)
    ds = detection(tmp_path)
    info = ds.info()
    assert info["categories"] == [{"id": 1, "name": "dog"}, {"id": 2, "name": "tree"}]  # "rare thing" is rarer
    assert info["attributes"] == ["brown"]
    target = ds[0]["target"]
    assert target["labels"].tolist() == [0, 1]
    assert target["attributes"].tolist() == [[0, -1, -1], [-1, -1, -1]]  # "small" is outside the vocabulary
    assert target["boxes"][0].tolist() == pytest.approx([6 / 32, 6 / 24, 8 / 32, 6 / 24])
    assert ds.images[0].path == tmp_path / "VG_100K_2" / "1.jpg"  # folder taken from the url
    clipped = ds[1]["target"]  # the dog of image 2 runs past the bottom: clipped to the image
    assert clipped["boxes"][0].tolist() == pytest.approx([16 / 32, 12.5 / 24, 30 / 32, 23 / 24])


def test_val_split_has_an_image_without_objects(tmp_path):
    write_vg(tmp_path)
    ds = detection(tmp_path, split="val")
    assert [im.image_id for im in ds.images] == [3, 2]
    empty = ds[0]["target"]
    assert empty["boxes"].shape == (0, 4) and empty["attributes"].shape == (0, 3)
    batch = ds.collate([ds[0], ds[1]])
    assert [t["labels"].tolist() for t in batch["targets"]] == [[], [0, 1]]


def test_ground_truth_as_pycocotools_coco(tmp_path):
    write_vg(tmp_path)
    coco = detection(tmp_path).coco
    assert sorted(coco.getImgIds()) == [1, 2] and sorted(coco.getCatIds()) == [1, 2]
    dog_of_image_2 = coco.loadAnns(coco.getAnnIds(imgIds=[2], catIds=[1]))[0]
    assert dog_of_image_2["bbox"] == [1.0, 1.0, 30.0, 23.0]  # clipped to the 32 x 24 image
    assert len(coco.getAnnIds(imgIds=[1])) == 2  # "rare thing" is not a class


def test_class_files_with_synonyms(tmp_path):
    write_vg(tmp_path)
    (tmp_path / "objects_vocab.txt").write_text("tree\nrare thing,dog\n")
    (tmp_path / "attributes_vocab.txt").write_text("small\nbrown\n")
    ds = detection(tmp_path, object_vocab_file="objects_vocab.txt", attribute_vocab_file="attributes_vocab.txt")
    assert [c["name"] for c in ds.info()["categories"]] == ["tree", "rare thing"]
    target = ds[0]["target"]
    assert target["labels"].tolist() == [1, 0, 1]  # dog is a synonym of class 1
    assert target["attributes"][0].tolist() == [1, 0, -1]


def test_missing_files_are_listed_together(tmp_path):
    write_vg(tmp_path)
    (tmp_path / "attributes.json").unlink()
    (tmp_path / "val_image_ids.json").unlink()
    with pytest.raises(ConfigError) as err:
        detection(tmp_path, split="val")
    assert str(tmp_path / "attributes.json") in str(err.value)
    assert str(tmp_path / "val_image_ids.json") in str(err.value) and "visualgenome" in str(err.value)


def qa(root, tok, split="train", **kwargs):
    node = {"type": "visual_genome_qa", "data_dir": str(root), "tokenizer": tok, "answer_vocab_size": 10, **kwargs}
    return DATASETS.build(node, split=split, name="vg_qa")


@pytest.fixture()
def tok_node(wordpiece_dir):
    return {"type": "bert_tokenizer", "path": str(wordpiece_dir), "max_length": 16}


def test_question_answers_as_vqa(tmp_path, tok_node):
    write_vg(tmp_path)
    ds = qa(tmp_path, tok_node)
    assert ds.task_type == "vqa" and ds.info()["answer_vocab"] == ["2", "brown", "yes"]
    first = ds[0]
    assert first["question_id"] == 100 and first["answers"] == ["Brown."]
    assert first["answer_scores"].tolist() == [0.0, 1.0, 0.0]  # a single answer is full credit
    val = qa(tmp_path, tok_node, split="val")
    assert [q.question_id for q in val.questions] == [200, 201, 300]
    assert val[2]["answer_scores"].sum() == 0  # "nothing" is outside the vocabulary


def test_question_answers_share_the_vqa2_vocabulary(tmp_path, tok_node):
    write_vg(tmp_path / "vg")
    write_vqa2(tmp_path / "vqa2", splits=("train2014",))
    ds = qa(tmp_path / "vg", tok_node, vqa2_data_dir=str(tmp_path / "vqa2"), answer_vocab_size=4)
    assert ds.info()["answer_vocab"] == ["yes", "2", "red", "3"]
    assert ds[1]["answer_scores"].tolist() == [0.0, 1.0, 0.0, 0.0]  # "Two" -> "2"
