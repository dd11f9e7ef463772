"""Statements about a pair of pictures (the NLVR2-style task), and their truth.

A statement is a small program over the two scenes (``kind``, a description, a number); its text
and its truth are both computed from it. Every statement is shown with one pair that makes it true
and one that makes it false, so the sentence alone is worth nothing; the second pair is a small
edit of the first (an object added or removed, the pictures swapped) on new backgrounds, so the
two differ where the statement looks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unimm.benchmark.shapes import lexicon
from unimm.benchmark.shapes.language import noun
from unimm.benchmark.shapes.world import Scene, place_objects, sample_background

TEMPLATES = {
    "left_count": "The left image contains exactly {number} {plural}.",
    "right_count": "The right image contains exactly {number} {plural}.",
    "both": "Both images contain {a_noun}.",
    "exactly_one": "Exactly one image contains {a_noun}.",
    "more_left": "There are more {plural} in the left image than in the right image.",
    "total": "There {be} {number} {plural} in total.",
    "each_at_least": "Each image contains at least {number} {plural}.",
}


@dataclass(frozen=True)
class Statement:
    """A statement about a pair: which template, what it counts, and the number it names."""

    kind: str
    description: tuple[tuple[str, str], ...]
    number: int

    def text(self) -> str:
        description = dict(self.description)
        counted = 2 if self.kind == "more_left" else self.number  # "more circles", "exactly one circle"
        return TEMPLATES[self.kind].format(
            number=lexicon.number_word(self.number),
            plural=noun(count=counted, **description),
            be="is" if counted == 1 else "are",
            a_noun=lexicon.with_article(noun(**description)),
        )

    def holds(self, left: Scene, right: Scene) -> bool:
        """Whether the statement is true of the pair."""
        description = dict(self.description)
        n_left, n_right = left.count(**description), right.count(**description)
        return {
            "left_count": n_left == self.number,
            "right_count": n_right == self.number,
            "both": n_left > 0 and n_right > 0,
            "exactly_one": (n_left > 0) != (n_right > 0),
            "more_left": n_left > n_right,
            "total": n_left + n_right == self.number,
            "each_at_least": min(n_left, n_right) >= self.number,
        }[self.kind]


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def sample_statement(rng: np.random.Generator, left: Scene, right: Scene) -> Statement:
    """A statement about things the pair shows, with a number near the real one."""
    objects = left.objects + right.objects
    keys = _pick(rng, (("shape",), ("colour",), ("colour", "shape"), ()))
    if objects and keys:
        obj = _pick(rng, objects)
        description = tuple((key, getattr(obj, key)) for key in keys)
    else:
        description = ()
    kind = _pick(rng, tuple(TEMPLATES))
    scene_count = {"left_count": left, "right_count": right}.get(kind)
    if scene_count is not None:
        actual = scene_count.count(**dict(description))
    elif kind == "total":
        actual = left.count(**dict(description)) + right.count(**dict(description))
    else:
        actual = 1
    number = max(1, actual + _pick(rng, (-1, 0, 0, 1)))
    return Statement(kind, description, number)


def _edited(rng: np.random.Generator, statement: Statement, scene: Scene) -> Scene:
    """``scene`` with one object removed (preferably one the statement counts) or one added."""
    description = dict(statement.description)
    if scene.objects and rng.random() < 0.45:
        counted = [k for k, o in enumerate(scene.objects) if o.matches(**description)]
        pool = counted if counted and rng.random() < 0.7 else list(range(len(scene.objects)))
        k = _pick(rng, pool)
        return Scene(scene.width, scene.height, scene.background, scene.objects[:k] + scene.objects[k + 1:])
    wanted = description if rng.random() < 0.7 else {}
    objects = place_objects(rng, scene.width, scene.height, [wanted], scene.objects)
    return Scene(scene.width, scene.height, scene.background, objects)


def contrasting_pair(
    rng: np.random.Generator, statement: Statement, left: Scene, right: Scene, tries: int = 150
) -> tuple[Scene, Scene] | None:
    """A pair for which ``statement`` has the other truth value, made by small random edits.

    Returns:
        The new pair (with fresh backgrounds), or ``None`` if ``tries`` edits did not flip it.
    """
    truth = statement.holds(left, right)
    pair = [left, right]
    for _ in range(tries):
        if rng.random() < 0.1:
            pair.reverse()
        else:
            side = int(rng.integers(2))
            pair[side] = _edited(rng, statement, pair[side])
        if statement.holds(*pair) != truth:
            return tuple(Scene(s.width, s.height, sample_background(rng), s.objects) for s in pair)
    return None
