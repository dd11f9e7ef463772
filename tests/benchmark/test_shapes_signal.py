"""The labels carry a learnable signal: annotations agree with pixels and with each other, the
blind baselines stay well below perfect, and a bag of words learns SST-2."""
from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from unimm.benchmark.shapes import baselines
from unimm.benchmark.shapes.lexicon import COCO_CATEGORY_IDS, COLOURS, PLURALS

TASKS = {"coco_detection", "vg_detection", "vqa2", "snli_ve", "nlvr2", "imagefolder", "sst2", "qnli", "qqp",
         "rte", "mnli_matched", "mnli_mismatched", "retrieval_coco", "retrieval_flickr30k"}


def _json(path: Path):
    return json.loads(path.read_text())


def test_vqa_counts_agree_with_detection_boxes(shapes_dir: Path) -> None:
    boxes = _json(shapes_dir / "coco/annotations/instances_train2017.json")["annotations"]
    names = {cid: name for name, cid in COCO_CATEGORY_IDS.items()}
    per_image = {}
    for box in boxes:
        per_image.setdefault(box["image_id"], Counter())[names[box["category_id"]]] += 1
    asked = _json(shapes_dir / "vqa2/v2_OpenEnded_mscoco_train2014_questions.json")["questions"]
    questions = {q["question_id"]: q for q in asked}
    checked = 0
    for entry in _json(shapes_dir / "vqa2/v2_mscoco_train2014_annotations.json")["annotations"]:
        match = re.fullmatch(r"How many (\w+) are there\?", questions[entry["question_id"]]["question"])
        if not match:
            continue
        counts = per_image.get(entry["image_id"], Counter())
        shape = {plural: shape for shape, plural in PLURALS.items()}.get(match.group(1))
        expected = sum(counts.values()) if match.group(1) == "shapes" else counts[shape]
        assert entry["multiple_choice_answer"] == str(expected)
        checked += 1
    assert checked >= 5


def test_pixels_show_the_annotated_colours(shapes_dir: Path) -> None:
    palette = np.array(list(COLOURS.values()), dtype=np.float64)
    names = list(COLOURS)
    image_data = {e["image_id"]: e for e in _json(shapes_dir / "vg/image_data.json")}
    agree = total = 0
    for entry in _json(shapes_dir / "vg/attributes.json"):
        url = image_data[entry["image_id"]]["url"]
        with Image.open(shapes_dir / "vg/VG_100K" / url.rsplit("/", 1)[-1]) as picture:
            pixels = np.asarray(picture.convert("RGB"), dtype=np.float64)
        for obj in entry["attributes"]:
            cx, cy = int(obj["x"] + obj["w"] / 2), int(obj["y"] + obj["h"] / 2)
            colour = pixels[cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3).mean(axis=0)
            nearest = names[int(np.argmin(((palette - colour) ** 2).sum(axis=1)))]
            agree += nearest == obj["attributes"][0]
            total += 1
    assert total > 50 and agree >= 0.95 * total


def test_baselines_cover_every_task_and_stay_below_perfect(shapes_dir: Path) -> None:
    found = _json(shapes_dir / "baselines.json")
    assert set(found) == TASKS
    for task, entry in found.items():
        assert {"metric", "split", "chance", "note"} <= set(entry), task
        if "majority" in entry:
            assert 0 < entry["chance"] < 1 and entry["majority"]["accuracy"] < 1, task
    assert found["coco_detection"]["chance"] == 0.0
    assert found["vqa2"]["majority"]["accuracy"] < found["vqa2"]["question_only_prior"] < 0.75
    assert found["snli_ve"]["hypothesis_only"] < 0.85
    # one of each label per picture: a reader of the statement's kind beats the majority but
    # stays far from perfect (about 2/3 on the default size; this tiny one has few dev pairs)
    snli_ve = found["snli_ve"]
    assert snli_ve["majority"]["accuracy"] < snli_ve["hypothesis_template_prior"] < 0.85
    assert 0 < found["nlvr2"]["sentence_template_prior"] < 0.85


def test_a_template_masks_only_what_fills_it() -> None:
    assert baselines.template("There is a red circle in the picture.") == "there is a _ _ in the picture ."
    assert baselines.template("The 3 large stars are made of wood") == "the _ _ _ are made of wood"


def test_the_template_prior_takes_each_templates_commonest_train_label() -> None:
    train = [("A red circle is here", "yes"), ("A blue star is here", "yes"), ("A green cross is here", "no"),
             ("The circle is made of wood", "maybe"), ("Nothing like it", "no"), ("Nothing like it", "no")]
    evaluate = [("A purple square is here", "yes"),      # "a _ _ is here": yes 2 to 1
                ("The star is made of wood", "no"),      # "the _ is made of wood": maybe
                ("An unseen kind of sentence", "no")]    # unseen template: the train majority, "no"
    assert baselines.template_prior_accuracy(train, evaluate) == round(2 / 3, 4)


def test_a_bag_of_words_learns_sst2(shapes_dir: Path) -> None:
    def rows(split: str) -> list[tuple[tuple[str], str]]:
        with (shapes_dir / f"glue/SST-2/{split}.tsv").open(newline="") as handle:
            lines = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
        return [((sentence,), label) for sentence, label in lines]

    train, dev = rows("train"), rows("dev")
    majority = baselines.majority([y for _, y in train], [y for _, y in dev])["accuracy"]
    assert baselines.bag_of_words_accuracy(train, dev) >= majority + 0.08


def test_vqa_accuracy_follows_the_official_formula() -> None:
    answers = ["2"] * 3 + ["3"] * 7
    assert baselines.vqa_accuracy("two", answers) == 0.9  # 3 of 10 agree: (3 * 2/3 + 7 * 1) / 10
    assert baselines.vqa_accuracy("3", answers) == 1.0
    assert baselines.vqa_accuracy("4", answers) == 0.0
