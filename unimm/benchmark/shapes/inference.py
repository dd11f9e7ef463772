"""Grammars for the GLUE-style inference tasks: MNLI (matched and mismatched genres) and RTE.

MNLI premises come in two families, drawn half and half. An "items" premise lists what lies at
one or two places ("two red circles and a star in the box"); a hypothesis claims that something
is there, that an exact number is there, or that none is. The premise is read as complete for
the items it names and silent about the rest, so:

- entailment: an item named at that place is there, or its exact number is right;
- contradiction: the number of a named item is wrong, or a named item is said to be absent;
- neutral: any claim about an item the premise does not name at that place (it may be named at
  the other place, so the place must be matched too).

An "attributes" premise describes one object by two of its colour, size and material; a
hypothesis restates one of them (entailment), denies one of them (contradiction: "is not red"), or
affirms or denies the third, which the premise does not give (neutral).

Every hypothesis template occurs with at least two labels, so the hypothesis alone is a weak cue,
and a bag of words cannot tell which attributes the premise gives. The attributes family needs a
model to relate a kind of word across the two sentences (the signal QNLI also has); the items
family needs exact matching of an item and its count across them, which a small transformer
trained from scratch learns only after several thousand updates (RTE has this family only).

The mismatched genres frame their premises in ways never seen in training, with the words of the
matched genres.
"""
from __future__ import annotations

import re

import numpy as np

from unimm.benchmark.shapes import lexicon
from unimm.benchmark.shapes.language import counted, join, noun

# genre -> (first clause, next clause) premise templates.
MATCHED_GENRES = {
    "inventory": ("Inventory: {items} {prep} the {place}.", "Also {items} {prep} the {place}."),
    "letters": ("Dear friend, I put {items} {prep} the {place}.", "I also put {items} {prep} the {place}."),
    "gallery": ("The painting shows {items} {prep} the {place}.", "It also shows {items} {prep} the {place}."),
}
# The mismatched genres frame their premises in ways never seen in training, from words the
# matched genres use: real MNLI's mismatched genres are new kinds of text, not new vocabulary.
MISMATCHED_GENRES = {
    "telephone": ("And I put {items} {prep} the {place}, friend.", "Also I put {items} {prep} the {place}."),
    "report": ("The inventory shows {items} {prep} the {place}.", "It shows {items} {prep} the {place} also."),
}
RTE_GENRES = {
    "news": (
        "Officials said that {items} were discovered {prep} the {place}.",
        "Police later discovered {items} {prep} the {place}.",
    ),
}
# hypothesis kind -> paraphrases. MNLI's hypotheses were written the same way for every genre,
# so matched and mismatched share them; only the premises' genres differ.
MNLI_HYPOTHESES = {
    "exists": ("There is {a_noun} {prep} the {place}.", "At least one {noun} is {prep} the {place}."),
    "count": (
        "There {be} exactly {counted} {prep} the {place}.",
        "The number of {plural} {prep} the {place} is {number}.",
    ),
    "none": ("There are no {plural} {prep} the {place}.", "Not a single {noun} is {prep} the {place}."),
}
# RTE has no "none" hypotheses: binary labels would let "no ..." give away "not_entailment".
RTE_HYPOTHESES = {
    "exists": ("{A_noun} was discovered {prep} the {place}.", "Investigators discovered {a_noun} {prep} the {place}."),
    "count": ("Exactly {counted} {was} discovered {prep} the {place}.", "The {place} held exactly {counted}."),
}
# attribute -> (affirmed, denied) hypothesis of the "attributes" family.
ATTRIBUTE_HYPOTHESES = {
    "colour": ("The {shape} {prep} the {place} is {value}.", "The {shape} {prep} the {place} is not {value}."),
    "size": ("The {shape} {prep} the {place} is {value}.", "The {shape} {prep} the {place} is not {value}."),
    "material": ("The {shape} {prep} the {place} is made of {value}.",
                 "The {shape} {prep} the {place} is not made of {value}."),
}
ATTRIBUTE_VALUES = {"colour": tuple(lexicon.COLOURS), "size": tuple(lexicon.SIZES), "material": lexicon.MATERIALS}
ATTRIBUTES_SHARE = 0.5  # of MNLI premises
# label -> the hypothesis kinds (and whether they talk about a named item) that give it.
LABEL_RECIPES = {
    "entailment": (("exists", True), ("count", True)),
    "contradiction": (("count", True), ("none", True)),
    "neutral": (("exists", False), ("count", False), ("none", False)),
}
MNLI_LABELS = ("entailment", "neutral", "contradiction")
VALIDATOR_AGREEMENT = 0.9
MAX_COUNT = 5  # counts in premises and hypotheses share one range, so no number gives the label away

