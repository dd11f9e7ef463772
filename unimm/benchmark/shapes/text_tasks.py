"""Grammars for the GLUE-style single-sentence and question tasks: SST-2, QNLI and QQP.

Each task is generated from the shapes vocabulary with a signal a small text model can learn but a
bag of words cannot fully capture: negation and contrast ("but") in SST-2, matching the asked
attribute and subject in QNLI, paraphrase versus near-miss in QQP.
"""
from __future__ import annotations

import numpy as np

from unimm.benchmark.shapes import lexicon

# SST-2: clauses with a sentiment adjective, possibly negated, combined by contrast or addition.
NEGATED_VERBS = {
    "is": ("is not", "is hardly", "is never"),
    "looks": ("does not look", "hardly looks", "never looks"),
    "seems": ("does not seem", "hardly seems", "never seems"),
    "feels": ("does not feel", "hardly feels", "never feels"),
}
PLURAL_NEGATED_VERBS = {
    "is": ("are not", "are hardly", "are never"),
    "looks": ("do not look", "hardly look", "never look"),
    "seems": ("do not seem", "hardly seem", "never seem"),
    "feels": ("do not feel", "hardly feel", "never feel"),
}
# frame -> how its label follows from its clauses: "same" (the one clause, or both clauses, which
# agree), "last" (the last clause; the first has the opposite polarity), "negated" (the opposite of
# the clause).
SENTIMENT_FRAMES = {
    "{a}": "same",
    "i think {a}": "same",
    "{a} and {b}": "same",
    "{a} , but {b}": "last",
    "although {a} , {b}": "last",
    "i do not think {a}": "negated",
    "nobody would say {a}": "negated",
}
SENTIMENT_FRAME_WEIGHTS = (6, 1, 1, 1, 0.5, 0.5, 0.5)
SST2_LABEL_NOISE = 0.03  # flipped labels, like the annotators' disagreement in real SST-2
CLAUSE_NEGATION = 0.2  # clauses with "not" / "hardly" / "never"

# QNLI: a question about one attribute of a subject and a sentence that may state it.
QNLI_QUESTIONS = {
    "colour": "What color is the {shape} {prep} the {place}?",
    "size": "How big is the {shape} {prep} the {place}?",
    "count": "How many {shapes} are {prep} the {place}?",
    "material": "What is the {shape} {prep} the {place} made of?",
}
QNLI_SENTENCES = {
    "colour": "The {shape} {prep} the {place} is {colour}.",
    "size": "The {shape} {prep} the {place} is {size}.",
    "count": "There are {number} {shapes} {prep} the {place}.",
    "material": "The {shape} {prep} the {place} is made of {material}.",
}
QNLI_CONTEXT = ("", "According to the list, ", "As far as we know, ", "In the story, ")

# QQP: paraphrase templates per question frame.
QQP_TEMPLATES = {
    "colour": (
        "What color is the {shape} {prep} the {place}?",
        "Which color does the {shape} {prep} the {place} have?",
        "What is the color of the {shape} {prep} the {place}?",
    ),
    "count": (
        "How many {shapes} are {prep} the {place}?",
        "What is the number of {shapes} {prep} the {place}?",
        "How many {shapes} can be found {prep} the {place}?",
    ),
    "size": (
        "How big is the {shape} {prep} the {place}?",
        "What size is the {shape} {prep} the {place}?",
        "How large is the {shape} {prep} the {place}?",
    ),
    "place": (
        "Where is the {colour} {shape}?",
        "In which place is the {colour} {shape}?",
        "Where can I find the {colour} {shape}?",
    ),
    "material": (
        "What is the {shape} {prep} the {place} made of?",
        "Which material is the {shape} {prep} the {place} made of?",
        "What material was used for the {shape} {prep} the {place}?",
    ),
}
QQP_DUPLICATE_RATE = 0.37  # as in real QQP

