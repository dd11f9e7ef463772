"""Visual Genome: objects with attributes, question-answer pairs, and UniT-style split lists.

The pictures are every COCO picture plus some pictures of Visual Genome's own. Writes
``vg/image_data.json``, ``objects.json``, ``attributes.json``, ``question_answers.json``,
``train_image_ids.json`` / ``val_image_ids.json`` (val = the pictures that are in COCO val2017,
as UniT splits it) and pictures ``vg/VG_100K/<image_id>.jpg`` (the name in ``image_data.json``'s
url; COCO pictures are hard links to the COCO files).
"""
from __future__ import annotations

import math

from unimm.benchmark.shapes import lexicon, questions
from unimm.benchmark.shapes.pictures import Picture
from unimm.benchmark.shapes.writers.coco import file_name_2017
from unimm.benchmark.shapes.writers.files import BenchmarkFolder, rng_for

URL_PREFIX = "https://cs.stanford.edu/people/rak248/VG_100K/"
FIRST_OBJECT_ID = 1_000_000


def _box(obj) -> dict:
    """Visual Genome's integer box ``x, y, w, h`` covering the object."""
    x, y, w, h = obj.bbox()
    left, top = math.floor(x), math.floor(y)
    return {"x": left, "y": top, "w": math.ceil(x + w) - left, "h": math.ceil(y + h) - top}


def write_visual_genome(
    folder: BenchmarkFolder, seed: int, coco: list[Picture], own: list[Picture], qa_per_image: int
) -> dict:
    """Write every Visual Genome file; returns counts (pictures per split, objects, question-answer pairs)."""
    everything = [(p, True) for p in coco] + [(p, False) for p in own]
    order = rng_for(seed, "vg-order").permutation(len(everything))
    image_data, objects, attributes, qa_entries = [], [], [], []
    splits = {"train": [], "val": []}
    object_id, qa_id = FIRST_OBJECT_ID, 1
    for position, index in enumerate(order):
        picture, in_coco = everything[int(index)]
        vg_id = position + 1
        url = f"{URL_PREFIX}{vg_id}.jpg"
        if in_coco:
            folder.link(f"vg/VG_100K/{vg_id}.jpg", f"coco/{picture.split}2017/{file_name_2017(picture.image_id)}")
        else:
            folder.write_picture(f"vg/VG_100K/{vg_id}.jpg", picture.scene, "jpg")
        splits[picture.split].append(vg_id)
        image_data.append({
            "coco_id": picture.image_id if in_coco else None,
            "flickr_id": None,
            "height": picture.scene.height,
            "image_id": vg_id,
            "url": url,
            "width": picture.scene.width,
        })
        boxes, described = [], []
        for obj in picture.scene.objects:
            entry = {**_box(obj), "merged_object_ids": [], "names": [obj.shape],
                     "object_id": object_id, "synsets": [lexicon.WORDNET_SYNSETS[obj.shape]]}
            boxes.append(entry)
            described.append({**entry, "attributes": [obj.colour, obj.size]})
            object_id += 1
        objects.append({"image_id": vg_id, "image_url": url, "objects": boxes})
        attributes.append({"attributes": described, "image_id": vg_id})
        qas = []
        rng = rng_for(seed, "vg-qa", vg_id)
        # Visual Genome's questions are mostly "what / how many / where"; leave out yes/no ones.
        asked = [q for q in questions.ask(picture.scene, rng, 3 * qa_per_image) if q.answer_type != "yes/no"]
        for question in asked[:qa_per_image]:
            qas.append({"a_objects": [], "answer": questions.visual_genome_answer(question), "image_id": vg_id,
                        "q_objects": [], "qa_id": qa_id, "question": question.text})
            qa_id += 1
        qa_entries.append({"id": vg_id, "qas": qas})
    folder.write_json("vg/image_data.json", image_data)
    folder.write_json("vg/objects.json", objects)
    folder.write_json("vg/attributes.json", attributes)
    folder.write_json("vg/question_answers.json", qa_entries)
    for split, ids in splits.items():
        folder.write_json(f"vg/{split}_image_ids.json", sorted(ids))
    return {
        "train_images": len(splits["train"]),
        "val_images": len(splits["val"]),
        "objects": object_id - FIRST_OBJECT_ID,
        "question_answers": qa_id - 1,
    }