ALL_TEMPLATES = (
    tuple(t for family in (MATCHED_GENRES, MISMATCHED_GENRES, RTE_GENRES) for pair in family.values() for t in pair)
    + tuple(t for family in (MNLI_HYPOTHESES, RTE_HYPOTHESES, ATTRIBUTE_HYPOTHESES)
            for forms in family.values() for t in forms)
    + ("is", "are", "was", "were")
)

_TOKEN = re.compile(r"\w+|[^\w\s]")


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def sample_premise(rng: np.random.Generator) -> dict[str, dict[tuple[str, str], int]]:
    """What lies where: ``{place: {(colour, shape): count}}`` for one or two places."""
    places = rng.choice(len(lexicon.PLACES), size=1 + int(rng.random() < 0.5), replace=False)
    contents = {}
    for index in places:
        items = {}
        for _ in range(1 + int(rng.random() < 0.6)):
            item = (_pick(rng, tuple(lexicon.COLOURS)), _pick(rng, lexicon.SHAPES))
            items[item] = int(rng.integers(1, MAX_COUNT + 1))
        contents[lexicon.PLACES[index]] = items
    return contents


def premise_text(contents: dict, genre: tuple[str, str]) -> str:
    """The premise sentence(s) in a genre's wording."""
    clauses = []
    for k, (place, items) in enumerate(contents.items()):
        listed = join([counted(n, colour=c, shape=s) for (c, s), n in items.items()])
        clauses.append(genre[min(k, 1)].format(items=listed, prep=lexicon.PLACE_PREPOSITIONS[place], place=place))
    return " ".join(clauses)


def hypothesis(
    rng: np.random.Generator, contents: dict, label: str, wording: dict[str, tuple[str, ...]], kind: str | None = None
) -> str:
    """A hypothesis with the wanted label about ``contents``, in a paraphrase from ``wording``.

    Args:
        kind: the hypothesis kind ("exists", "count", "none"); by default any kind that gives
            ``label`` and that ``wording`` has templates for.
    """
    recipes = [r for r in LABEL_RECIPES[label] if r[0] in wording and kind in (None, r[0])]
    kind, named = _pick(rng, recipes)
    place = _pick(rng, tuple(contents))
    items = contents[place]
    if named:
        colour, shape = _pick(rng, tuple(items))
        number = items[(colour, shape)]
        if kind == "count" and label == "contradiction":
            number = _pick(rng, [k for k in range(1, MAX_COUNT + 1) if k != number])
    else:
        elsewhere = [item for other, held in contents.items() if other != place for item in held if item not in items]
        if elsewhere and rng.random() < 0.5:  # named, but at the other place
            colour, shape = _pick(rng, elsewhere)
        else:
            unnamed = [(c, s) for c in lexicon.COLOURS for s in lexicon.SHAPES if (c, s) not in items]
            colour, shape = _pick(rng, unnamed)
        number = int(rng.integers(1, MAX_COUNT + 1))
    if kind == "exists" and rng.random() < 0.3 and (named or shape not in {s for _, s in items}):
        colour = None  # "there is a circle" follows from "two red circles", and is open if no circle is named
    fields = {
        "noun": noun(colour=colour, shape=shape),
        "a_noun": lexicon.with_article(noun(colour=colour, shape=shape)),
        "plural": noun(colour=colour, shape=shape, count=2),
        "counted": f"{lexicon.number_word(number)} {noun(colour=colour, shape=shape, count=number)}",
        "number": str(number) if rng.random() < 0.5 else lexicon.number_word(number),
        "be": "is" if number == 1 else "are",
        "was": "was" if number == 1 else "were",
        "prep": lexicon.PLACE_PREPOSITIONS[place],
        "place": place,
    }
    fields["A_noun"] = fields["a_noun"][0].upper() + fields["a_noun"][1:]
    text = _pick(rng, wording[kind]).format(**fields)
    return text[0].upper() + text[1:]


