"""The shapes world: objects, backgrounds and scenes, and how to sample them.

A scene is a small picture (``width x height`` pixels) holding zero or more non-overlapping
coloured shapes on a textured background. Everything here is plain data plus geometry; drawing
lives in ``render.py`` and language in ``language.py``. Sampling takes a ``numpy`` Generator, so a
scene is a pure function of its seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from unimm.benchmark.shapes import lexicon

# Object-count distribution of a general scene (index = number of objects asked for; some may not
# fit and are dropped). Empty pictures exist on purpose: COCO has images without boxes.
OBJECT_COUNT_WEIGHTS = (0.05, 0.15, 0.2, 0.2, 0.17, 0.13, 0.1)
ROTATION_DEGREES = 12.0  # small enough that a square never looks like a diamond
PLACEMENT_TRIES = 40
CIRCLE_VERTICES = 32
# Which attributes a description names; drawn before knowing whether it should fit, so the words
# of a description say nothing about whether the picture holds it.
DESCRIPTION_KEYS = (("shape",), ("colour", "shape"), ("colour", "shape"), ("colour",), ("size", "shape"))
ATTRIBUTE_VALUES = {"shape": lexicon.SHAPES, "colour": tuple(lexicon.COLOURS), "size": tuple(lexicon.SIZES)}


@dataclass(frozen=True)
class ShapeObject:
    """One coloured shape, described by its bounding circle.

    Attributes:
        shape: a name from ``lexicon.SHAPES``.
        colour: a name from ``lexicon.COLOURS``.
        size: a name from ``lexicon.SIZES``.
        cx, cy: centre in pixels (x to the right, y down).
        radius: radius of the circle that contains the whole shape, in pixels.
        rotation: rotation in degrees.
        rgb: the fill colour actually drawn (the named colour with a little jitter).
    """

    shape: str
    colour: str
    size: str
    cx: float
    cy: float
    radius: float
    rotation: float
    rgb: tuple[int, int, int]

    def polygon(self) -> list[tuple[float, float]]:
        """The outline as (x, y) pixel vertices, also used as the COCO segmentation polygon."""
        return [(self.cx + x, self.cy + y) for x, y in _unit_outline(self.shape, self.rotation, self.radius)]

    def bbox(self) -> tuple[float, float, float, float]:
        """Tight box ``(x, y, w, h)`` around the outline, as COCO writes it."""
        xs, ys = zip(*self.polygon())
        return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)

    def area(self) -> float:
        """Area of the outline polygon (shoelace formula), in square pixels."""
        points = self.polygon()
        twice = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))
        return abs(twice) / 2.0

    def matches(self, shape: str | None = None, colour: str | None = None, size: str | None = None) -> bool:
        """Whether the object fits a description; ``None`` means "any"."""
        return (shape in (None, self.shape)) and (colour in (None, self.colour)) and (size in (None, self.size))


@dataclass(frozen=True)
class Background:
    """A textured background: a pattern of two muted colours plus pixel noise.

    Attributes:
        kind: a name from ``lexicon.BACKGROUNDS``.
        colour_a, colour_b: the two RGB colours of the pattern.
        period: stripe / checker / dot spacing in pixels.
        angle: pattern direction in radians (stripes, gradient).
        noise_sigma: standard deviation of the Gaussian pixel noise added at the end.
        texture_seed: seeds the random parts of the texture (cloudy pattern, pixel noise).
    """

    kind: str
    colour_a: tuple[int, int, int]
    colour_b: tuple[int, int, int]
    period: int
    angle: float
    noise_sigma: float
    texture_seed: int


@dataclass(frozen=True)
class Scene:
    """One picture of the world."""

    width: int
    height: int
    background: Background
    objects: tuple[ShapeObject, ...] = field(default_factory=tuple)

    def count(self, shape: str | None = None, colour: str | None = None, size: str | None = None) -> int:
        """How many objects fit the description."""
        return sum(obj.matches(shape, colour, size) for obj in self.objects)


def _unit_outline(shape: str, rotation: float, radius: float) -> list[tuple[float, float]]:
    """Outline vertices of ``shape`` centred on the origin, inside a circle of ``radius``."""
    if shape == "circle":
        polar = [(1.0, 2 * math.pi * k / CIRCLE_VERTICES) for k in range(CIRCLE_VERTICES)]
    elif shape == "square":
        polar = [(1.0, math.pi / 4 + k * math.pi / 2) for k in range(4)]
    elif shape == "triangle":
        polar = [(1.0, -math.pi / 2 + k * 2 * math.pi / 3) for k in range(3)]
    elif shape == "diamond":  # narrower than tall, so it differs from a rotated square
        polar = [(1.0, -math.pi / 2), (0.68, 0.0), (1.0, math.pi / 2), (0.68, math.pi)]
    elif shape == "star":
        polar = [(1.0 if k % 2 == 0 else 0.45, -math.pi / 2 + k * math.pi / 5) for k in range(10)]
    elif shape == "cross":
        arm = 0.34
        corners = [(arm, 1.0), (arm, arm), (1.0, arm), (1.0, -arm), (arm, -arm), (arm, -1.0)]
        corners += [(-arm, -1.0), (-arm, -arm), (-1.0, -arm), (-1.0, arm), (-arm, arm), (-arm, 1.0)]
        scale = 1.0 / math.hypot(1.0, arm)
        polar = [(math.hypot(x, y) * scale, math.atan2(y, x)) for x, y in corners]
    else:
        raise ValueError(f"unknown shape {shape!r}; known shapes: {', '.join(lexicon.SHAPES)}")
    turn = math.radians(rotation)
    return [(radius * r * math.cos(a + turn), radius * r * math.sin(a + turn)) for r, a in polar]


def _muted_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A low-saturation background colour of medium brightness."""
    hue, saturation, value = rng.random(), rng.uniform(0.03, 0.25), rng.uniform(0.32, 0.78)
    return _hsv_to_rgb(hue, saturation, value)


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    sector = int(hue * 6) % 6
    fraction = hue * 6 - math.floor(hue * 6)
    p, q, t = value * (1 - saturation), value * (1 - fraction * saturation), value * (1 - (1 - fraction) * saturation)
    rgb = [(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q)][sector]
    return tuple(int(round(255 * c)) for c in rgb)


