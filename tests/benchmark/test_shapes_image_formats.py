"""The picture datasets follow their official layouts.

COCO, VQAv2, Visual Genome, Karpathy, SNLI-VE, NLVR2 and the image folder.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from PIL import Image
from pycocotools import mask
from pycocotools.coco import COCO

from unimm.benchmark.shapes.lexicon import COCO_CATEGORY_IDS, COLOURS, SHAPES, SIZES


def _json(path: Path):
    return json.loads(path.read_text())


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_coco_detection_loads_with_pycocotools(shapes_dir: Path) -> None:
    for split in ("train2017", "val2017"):
        path = shapes_dir / f"coco/annotations/instances_{split}.json"
        raw = _json(path)
        assert set(raw) == {"info", "licenses", "images", "annotations", "categories"}
        coco = COCO(str(path))
        assert sorted(coco.getCatIds()) == sorted(COCO_CATEGORY_IDS.values())
        assert [c["name"] for c in coco.loadCats(coco.getCatIds(catNms=["star"]))] == ["star"]
        empty = [i for i in coco.getImgIds() if not coco.getAnnIds(imgIds=[i])]
        assert split != "train2017" or empty, "some pictures must have no boxes"
        for image in coco.loadImgs(coco.getImgIds()):
            assert set(image) >= {"id", "file_name", "width", "height"}
            with Image.open(shapes_dir / "coco" / split / image["file_name"]) as picture:
                assert picture.format == "JPEG" and picture.size == (image["width"], image["height"])
            for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]], iscrowd=False)):
                x, y, w, h = annotation["bbox"]
                assert 0 <= x and 0 <= y and x + w <= image["width"] and y + h <= image["height"]
                assert 0 < annotation["area"] <= w * h and annotation["iscrowd"] == 0
                assert len(annotation["segmentation"][0]) >= 6
                rle_area = float(mask.area(coco.annToRLE(annotation)))
                assert abs(rle_area - annotation["area"]) <= 0.25 * annotation["area"] + 4


def test_coco_evaluation_runs_on_the_files(shapes_dir: Path) -> None:
    from pycocotools.cocoeval import COCOeval

    truth = COCO(str(shapes_dir / "coco/annotations/instances_val2017.json"))
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in truth.loadAnns(truth.getAnnIds())]
    evaluation = COCOeval(truth, truth.loadRes(perfect), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == 1.0  # ground truth as predictions: mAP 1


def test_coco_captions_and_2014_names(shapes_dir: Path) -> None:
    for split in ("train", "val"):
        captions = _json(shapes_dir / f"coco/annotations/captions_{split}2017.json")
        per_image = Counter(c["image_id"] for c in captions["annotations"])
        assert set(per_image.values()) == {5}
        assert set(per_image) == {image["id"] for image in captions["images"]}
        for image_id in per_image:
            assert (shapes_dir / f"coco/{split}2014/COCO_{split}2014_{image_id:012d}.jpg").is_file()


def test_vqa2_has_the_official_structure(shapes_dir: Path) -> None:
    for subtype in ("train2014", "val2014"):
        questions = _json(shapes_dir / f"vqa2/v2_OpenEnded_mscoco_{subtype}_questions.json")
        annotations = _json(shapes_dir / f"vqa2/v2_mscoco_{subtype}_annotations.json")
        assert {"info", "license", "data_subtype", "questions", "task_type", "data_type"} <= set(questions)
        assert {"info", "license", "data_subtype", "annotations"} <= set(annotations)
        assert questions["data_subtype"] == annotations["data_subtype"] == subtype
        by_id = {q["question_id"]: q for q in questions["questions"]}
        assert len(by_id) == len(questions["questions"]) == len(annotations["annotations"])
        for entry in annotations["annotations"]:
            assert set(entry) == {"question_id", "image_id", "question_type", "answer_type",
                                  "multiple_choice_answer", "answers"}
            assert by_id[entry["question_id"]]["image_id"] == entry["image_id"]
            assert [a["answer_id"] for a in entry["answers"]] == list(range(1, 11))
            assert all(a["answer_confidence"] in ("yes", "maybe", "no") for a in entry["answers"])
            assert entry["answer_type"] in ("yes/no", "number", "other")
        for image_id in {q["image_id"] for q in questions["questions"]}:
            assert (shapes_dir / f"coco/{subtype}/COCO_{subtype}_{image_id:012d}.jpg").is_file()
    kinds = Counter(a["answer_type"] for a in annotations["annotations"])
    assert set(kinds) == {"yes/no", "number", "other"}


def test_visual_genome_files_and_unit_split(shapes_dir: Path) -> None:
    vg = shapes_dir / "vg"
    image_data = _json(vg / "image_data.json")
    ids = {entry["image_id"] for entry in image_data}
    train, val = set(_json(vg / "train_image_ids.json")), set(_json(vg / "val_image_ids.json"))
    assert train | val == ids and not train & val
    val2017 = {image["id"] for image in _json(shapes_dir / "coco/annotations/instances_val2017.json")["images"]}
    assert {e["coco_id"] for e in image_data if e["image_id"] in val} == val2017
    assert any(e["coco_id"] is None for e in image_data)  # Visual Genome's own pictures
    for entry in image_data:
        assert (vg / "VG_100K" / entry["url"].rsplit("/", 1)[-1]).is_file()
    for objects, attributes in zip(_json(vg / "objects.json"), _json(vg / "attributes.json")):
        assert objects["image_id"] == attributes["image_id"]
        for obj in attributes["attributes"]:
            assert {"object_id", "x", "y", "w", "h", "names", "synsets", "attributes"} <= set(obj)
            assert obj["names"][0] in SHAPES
            assert obj["attributes"][0] in COLOURS and obj["attributes"][1] in SIZES
    qas = _json(vg / "question_answers.json")
    assert {entry["id"] for entry in qas} == ids
    first = next(qa for entry in qas for qa in entry["qas"])
    assert {"qa_id", "image_id", "question", "answer", "q_objects", "a_objects"} <= set(first)
    assert first["answer"].endswith(".") and first["question"].endswith("?")


def test_karpathy_retrieval_files_point_at_pictures(shapes_dir: Path) -> None:
    roots = {"coco": shapes_dir / "coco", "flickr30k": shapes_dir / "flickr30k/flickr30k_images"}
    for name, root in roots.items():
        data = _json(shapes_dir / f"karpathy/dataset_{name}.json")
        assert data["dataset"] == name
        splits = Counter(image["split"] for image in data["images"])
        assert {"train", "val", "test"} <= set(splits)
        for image in data["images"]:
            assert (root / image.get("filepath", "") / image["filename"]).is_file()
            assert len(image["sentences"]) == len(image["sentids"]) == 5
            assert all(s["tokens"] and s["raw"] and s["imgid"] == image["imgid"] for s in image["sentences"])


def test_snli_ve_rows(shapes_dir: Path) -> None:
    for split in ("train", "dev", "test"):
        rows = _jsonl(shapes_dir / f"snli_ve/snli_ve_{split}.jsonl")
        thirds = {label: len(rows) // 3 for label in ("entailment", "neutral", "contradiction")}
        assert Counter(r["gold_label"] for r in rows) == thirds
        for row in rows:
            assert {"Flickr30K_ID", "sentence1", "sentence2", "gold_label", "pairID", "captionID",
                    "annotator_labels"} <= set(row)
            assert isinstance(row["Flickr30K_ID"], str)
            assert (shapes_dir / f"flickr30k/flickr30k_images/{row['Flickr30K_ID']}.jpg").is_file()


def test_nlvr2_rows_and_picture_names(shapes_dir: Path) -> None:
    for split in ("train", "dev", "test1"):
        rows = _jsonl(shapes_dir / f"nlvr2/{split}.json")
        labels_by_statement: dict[str, set] = {}
        for row in rows:
            labels_by_statement.setdefault(row["identifier"].split("-")[1], set()).add(row["label"])
        contrasted = sum(labels == {"True", "False"} for labels in labels_by_statement.values())
        assert contrasted >= 0.8 * len(labels_by_statement)  # one true and one false pair per statement
        for row in rows:
            assert {"identifier", "sentence", "label", "left_url", "right_url"} <= set(row)
            assert row["label"] in ("True", "False")
            stem = row["identifier"].rsplit("-", 1)[0]
            for side in ("img0", "img1"):
                with Image.open(shapes_dir / f"nlvr2/images/{split}/{stem}-{side}.png") as picture:
                    assert picture.format == "PNG"


def test_image_folder_classes(shapes_dir: Path) -> None:
    for split, per_class in (("train", 4), ("val", 2)):
        classes = sorted(p.name for p in (shapes_dir / "imagefolder" / split).iterdir())
        assert classes == sorted(SHAPES)
        assert all(len(list((shapes_dir / "imagefolder" / split / c).iterdir())) == per_class for c in classes)