def binary_parse(text: str) -> str:
    """A right-branching binary bracketing of the tokens (fills MNLI's parse columns)."""
    tokens = _TOKEN.findall(text)
    tree = tokens[-1]
    for token in reversed(tokens[:-1]):
        tree = f"( {token} {tree} )"
    return tree


def constituency_parse(text: str) -> str:
    """A flat Penn-style parse of the tokens (fills MNLI's parse columns)."""
    return "(ROOT (S " + " ".join(f"(X {t})" for t in _TOKEN.findall(text)) + "))"


def validator_labels(rng: np.random.Generator, gold: str, count: int = 4) -> list[str]:
    """Labels of extra annotators who mostly agree with ``gold`` (MNLI dev's label2..label5)."""
    others = [label for label in MNLI_LABELS if label != gold]
    return [gold if rng.random() < VALIDATOR_AGREEMENT else _pick(rng, others) for _ in range(count)]


def attributes_prompt(rng: np.random.Generator, genre: tuple[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """An "attributes" premise (one object, two of its three attributes) and its three hypotheses.

    Returns:
        ``(premise, [(hypothesis, label), ...])`` with one hypothesis per label.
    """
    shape = _pick(rng, lexicon.SHAPES)
    place = _pick(rng, lexicon.PLACES)
    given = [str(a) for a in rng.choice(tuple(ATTRIBUTE_HYPOTHESES), size=2, replace=False)]
    unsaid = next(a for a in ATTRIBUTE_HYPOTHESES if a not in given)
    values = {a: _pick(rng, ATTRIBUTE_VALUES[a]) for a in given}
    described = lexicon.with_article(noun(shape=shape, colour=values.get("colour"), size=values.get("size")))
    if "material" in values:
        described += f" made of {values['material']}"
    prep = lexicon.PLACE_PREPOSITIONS[place]
    premise = genre[0].format(items=described, prep=prep, place=place)
    claims = {
        "entailment": (_pick(rng, given), False),
        "contradiction": (_pick(rng, given), True),
        "neutral": (unsaid, bool(rng.random() < 0.5)),
    }
    pairs = []
    for label in MNLI_LABELS:
        attribute, denied = claims[label]
        value = values.get(attribute) or _pick(rng, ATTRIBUTE_VALUES[attribute])
        text = ATTRIBUTE_HYPOTHESES[attribute][int(denied)].format(shape=shape, prep=prep, place=place, value=value)
        pairs.append((text, label))
    return premise, pairs


def mnli_prompt(rng: np.random.Generator, mismatched: bool) -> tuple[str, str, list[tuple[str, str]]]:
    """One premise with three hypotheses (one per label), as MNLI collected them.

    Returns:
        ``(genre, premise, [(hypothesis, label), ...])``.
    """
    genres = MISMATCHED_GENRES if mismatched else MATCHED_GENRES
    genre = _pick(rng, tuple(genres))
    if rng.random() < ATTRIBUTES_SHARE:
        return (genre, *attributes_prompt(rng, genres[genre]))
    contents = sample_premise(rng)
    pairs = [(hypothesis(rng, contents, label, MNLI_HYPOTHESES), label) for label in MNLI_LABELS]
    return genre, premise_text(contents, genres[genre]), pairs


def rte_example(rng: np.random.Generator) -> dict:
    """One RTE row: ``{"sentence1", "sentence2", "label"}`` with label entailment / not_entailment.

    The hypothesis kind is drawn first and the label independently of it, so each kind is
    entailed half of the time and the hypothesis alone says little.
    """
    contents = sample_premise(rng)
    kind = _pick(rng, tuple(RTE_HYPOTHESES))
    if rng.random() < 0.5:
        label = "entailment"
    else:  # only a count can be contradicted without "none" hypotheses
        label = "neutral" if kind == "exists" else _pick(rng, ("neutral", "contradiction"))
    return {
        "sentence1": premise_text(contents, RTE_GENRES["news"]),
        "sentence2": hypothesis(rng, contents, label, RTE_HYPOTHESES, kind),
        "label": "entailment" if label == "entailment" else "not_entailment",
    }
