"""Scene sampling, descriptions and two-picture statements on random scenes."""
from __future__ import annotations

import math

import numpy as np
import pytest

from unimm.benchmark.shapes import questions, two_images
from unimm.benchmark.shapes.world import sample_description, sample_scene


@pytest.mark.parametrize("seed", range(20))
def test_objects_stay_inside_and_apart(seed: int) -> None:
    scene = sample_scene(np.random.default_rng(seed), 64)
    for obj in scene.objects:
        x, y, w, h = obj.bbox()
        assert x >= 0 and y >= 0 and x + w <= scene.width and y + h <= scene.height
    for i, a in enumerate(scene.objects):
        for b in scene.objects[i + 1:]:
            assert math.hypot(a.cx - b.cx, a.cy - b.cy) > a.radius + b.radius


def test_descriptions_fit_or_miss_as_asked() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        scene = sample_scene(rng, 64)
        for present in (True, False):
            description = sample_description(rng, scene, present)
            if description is not None:
                assert (scene.count(**description) > 0) == present


def test_contrasting_pairs_flip_the_statement() -> None:
    rng = np.random.default_rng(1)
    flipped = 0
    for _ in range(50):
        left, right = sample_scene(rng, 64), sample_scene(rng, 64)
        statement = two_images.sample_statement(rng, left, right)
        pair = two_images.contrasting_pair(rng, statement, left, right)
        if pair is not None:
            assert statement.holds(*pair) != statement.holds(left, right)
            flipped += 1
    assert flipped >= 45


def test_annotators_mostly_agree_with_the_truth() -> None:
    rng = np.random.default_rng(2)
    asked = [q for _ in range(50) for q in questions.ask(sample_scene(rng, 64), rng, 5)]
    chosen = [questions.annotate(q, rng)[1] for q in asked]
    assert np.mean([c == q.answer for c, q in zip(chosen, asked)]) > 0.97
