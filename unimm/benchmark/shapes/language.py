"""Sentences about scenes: noun phrases, captions, and statements that are true or false.

Captions feed COCO captions, Karpathy retrieval and the corpus; statements feed visual entailment
(SNLI-VE) and the two-image task (NLVR2). Text is lower case with the punctuation attached, as in
the real captions; callers capitalise where the official data does.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from unimm.benchmark.shapes import lexicon
from unimm.benchmark.shapes.world import DESCRIPTION_KEYS, Scene, relations, sample_description, side, unique_description

CAPTIONS_PER_IMAGE = 5
CAPTION_TEMPLATES = (
    "{objects} on a {background} background.",
    "a {background} picture with {objects}.",
    "{there} {count} in this {background} picture.",
    "{one} on the {side} of the picture.",
    "{one} {relation} {other}.",
    "a picture of {shapes_only}.",
    "this image shows {objects}.",
)
EMPTY_CAPTION_TEMPLATES = (
    "an empty {background} background.",
    "a {background} picture with no shapes.",
    "nothing but a {background} background.",
    "there are no shapes in this {background} picture.",
    "a picture with a {background} background and no objects.",
)
STATEMENT_TEMPLATES = {
    "exists": "there is {a_desc} in the picture.",
    "count_many": "there are {count_desc}.",
    "count_one": "there is {count_desc}.",
    "count_none": "there are no {plural_desc}.",
    "colour": "the {ref} is {colour}.",
    "relation": "the {ref} is {relation} the {other}.",
    "background": "the background is {background}.",
    "unseen_the": "the {ref} is {unseen}.",
    "unseen_some": "there is {a_desc} that is {unseen}.",
    "unseen_picture": "the picture is {unseen}.",
    "no_shapes": "there are no shapes in the picture.",
}
SHAPE_KEYS = tuple(keys for keys in DESCRIPTION_KEYS if "shape" in keys)


def noun(shape: str | None = None, colour: str | None = None, size: str | None = None, count: int = 1) -> str:
    """A bare noun phrase such as "small red circle" or "blue shapes" (no article, no number)."""
    head = lexicon.plural(shape, count) if shape else ("shape" if count == 1 else "shapes")
    return " ".join(word for word in (size, colour, head) if word)


def counted(count: int, **description: str) -> str:
    """A phrase with its number: "a red circle", "two red circles", "no red circles"."""
    if count == 0:
        return "no " + noun(count=2, **description)
    if count == 1:
        return lexicon.with_article(noun(**description))
    return f"{lexicon.number_word(count)} {noun(count=count, **description)}"


def join(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def object_list(scene: Scene, with_size: bool = False) -> str:
    """All objects, grouped by identical description: "two red circles and a blue star"."""
    keys = [(o.size if with_size else None, o.colour, o.shape) for o in scene.objects]
    groups = sorted(Counter(keys).items(), key=lambda item: (-item[1], item[0][2], item[0][1], item[0][0] or ""))
    return join([counted(n, size=size, colour=colour, shape=shape) for (size, colour, shape), n in groups])


def shapes_only(scene: Scene) -> str:
    """All objects grouped by shape alone: "three circles and a star"."""
    groups = sorted(Counter(o.shape for o in scene.objects).items(), key=lambda item: (-item[1], item[0]))
    return join([counted(n, shape=shape) for shape, n in groups])


def _margin(scene: Scene) -> float:
    return 0.08 * min(scene.width, scene.height)


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """One caption of the scene from a random template (templates that do not apply are skipped)."""
    background = lexicon.BACKGROUNDS[scene.background.kind]
    if not scene.objects:
        return _pick(rng, EMPTY_CAPTION_TEMPLATES).format(background=background)
    margin = _margin(scene)
    while True:
        template = _pick(rng, CAPTION_TEMPLATES)
        obj = _pick(rng, scene.objects)
        fields = {"background": background}
        if "{objects}" in template:
            fields["objects"] = object_list(scene, with_size=bool(rng.integers(2)))
        if "{shapes_only}" in template:
            fields["shapes_only"] = shapes_only(scene)
        if "{count}" in template:
            fields["count"] = counted(len(scene.objects))
            fields["there"] = "there is" if len(scene.objects) == 1 else "there are"
        if "{one}" in template:
            fields["one"] = lexicon.with_article(noun(size=obj.size, colour=obj.colour, shape=obj.shape))
        if "{side}" in template:
            fields["side"] = side(obj, scene.width, margin)
            if fields["side"] is None:
                continue
        if "{relation}" in template:
            others = [o for o in scene.objects if o is not obj and relations(obj, o, margin)]
            if not others:
                continue
            other = _pick(rng, others)
            fields["relation"] = _pick(rng, sorted(relations(obj, other, margin)))
            fields["other"] = lexicon.with_article(noun(colour=other.colour, shape=other.shape))
        return template.format(**fields)


def captions(scene: Scene, rng: np.random.Generator, count: int = CAPTIONS_PER_IMAGE) -> list[str]:
    """``count`` captions, distinct where the templates allow, each starting with a capital letter."""
    found: list[str] = []
    for _ in range(count * 3):
        text = caption(scene, rng)
        if text not in found:
            found.append(text)
        if len(found) == count:
            break
    while len(found) < count:  # an empty or one-object scene has few distinct captions
        found.append(caption(scene, rng))
    return [text[0].upper() + text[1:] for text in found]


def factual_statement(scene: Scene, rng: np.random.Generator, truth: bool) -> str:
    """A statement about what the picture shows, true or false as asked.

    False statements are near misses of true ones (a wrong colour, count or relation), so the words
    alone do not give the label away.
    """
    margin = _margin(scene)
    for _ in range(200):
        kind = _pick(rng, ("exists", "count", "colour", "relation", "background", "exists"))
        if kind == "exists":
            description = sample_description(rng, scene, present=truth)
            if description is not None:
                return STATEMENT_TEMPLATES["exists"].format(a_desc=lexicon.with_article(noun(**description)))
            continue
        if kind == "count":
            description = sample_description(rng, scene, present=rng.random() < 0.7)
            if description is None:
                continue
            actual = scene.count(**description)
            said = actual if truth else max(0, actual + _pick(rng, (-2, -1, 1, 1, 2)))
            if said == actual and not truth:
                continue
            if said == 0:
                return STATEMENT_TEMPLATES["count_none"].format(plural_desc=noun(count=2, **description))
            template = STATEMENT_TEMPLATES["count_one" if said == 1 else "count_many"]
            return template.format(count_desc=counted(said, **description))
        if kind == "colour" and scene.objects:
            obj = _pick(rng, scene.objects)
            ref = unique_description(scene, obj, keep=("shape",))
            if ref is None or "colour" in ref:
                continue
            colour = obj.colour if truth else _pick(rng, [c for c in lexicon.COLOURS if c != obj.colour])
            return STATEMENT_TEMPLATES["colour"].format(ref=noun(**ref), colour=colour)
        if kind == "relation" and len(scene.objects) >= 2:
            a, b = (scene.objects[i] for i in rng.choice(len(scene.objects), size=2, replace=False))
            ref_a, ref_b = unique_description(scene, a), unique_description(scene, b)
            held = sorted(relations(a, b, margin))
            if ref_a is None or ref_b is None or not held:
                continue
            relation = _pick(rng, held)
            relation = relation if truth else lexicon.OPPOSITE_RELATION[relation]
            return STATEMENT_TEMPLATES["relation"].format(ref=noun(**ref_a), relation=relation, other=noun(**ref_b))
        if kind == "background":
            adjectives = list(lexicon.BACKGROUNDS.values())
            actual = lexicon.BACKGROUNDS[scene.background.kind]
            said = actual if truth else _pick(rng, [a for a in adjectives if a != actual])
            return STATEMENT_TEMPLATES["background"].format(background=said)
    raise RuntimeError("no statement could be made about the scene")  # unreachable: "background" always applies


def unseen_statement(scene: Scene, rng: np.random.Generator, about_present: bool) -> str:
    """A statement about a property no picture can show ("the red circle is made of wood").

    About an object the scene holds, the picture neither confirms nor denies it (neutral); about an
    object the scene lacks, the picture contradicts it. Both use the same templates and kinds of
    description, so only the picture tells them apart.
    """
    unseen = _pick(rng, lexicon.UNSEEN_PROPERTIES)
    if about_present and not scene.objects:
        return STATEMENT_TEMPLATES["unseen_picture"].format(unseen=unseen)
    for _ in range(50):
        description = sample_description(rng, scene, about_present, keys=_pick(rng, SHAPE_KEYS))
        if description is None:
            continue
        if rng.random() < 0.5:
            a_desc = lexicon.with_article(noun(**description))
            return STATEMENT_TEMPLATES["unseen_some"].format(a_desc=a_desc, unseen=unseen)
        if not about_present or scene.count(**description) == 1:  # "the ..." must name one object
            return STATEMENT_TEMPLATES["unseen_the"].format(ref=noun(**description), unseen=unseen)
    # every draw failed (e.g. the scene holds every kind of object): fall back to the picture itself
    return STATEMENT_TEMPLATES["unseen_picture" if about_present else "no_shapes"].format(unseen=unseen)