def sample_background(rng: np.random.Generator) -> Background:
    """A random background of any kind."""
    kinds = tuple(lexicon.BACKGROUNDS)
    return Background(
        kind=kinds[rng.integers(len(kinds))],
        colour_a=_muted_colour(rng),
        colour_b=_muted_colour(rng),
        period=int(rng.integers(4, 11)),
        angle=float(rng.uniform(0, math.pi)),
        noise_sigma=float(rng.uniform(0.0, 9.0)),
        texture_seed=int(rng.integers(2**31)),
    )


def _look(rng: np.random.Generator, short_side: int, shape: str | None, colour: str | None, size: str | None) -> dict:
    """Everything about an object but its position: attributes (random unless given), radius, rotation, fill."""
    shape = shape or lexicon.SHAPES[rng.integers(len(lexicon.SHAPES))]
    names = tuple(lexicon.COLOURS)
    colour = colour or names[rng.integers(len(names))]
    size = size or tuple(lexicon.SIZES)[rng.integers(len(lexicon.SIZES))]
    low, high = lexicon.SIZES[size]
    jitter = rng.integers(-18, 19, size=3).tolist()
    return {
        "shape": shape,
        "colour": colour,
        "size": size,
        "radius": float(rng.uniform(low, high)) * short_side,
        "rotation": float(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES)),
        "rgb": tuple(min(255, max(0, c + j)) for c, j in zip(lexicon.COLOURS[colour], jitter)),
    }


def place_objects(
    rng: np.random.Generator,
    width: int,
    height: int,
    wanted: list[dict],
    placed: tuple[ShapeObject, ...] = (),
) -> tuple[ShapeObject, ...]:
    """Add objects with the given attribute dicts (keys shape/colour/size, any may be missing).

    Each object's look is drawn once; then up to ``PLACEMENT_TRIES`` positions are tried, keeping
    it apart from every object already placed (bounding circles plus a small gap). An object that
    finds no free spot is dropped, so the result may hold fewer objects than asked for.

    Returns:
        ``placed`` followed by the objects that found a spot.
    """
    result = list(placed)
    for attributes in wanted:
        look = _look(rng, min(width, height), attributes.get("shape"), attributes.get("colour"), attributes.get("size"))
        r = look["radius"]
        for _ in range(PLACEMENT_TRIES):
            cx, cy = float(rng.uniform(r + 1, width - r - 1)), float(rng.uniform(r + 1, height - r - 1))
            if all(math.hypot(cx - o.cx, cy - o.cy) >= 1.05 * (r + o.radius) + 1 for o in result):
                result.append(ShapeObject(cx=cx, cy=cy, **look))
                break
    return tuple(result)


