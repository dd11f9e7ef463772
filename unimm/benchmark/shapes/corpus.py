"""A plain-text corpus for masked language modelling and next-sentence prediction.

Each document talks about one scene of the world: a caption, then true statements and opinions
about the objects in it. Consecutive sentences share their objects, and a sentence taken from
another document usually names other ones, so next-sentence prediction has a signal to learn.
"""
from __future__ import annotations

import numpy as np

from unimm.benchmark.shapes import language, lexicon
from unimm.benchmark.shapes.world import sample_scene

OPINION_TEMPLATES = (
    "i think the {noun} looks {adjective}.",
    "the {noun} seems {adjective} to me.",
    "my friend says the {noun} is {adjective}.",
)
OPENINGS = (
    "here is a picture.",
    "i opened the {place} and found a picture.",
    "this picture hangs {prep} the {place}.",
)
ALL_TEMPLATES = OPINION_TEMPLATES + OPENINGS
SENTENCES_PER_DOCUMENT = (3, 8)


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def document(rng: np.random.Generator, image_size: int = 64) -> list[str]:
    """One document: 3 to 8 sentences about one scene, each capitalised."""
    scene = sample_scene(rng, image_size)
    while len(scene.objects) < 2:
        scene = sample_scene(rng, image_size)
    wanted = int(rng.integers(SENTENCES_PER_DOCUMENT[0], SENTENCES_PER_DOCUMENT[1] + 1))
    place = _pick(rng, lexicon.PLACES)
    sentences = [_pick(rng, OPENINGS).format(place=place, prep=lexicon.PLACE_PREPOSITIONS[place])]
    sentences.append(language.caption(scene, rng))
    while len(sentences) < wanted:
        if rng.random() < 0.25:
            obj = _pick(rng, scene.objects)
            adjective = _pick(rng, lexicon.POSITIVE_WORDS + lexicon.NEGATIVE_WORDS)
            noun = language.noun(colour=obj.colour, shape=obj.shape)
            sentences.append(_pick(rng, OPINION_TEMPLATES).format(noun=noun, adjective=adjective))
        else:
            sentences.append(language.factual_statement(scene, rng, truth=True))
    return [s[0].upper() + s[1:] for s in sentences[:wanted]]


def corpus_text(rng: np.random.Generator, documents: int, image_size: int = 64) -> str:
    """``documents`` documents, one sentence a line, separated by a blank line."""
    return "\n\n".join("\n".join(document(rng, image_size)) for _ in range(documents)) + "\n"
