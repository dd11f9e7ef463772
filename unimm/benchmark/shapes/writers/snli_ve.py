"""SNLI-VE: does a Flickr30k picture entail, contradict, or leave open a sentence?

Writes ``snli_ve/snli_ve_{train,dev,test}.jsonl`` with SNLI-VE's fields and the Flickr30k
pictures ``flickr30k/flickr30k_images/<Flickr30K_ID>.jpg`` (shared with Karpathy retrieval).
Each picture gets three hypotheses, one per label, as SNLI collected them:

- entailment: a true statement about the picture;
- contradiction: a near-miss false statement, or an unseeable property of an absent object;
- neutral: an unseeable property ("made of wood") of an object the picture holds.
"""
from __future__ import annotations

from unimm.benchmark.shapes import language
from unimm.benchmark.shapes.inference import binary_parse, constituency_parse, validator_labels
from unimm.benchmark.shapes.pictures import Picture
from unimm.benchmark.shapes.writers.files import BenchmarkFolder, rng_for

LABELS = ("entailment", "neutral", "contradiction")


def flickr_captions(seed: int, picture: Picture) -> list[str]:
    """The five captions of a Flickr30k picture (SNLI-VE premises and Karpathy retrieval)."""
    return language.captions(picture.scene, rng_for(seed, "flickr-captions", picture.image_id))


def _hypothesis(scene, rng, label: str) -> str:
    if label == "entailment":
        text = language.factual_statement(scene, rng, truth=True)
    elif label == "neutral":
        text = language.unseen_statement(scene, rng, about_present=True)
    elif rng.random() < 0.5:
        text = language.factual_statement(scene, rng, truth=False)
    else:
        text = language.unseen_statement(scene, rng, about_present=False)
    return text[0].upper() + text[1:]


def write_snli_ve(folder: BenchmarkFolder, seed: int, pictures: list[Picture]) -> tuple[dict, dict]:
    """Write the pictures and the three jsonl files.

    Returns:
        ``(counts, records)``: rows per split, and per split a list of ``(sentence2, gold_label)``.
    """
    counts, records = {}, {}
    for picture in pictures:
        folder.write_picture(f"flickr30k/flickr30k_images/{picture.image_id}.jpg", picture.scene, "jpg")
    for split in ("train", "dev", "test"):
        rows = []
        for picture in (p for p in pictures if p.split == split):
            rng = rng_for(seed, "snli-ve", picture.image_id)
            captions = flickr_captions(seed, picture)
            k = int(rng.integers(len(captions)))
            for label in LABELS:
                hypothesis = _hypothesis(picture.scene, rng, label)
                annotators = [label] if split == "train" else [label] + validator_labels(rng, label)
                rows.append({
                    "Flickr30K_ID": str(picture.image_id),
                    "annotator_labels": annotators,
                    "captionID": f"{picture.image_id}.jpg#{k}",
                    "gold_label": label,
                    "pairID": f"{picture.image_id}.jpg#{k}r1{label[0]}",
                    "sentence1": captions[k],
                    "sentence1_binary_parse": binary_parse(captions[k]),
                    "sentence1_parse": constituency_parse(captions[k]),
                    "sentence2": hypothesis,
                    "sentence2_binary_parse": binary_parse(hypothesis),
                    "sentence2_parse": constituency_parse(hypothesis),
                })
        folder.write_jsonl(f"snli_ve/snli_ve_{split}.jsonl", rows)
        counts[split] = len(rows)
        records[split] = [(row["sentence2"], row["gold_label"]) for row in rows]
    return counts, records