def sample_frame(rng: np.random.Generator, image_size: int) -> tuple[int, int]:
    """Picture width and height: square half the time, else a 5:4 landscape or portrait frame."""
    long_side = int(round(image_size * 1.25))
    frames = [(image_size, image_size), (long_side, image_size), (image_size, long_side)]
    return frames[int(rng.choice(3, p=[0.5, 0.25, 0.25]))]


def sample_scene(rng: np.random.Generator, image_size: int, max_objects: int = 6) -> Scene:
    """A general scene: random frame, background and 0..``max_objects`` shapes."""
    width, height = sample_frame(rng, image_size)
    weights = np.array(OBJECT_COUNT_WEIGHTS[: max_objects + 1])
    wanted = int(rng.choice(len(weights), p=weights / weights.sum()))
    background = sample_background(rng)
    return Scene(width, height, background, place_objects(rng, width, height, [{}] * wanted))


def sample_single_object_scene(rng: np.random.Generator, image_size: int, shape: str) -> Scene:
    """A square picture with one medium or large ``shape`` (the image-folder classification set)."""
    size = ("medium", "large")[rng.integers(2)]
    background = sample_background(rng)
    objects = place_objects(rng, image_size, image_size, [{"shape": shape, "size": size}])
    return Scene(image_size, image_size, background, objects)


def relations(a: ShapeObject, b: ShapeObject, margin: float) -> set[str]:
    """The relations from ``lexicon.RELATIONS`` that clearly hold from ``a`` to ``b``.

    A relation holds when the centres differ by more than ``margin`` pixels along its axis, so
    nearly aligned pairs hold neither "left of" nor "right of" (and no question is asked about them).
    """
    held = set()
    if a.cx < b.cx - margin:
        held.add("left of")
    if a.cx > b.cx + margin:
        held.add("right of")
    if a.cy < b.cy - margin:
        held.add("above")
    if a.cy > b.cy + margin:
        held.add("below")
    return held


def side(obj: ShapeObject, width: int, margin: float) -> str | None:
    """"left" or "right" half of the picture, or ``None`` when the object sits near the middle."""
    if obj.cx < width / 2 - margin:
        return "left"
    if obj.cx > width / 2 + margin:
        return "right"
    return None


def unique_description(scene: Scene, obj: ShapeObject, keep: tuple[str, ...] = ("shape",)) -> dict | None:
    """The shortest description of ``obj`` that names it alone in ``scene``.

    The description always holds the attributes in ``keep`` and adds colour, then size, as needed.

    Returns:
        A dict with some of the keys shape/colour/size, or ``None`` if even all three attributes
        fit more than one object.
    """
    for extra in ((), ("colour",), ("size", "colour"), ("size",)):
        keys = tuple(dict.fromkeys(keep + extra))
        description = {key: getattr(obj, key) for key in keys}
        if scene.count(**description) == 1:
            return description
    return None


def sample_description(
    rng: np.random.Generator, scene: Scene, present: bool, keys: tuple[str, ...] | None = None, tries: int = 20
) -> dict | None:
    """A description that fits some object of ``scene`` (``present``) or none of them.

    Absent descriptions are mostly near misses: a present object with one named attribute changed.

    Args:
        keys: the attributes to name; drawn from ``DESCRIPTION_KEYS`` when ``None``.

    Returns:
        A dict with the ``keys``, or ``None`` if ``tries`` draws found none.
    """
    keys = keys or DESCRIPTION_KEYS[int(rng.integers(len(DESCRIPTION_KEYS)))]
    for _ in range(tries):
        if scene.objects and (present or rng.random() < 0.7):
            obj = scene.objects[int(rng.integers(len(scene.objects)))]
            description = {key: getattr(obj, key) for key in keys}
            if not present:
                key = keys[int(rng.integers(len(keys)))]
                others = [v for v in ATTRIBUTE_VALUES[key] if v != description[key]]
                description[key] = others[int(rng.integers(len(others)))]
        else:
            description = {key: ATTRIBUTE_VALUES[key][int(rng.integers(len(ATTRIBUTE_VALUES[key])))] for key in keys}
        if (scene.count(**description) > 0) == present:
            return description
    return None