ALL_TEMPLATES = (
    tuple(SENTIMENT_FRAMES)
    + tuple(v for forms in NEGATED_VERBS.values() for v in forms)
    + tuple(v for forms in PLURAL_NEGATED_VERBS.values() for v in forms)
    + tuple(QNLI_QUESTIONS.values())
    + tuple(QNLI_SENTENCES.values())
    + QNLI_CONTEXT
    + tuple(t for forms in QQP_TEMPLATES.values() for t in forms)
    + ("this", "these", "the")
)


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _sentiment_clause(rng: np.random.Generator, positive: bool) -> str:
    """One clause whose meaning is positive or negative; negation flips the adjective's polarity."""
    plural = rng.random() < 0.25
    shape = _pick(rng, lexicon.SHAPES)
    colour = _pick(rng, tuple(lexicon.COLOURS)) if rng.random() < 0.6 else None
    head = " ".join(w for w in (colour, lexicon.PLURALS[shape] if plural else shape) if w)
    subject = ("these " if plural else _pick(rng, ("the ", "this "))) + head
    verb = _pick(rng, lexicon.LOOK_VERBS)
    negated = rng.random() < CLAUSE_NEGATION
    adjective_positive = positive != negated
    adjective = _pick(rng, lexicon.POSITIVE_WORDS if adjective_positive else lexicon.NEGATIVE_WORDS)
    if negated:
        return f"{subject} {_pick(rng, (PLURAL_NEGATED_VERBS if plural else NEGATED_VERBS)[verb])} {adjective}"
    verb = lexicon.PLURAL_LOOK_VERBS[verb] if plural else verb
    intensifier = _pick(rng, lexicon.INTENSIFIERS) + " " if rng.random() < 0.4 else ""
    return f"{subject} {verb} {intensifier}{adjective}"


def sst2_example(rng: np.random.Generator) -> dict:
    """One SST-2 row: ``{"sentence", "label"}`` with label 1 positive, 0 negative.

    The label follows from the clauses as ``SENTIMENT_FRAMES`` says; a clause's polarity is its
    adjective's, flipped by "not" / "hardly" / "never". ``SST2_LABEL_NOISE`` of the labels are then
    flipped. Text is lower case with spaced punctuation, like the real SST-2 files.
    """
    positive = bool(rng.integers(2))
    weights = np.array(SENTIMENT_FRAME_WEIGHTS, dtype=np.float64)
    frame = tuple(SENTIMENT_FRAMES)[int(rng.choice(len(weights), p=weights / weights.sum()))]
    rule = SENTIMENT_FRAMES[frame]
    first = {"same": positive, "last": not positive, "negated": not positive}[rule]
    text = frame.format(a=_sentiment_clause(rng, first), b=_sentiment_clause(rng, positive))
    label = positive != (rng.random() < SST2_LABEL_NOISE)
    return {"sentence": text + " .", "label": int(label)}


def _subject(rng: np.random.Generator) -> dict:
    place = _pick(rng, lexicon.PLACES)
    return {"shape": _pick(rng, lexicon.SHAPES), "place": place, "prep": lexicon.PLACE_PREPOSITIONS[place]}


def _values(rng: np.random.Generator, subject: dict) -> dict:
    count = int(rng.integers(2, 8))
    return {
        **subject,
        "shapes": lexicon.PLURALS[subject["shape"]],
        "colour": _pick(rng, tuple(lexicon.COLOURS)),
        "size": _pick(rng, tuple(lexicon.SIZES)),
        "material": _pick(rng, lexicon.MATERIALS),
        "number": _pick(rng, (str(count), lexicon.number_word(count))),
    }


