"""VQAv2: questions and ten-answer annotations on the COCO pictures.

Writes ``vqa2/v2_OpenEnded_mscoco_{train2014,val2014}_questions.json`` and
``vqa2/v2_mscoco_{train2014,val2014}_annotations.json``; the pictures are the COCO ones under
their 2014 names, ``coco/{split}/COCO_{split}_<image_id:012d>.jpg``. Question ids follow
VQAv2's scheme, ``image_id * 1000 + k``.
"""
from __future__ import annotations

from unimm.benchmark.shapes import questions
from unimm.benchmark.shapes.pictures import Picture
from unimm.benchmark.shapes.writers.coco import info
from unimm.benchmark.shapes.writers.files import BenchmarkFolder, rng_for

LICENSE = {"name": "CC0 1.0 (synthetic data)", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}


def write_vqa2(folder: BenchmarkFolder, seed: int, pictures: list[Picture], per_image: int) -> tuple[dict, dict]:
    """Write the question and annotation files of train2014 and val2014.

    Returns:
        ``(counts, records)``: question counts per split, and per split a list of
        ``(question, question_type, [10 answers], multiple_choice_answer)`` for the baselines.
    """
    counts, records = {}, {}
    for split in ("train", "val"):
        subtype = f"{split}2014"
        asked, annotations, rows = [], [], []
        for picture in (p for p in pictures if p.split == split):
            rng = rng_for(seed, "vqa2", picture.image_id)
            for k, question in enumerate(questions.ask(picture.scene, rng, per_image)):
                question_id = picture.image_id * 1000 + k
                answers, chosen = questions.annotate(question, rng)
                asked.append({"image_id": picture.image_id, "question": question.text, "question_id": question_id})
                annotations.append({
                    "answer_type": question.answer_type,
                    "answers": answers,
                    "image_id": picture.image_id,
                    "multiple_choice_answer": chosen,
                    "question_id": question_id,
                    "question_type": question.question_type,
                })
                rows.append((question.text, question.question_type, [a["answer"] for a in answers], chosen))
        head = {"info": info("shapes world, VQAv2-style questions", 2017), "license": LICENSE,
                "data_subtype": subtype, "data_type": "mscoco"}
        questions_file = {**head, "task_type": "Open-Ended", "questions": asked}
        folder.write_json(f"vqa2/v2_OpenEnded_mscoco_{subtype}_questions.json", questions_file)
        folder.write_json(f"vqa2/v2_mscoco_{subtype}_annotations.json", {**head, "annotations": annotations})
        counts[subtype] = len(asked)
        records[subtype] = rows
    return counts, records
