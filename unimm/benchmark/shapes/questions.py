"""Visual questions about scenes, and the noisy answers of ten simulated annotators.

Question kinds mirror VQAv2's three answer types: counting ("number"), existence and spatial
relations ("yes/no"), colour, shape, side and background ("other"). Yes/no questions are balanced,
so a blind model gains little from the question alone.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from unimm.benchmark.shapes import lexicon
from unimm.benchmark.shapes.language import noun
from unimm.benchmark.shapes.world import DESCRIPTION_KEYS, Scene, relations, sample_description, side, unique_description

ANNOTATORS = 10
# How often one annotator gives the right answer, per answer type (the rest pick a near miss).
ANNOTATOR_ACCURACY = {"number": 0.8, "yes/no": 0.92, "other": 0.9}
NUMBER_AS_WORD = 0.15  # right count written as a word ("two"); the official normalisation maps it back
CAPITALISED = 0.04
CONFIDENT = ("yes",) * 17 + ("maybe",) * 2 + ("no",)  # answer_confidence of a right answer
UNSURE = ("yes", "maybe", "maybe", "no")  # ... and of a wrong one
KIND_WEIGHTS = {"count": 3, "exists": 3, "colour": 2, "shape": 2, "relation": 2, "side": 1, "background": 1}

# kind -> (template, question_type, answer_type). question_type follows VQAv2's question prefixes.
QUESTION_TEMPLATES = {
    "count": ("how many {plural} are there?", "how many", "number"),
    "exists": ("is there {a_desc}?", "is there a", "yes/no"),
    "colour": ("what color is the {ref}?", "what color is the", "other"),
    "shape": ("what shape is the {ref} object?", "what shape is the", "other"),
    "relation": ("is the {ref} {relation} the {other}?", "is the", "yes/no"),
    "side": ("which side of the picture is the {ref} on?", "which", "other"),
    "background": ("what kind of background does the picture have?", "what kind of", "other"),
}


@dataclass(frozen=True)
class Question:
    """A question with its true answer.

    Attributes:
        text: the question, capitalised, ending with "?".
        answer: the true answer in normalised form ("2", "yes", "red").
        kind: a key of ``QUESTION_TEMPLATES``.
        question_type: VQAv2-style question prefix ("how many").
        answer_type: "number", "yes/no" or "other".
    """

    text: str
    answer: str
    kind: str
    question_type: str
    answer_type: str


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _count_description(rng: np.random.Generator, scene: Scene) -> dict:
    """A description to count, chosen so that every count the scene offers is about equally likely.

    Counting the objects that fit a description drawn at random would mostly give 1, a prior a
    blind model could exploit; so the answer is drawn first, then a description with that count.
    """
    by_count: dict[int, list[dict]] = {}
    candidates = [{}] + [{key: getattr(obj, key) for key in keys} for obj in scene.objects for keys in DESCRIPTION_KEYS]
    for description in candidates:
        by_count.setdefault(scene.count(**description), []).append(description)
    absent = sample_description(rng, scene, present=False)
    if absent is not None:
        by_count.setdefault(0, []).append(absent)
    answer = _pick(rng, sorted(by_count))
    return _pick(rng, by_count[answer])


def _fields(kind: str, scene: Scene, rng: np.random.Generator) -> tuple[dict, str] | None:
    """Template fields and the true answer for one question of ``kind``, or ``None`` if it does not apply."""
    margin = 0.08 * min(scene.width, scene.height)
    if kind == "count":
        description = _count_description(rng, scene)
        return {"plural": noun(count=2, **description)}, str(scene.count(**description))
    if kind == "exists":
        truth = bool(rng.integers(2))
        description = sample_description(rng, scene, present=truth)
        if description is None:
            return None
        return {"a_desc": lexicon.with_article(noun(**description))}, "yes" if truth else "no"
    if not scene.objects:
        return ({}, lexicon.BACKGROUNDS[scene.background.kind]) if kind == "background" else None
    obj = _pick(rng, scene.objects)
    if kind == "colour":
        ref = unique_description(scene, obj, keep=("shape",))
        return None if ref is None or "colour" in ref else ({"ref": noun(**ref)}, obj.colour)
    if kind == "shape":
        ref = unique_description(scene, obj, keep=("colour",))
        if ref is None or "shape" in ref:
            return None
        return {"ref": " ".join(ref[k] for k in ("size", "colour") if k in ref)}, obj.shape
    if kind == "relation":
        others = [o for o in scene.objects if o is not obj and relations(obj, o, margin)]
        ref = unique_description(scene, obj)
        if not others or ref is None:
            return None
        other = _pick(rng, others)
        other_ref = unique_description(scene, other)
        if other_ref is None:
            return None
        relation = _pick(rng, sorted(relations(obj, other, margin)))
        truth = bool(rng.integers(2))
        said = relation if truth else lexicon.OPPOSITE_RELATION[relation]
        return {"ref": noun(**ref), "relation": said, "other": noun(**other_ref)}, "yes" if truth else "no"
    if kind == "side":
        ref, where = unique_description(scene, obj), side(obj, scene.width, margin)
        return None if ref is None or where is None else ({"ref": noun(**ref)}, where)
    return {}, lexicon.BACKGROUNDS[scene.background.kind]


def ask(scene: Scene, rng: np.random.Generator, count: int) -> list[Question]:
    """Up to ``count`` distinct questions about ``scene`` (fewer if the scene allows fewer)."""
    kinds = tuple(KIND_WEIGHTS)
    weights = np.array([KIND_WEIGHTS[k] for k in kinds], dtype=np.float64)
    questions: dict[str, Question] = {}
    for _ in range(count * 8):
        if len(questions) == count:
            break
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        made = _fields(kind, scene, rng)
        if made is None:
            continue
        template, question_type, answer_type = QUESTION_TEMPLATES[kind]
        text = template.format(**made[0])
        text = text[0].upper() + text[1:]
        questions.setdefault(text, Question(text, made[1], kind, question_type, answer_type))
    return list(questions.values())


def _near_miss(question: Question, rng: np.random.Generator) -> str:
    """A plausible wrong answer of the same type."""
    if question.answer_type == "number":
        return str(max(0, int(question.answer) + _pick(rng, (-1, 1, 1, 2))))
    if question.answer_type == "yes/no":
        return "no" if question.answer == "yes" else "yes"
    pools = {
        "colour": tuple(lexicon.COLOURS),
        "shape": lexicon.SHAPES,
        "side": lexicon.SIDES,
        "background": tuple(lexicon.BACKGROUNDS.values()),
    }
    return _pick(rng, [a for a in pools[question.kind] if a != question.answer])


def normalise(answer: str) -> str:
    """The light normalisation that makes our answer variants comparable (case, final period, number words)."""
    text = answer.strip().lower().rstrip(".")
    return str(lexicon.NUMBER_WORDS.index(text)) if text in lexicon.NUMBER_WORDS else text


def annotate(question: Question, rng: np.random.Generator) -> tuple[list[dict], str]:
    """Ten annotator answers (VQAv2 ``answers`` entries) and the most common one.

    Returns:
        ``(answers, multiple_choice_answer)``; answers are dicts with keys ``answer``,
        ``answer_confidence`` and ``answer_id`` (1..10).
    """
    answers = []
    for answer_id in range(1, ANNOTATORS + 1):
        right = rng.random() < ANNOTATOR_ACCURACY[question.answer_type]
        text = question.answer if right else _near_miss(question, rng)
        if question.answer_type == "number" and rng.random() < NUMBER_AS_WORD:
            text = lexicon.number_word(int(text))
        if rng.random() < CAPITALISED:
            text = text.capitalize()
        confidence = _pick(rng, CONFIDENT if right else UNSURE)
        answers.append({"answer": text, "answer_confidence": confidence, "answer_id": answer_id})
    tally = Counter(normalise(a["answer"]) for a in answers)
    top = max(tally.values())
    tied = sorted(answer for answer, n in tally.items() if n == top)
    return answers, (question.answer if question.answer in tied else tied[0])


def visual_genome_answer(question: Question) -> str:
    """The answer written as Visual Genome writes it: capitalised, with a final period ("Two.")."""
    text = lexicon.number_word(int(question.answer)) if question.answer_type == "number" else question.answer
    return text.capitalize() + "."
