"""The MNLI grammar of the shapes benchmark: both premise families, labels that follow from the
premise, mismatched genres in known words, and token ids that stay put across format versions."""
from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from unimm.benchmark.shapes import inference
from unimm.benchmark.shapes.writers.text_files import FORMER_WORDS, vocabulary, world_words

ROOT = Path(__file__).resolve().parents[2]
WORDS = re.compile(r"[a-z]+")
POOLS = inference.ATTRIBUTE_VALUES


def attribute_label(premise: str, hypothesis: str) -> str:
    """Read an "attributes" pair the way the grammar defines it, from both sentences."""
    words = hypothesis.lower().rstrip(".").split()
    value = words[-1]
    attribute = next(name for name, pool in POOLS.items() if value in pool)
    said = set(WORDS.findall(premise.lower()))
    if not said & set(POOLS[attribute]):
        return "neutral"
    assert value in said, (premise, hypothesis)  # the grammar only restates or denies given values
    return "contradiction" if "not" in words else "entailment"


def test_attributes_family_labels_follow_from_both_sentences() -> None:
    rng = np.random.default_rng(0)
    templates = defaultdict(set)
    for _ in range(300):
        premise, pairs = inference.attributes_prompt(rng, inference.MATCHED_GENRES["inventory"])
        assert [label for _, label in pairs] == list(inference.MNLI_LABELS)
        for text, label in pairs:
            assert attribute_label(premise, text) == label
            templates[re.sub(r"\b(" + "|".join(sum(POOLS.values(), ())) + r")\b", "V", text)].add(label)
    # the same hypothesis wording gives different labels, so the hypothesis alone is not enough
    assert sum(len(labels) > 1 for labels in templates.values()) > len(templates) / 2


def test_mnli_prompts_mix_both_families_in_every_genre() -> None:
    rng = np.random.default_rng(1)
    families = []
    for mismatched in (False, True):
        for _ in range(400):
            genre, premise, pairs = inference.mnli_prompt(rng, mismatched)
            assert genre in (inference.MISMATCHED_GENRES if mismatched else inference.MATCHED_GENRES)
            assert sorted(label for _, label in pairs) == sorted(inference.MNLI_LABELS)
            families.append(all(re.match(r"The \w+ \w+ the \w+ is ", h) for h, _ in pairs))
    share = np.mean(families)
    assert abs(share - inference.ATTRIBUTES_SHARE) < 0.06


def test_mismatched_genres_use_only_words_of_the_matched_genres() -> None:
    rng = np.random.default_rng(2)
    seen = set()  # every word of training's (matched) premises
    for _ in range(300):
        seen.update(WORDS.findall(inference.mnli_prompt(rng, mismatched=False)[1].lower()))
    frame_words = {w for pair in inference.MISMATCHED_GENRES.values() for t in pair
                   for w in WORDS.findall(re.sub(r"\{\w+\}", " ", t.lower()))}
    assert frame_words <= seen, sorted(frame_words - seen)
    frames = {t for pair in inference.MATCHED_GENRES.values() for t in pair}
    assert not frames & {t for pair in inference.MISMATCHED_GENRES.values() for t in pair}


def test_vocabulary_keeps_its_token_ids_across_format_versions() -> None:
    tokens = vocabulary()
    assert len(tokens) == len(set(tokens)) == 347
    assert not set(FORMER_WORDS) & set(world_words())  # no longer written, still in the vocabulary
    assert set(FORMER_WORDS) <= set(tokens)
    digest = hashlib.sha256("\n".join(tokens).encode()).hexdigest()
    assert digest == "30f55882720ca85bca3f78511d12845a95b8dcb7071ad362746997ac78ea6d62", (
        "the benchmark vocabulary changed: token ids of earlier checkpoints would shift; add removed "
        "words to FORMER_WORDS instead")


def test_shapes_tokenizer_length_never_truncates_the_text_tasks(shapes_dir: Path) -> None:
    from unimm.data.tokenizers import bert_tokenizer

    config = yaml.safe_load((ROOT / "projects/unit/includes/shapes/base.yaml").read_text())
    max_length = config["vars"]["tokenizer"]["max_length"]
    tokenizer = bert_tokenizer(str(shapes_dir / "vocab"), max_length=512)
    columns = {"MNLI": ("sentence1", "sentence2"), "QNLI": ("question", "sentence"),
               "QQP": ("question1", "question2"), "SST-2": ("sentence", None)}
    longest = {}
    for task, (a, b) in columns.items():
        for path in (shapes_dir / "glue" / task).glob("*.tsv"):
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
            longest[path.name, task] = max(
                len(tokenizer.encode(r[a], r[b] if b else None)["input_ids"]) for r in rows)
    assert max(longest.values()) <= max_length, longest
    assert longest["train.tsv", "MNLI"] > 40  # the length the shapes configs used before format 2
