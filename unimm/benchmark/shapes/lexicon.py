"""The words of the shapes world: every name, attribute and phrase the generators use.

All text the benchmark writes (captions, questions, answers, GLUE-style sentences, the corpus) is
built from these lists and from the templates in the task modules, so the WordPiece vocabulary can
be derived from them alone (see ``writers/vocab.py``) and never depends on the sampled data.
"""
from __future__ import annotations

# Shape types, in category order. COCO category ids are deliberately not contiguous (as in real
# COCO, whose 80 classes use ids 1..90), so readers must map ids to labels explicitly.
SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
COCO_CATEGORY_IDS = {"circle": 1, "square": 2, "triangle": 4, "diamond": 5, "star": 7, "cross": 9}
PLURALS = {shape: shape + ("es" if shape.endswith("s") else "s") for shape in SHAPES}
WORDNET_SYNSETS = {
    "circle": "circle.n.01",
    "square": "square.n.01",
    "triangle": "triangle.n.01",
    "diamond": "diamond.n.02",
    "star": "star.n.03",
    "cross": "cross.n.01",
}

# Object colours: name -> base RGB (saturated, so they stand out from the muted backgrounds).
COLOURS = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 90, 220),
    "yellow": (240, 210, 30),
    "purple": (148, 60, 189),
    "orange": (255, 127, 14),
}

# Object sizes: name -> (min, max) radius of the bounding circle, as a fraction of the short side.
SIZES = {"small": (0.085, 0.11), "medium": (0.135, 0.165), "large": (0.2, 0.25)}

# Background kinds and the adjective a caption uses for each.
BACKGROUNDS = {
    "plain": "plain",
    "gradient": "shaded",
    "noise": "cloudy",
    "stripes": "striped",
    "checker": "checkered",
    "dots": "dotted",
}

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

# Spatial relations between two objects, and the side of the picture an object is on.
RELATIONS = ("left of", "right of", "above", "below")
OPPOSITE_RELATION = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
SIDES = ("left", "right")

# Places that the text-only tasks talk about (the GLUE-style grammars and the corpus).
PLACES = ("box", "basket", "drawer", "table", "shelf", "window", "garden", "room")
PLACE_PREPOSITIONS = {
    "box": "in",
    "basket": "in",
    "drawer": "in",
    "table": "on",
    "shelf": "on",
    "window": "near",
    "garden": "in",
    "room": "in",
}

# Sentiment lexicon for the SST-2-like task.
POSITIVE_WORDS = (
    "lovely", "charming", "beautiful", "delightful", "elegant", "wonderful", "pleasant", "bright",
    "cheerful", "graceful", "neat", "superb",
)
NEGATIVE_WORDS = (
    "ugly", "dull", "boring", "clumsy", "awful", "dreary", "messy", "bland", "gloomy", "crooked",
    "shabby", "dreadful",
)
INTENSIFIERS = ("very", "really", "quite", "rather", "truly", "so", "extremely")
LOOK_VERBS = ("is", "looks", "seems", "feels")
PLURAL_LOOK_VERBS = {"is": "are", "looks": "look", "seems": "seem", "feels": "feel"}

# Properties a picture cannot show: they make visual-entailment hypotheses "neutral".
UNSEEN_PROPERTIES = (
    "made of wood", "made of glass", "very heavy", "warm to the touch", "brand new",
    "about to move", "a gift from a friend", "drawn by a child",
)

# Materials for the text-only question tasks (QNLI, QQP): what an object is made of.
MATERIALS = ("wood", "glass", "paper", "metal", "stone", "clay")

# Annotator answer confidences (VQAv2's three values).
CONFIDENCES = ("yes", "maybe", "no")


def plural(shape: str, count: int) -> str:
    """The shape's noun in the number ``count`` asks for ("circle", "circles")."""
    return shape if count == 1 else PLURALS[shape]


def number_word(count: int) -> str:
    """``count`` as an English word ("two"); digits above ten."""
    return NUMBER_WORDS[count] if 0 <= count < len(NUMBER_WORDS) else str(count)


def with_article(phrase: str) -> str:
    """``phrase`` with "a" or "an" in front."""
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def word_lists() -> list[str]:
    """Every word or phrase held in the lists of this module (tokenised later for the vocabulary)."""
    phrases: list[str] = []
    phrases += SHAPES + tuple(PLURALS.values()) + tuple(COLOURS) + tuple(SIZES)
    phrases += tuple(BACKGROUNDS) + tuple(BACKGROUNDS.values()) + NUMBER_WORDS
    phrases += RELATIONS + SIDES + PLACES + tuple(PLACE_PREPOSITIONS.values())
    phrases += POSITIVE_WORDS + NEGATIVE_WORDS + INTENSIFIERS + LOOK_VERBS
    phrases += tuple(PLURAL_LOOK_VERBS.values()) + UNSEEN_PROPERTIES + MATERIALS + CONFIDENCES
    phrases += tuple(str(n) for n in range(0, 21))
    phrases += ("a", "an")
    return list(phrases)