def qnli_example(rng: np.random.Generator) -> dict:
    """One QNLI row: ``{"question", "sentence", "label"}``, label "entailment" or "not_entailment".

    The sentence answers the question only if it talks about the same shape at the same place and
    states the attribute asked for. Negatives change exactly one of those three things.
    """
    asked = _pick(rng, tuple(QNLI_QUESTIONS))
    subject = _subject(rng)
    question = QNLI_QUESTIONS[asked].format(**_values(rng, subject))
    stated, said_subject = asked, dict(subject)
    entailed = bool(rng.integers(2))
    if not entailed:
        change = _pick(rng, ("shape", "place", "attribute"))
        if change == "shape":
            said_subject["shape"] = _pick(rng, [s for s in lexicon.SHAPES if s != subject["shape"]])
        elif change == "place":
            said_subject.update(_subject(rng))
            said_subject["shape"] = subject["shape"]
            while said_subject["place"] == subject["place"]:
                said_subject.update(place=_pick(rng, lexicon.PLACES))
            said_subject["prep"] = lexicon.PLACE_PREPOSITIONS[said_subject["place"]]
        else:
            stated = _pick(rng, [k for k in QNLI_SENTENCES if k != asked])
    sentence = QNLI_SENTENCES[stated].format(**_values(rng, said_subject))
    context = _pick(rng, QNLI_CONTEXT)
    sentence = context + sentence[0].lower() + sentence[1:] if context else sentence
    if rng.random() < 0.3:  # a second clause about something else, never the answer
        other = _subject(rng)
        other_kind = _pick(rng, [k for k in QNLI_SENTENCES if k != asked])
        clause = QNLI_SENTENCES[other_kind].format(**_values(rng, other))
        sentence = sentence[:-1] + ", and " + clause[0].lower() + clause[1:]
    return {"question": question, "sentence": sentence, "label": "entailment" if entailed else "not_entailment"}


def _qqp_frame(rng: np.random.Generator) -> dict:
    frame = _values(rng, _subject(rng))
    frame["kind"] = _pick(rng, tuple(QQP_TEMPLATES))
    return frame


def _qqp_text(rng: np.random.Generator, frame: dict, template: int | None = None) -> str:
    forms = QQP_TEMPLATES[frame["kind"]]
    return forms[int(rng.integers(len(forms))) if template is None else template].format(**frame)


def qqp_example(rng: np.random.Generator) -> dict:
    """One QQP row: ``{"question1", "question2", "is_duplicate"}`` (1 or 0).

    Duplicates ask the same thing in other words; most non-duplicates differ from the first
    question in a single slot (shape, place, colour or what is asked), often with the same wording.
    """
    frame = _qqp_frame(rng)
    first_template = int(rng.integers(len(QQP_TEMPLATES[frame["kind"]])))
    first = _qqp_text(rng, frame, first_template)
    if rng.random() < QQP_DUPLICATE_RATE:
        others = [t for t in range(len(QQP_TEMPLATES[frame["kind"]])) if t != first_template]
        return {"question1": first, "question2": _qqp_text(rng, frame, _pick(rng, others)), "is_duplicate": 1}
    if rng.random() < 0.25:  # an unrelated question
        second = _qqp_text(rng, _qqp_frame(rng))
        return {"question1": first, "question2": second, "is_duplicate": int(second == first)}
    changed = dict(frame)
    # the slots that the wording of this kind of question shows
    slot = _pick(rng, ("shape", "colour", "kind") if frame["kind"] == "place" else ("shape", "place", "kind"))
    while _qqp_text(rng, changed, 0) == _qqp_text(rng, frame, 0):
        if slot == "kind":
            changed["kind"] = _pick(rng, tuple(QQP_TEMPLATES))
        else:
            pools = {"shape": lexicon.SHAPES, "place": lexicon.PLACES, "colour": tuple(lexicon.COLOURS)}
            changed[slot] = _pick(rng, pools[slot])
            changed["shapes"] = lexicon.PLURALS[changed["shape"]]
            changed["prep"] = lexicon.PLACE_PREPOSITIONS[changed["place"]]
    same_wording = changed["kind"] == frame["kind"] and rng.random() < 0.6
    second = _qqp_text(rng, changed, first_template if same_wording else None)
    return {"question1": first, "question2": second, "is_duplicate": 0}
