"""The transform contract, chaining transforms, and drawing random numbers reproducibly.

A transform is called as ``transform(image, target=None, generator=None)`` and returns
``(image, target)``. Random transforms draw every number from ``generator`` (a
``torch.Generator``); with None they use torch's global generator, which a DataLoader seeds
differently in every worker and epoch. The same generator state gives the same output.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch

from unimm.data.transforms.functional import Target
from unimm.registry import PROCESSORS


class ImageTransform(Protocol):
    """One step: ``(image, target, generator) -> (image, target)``; ``random`` when it draws from the generator."""

    random: bool

    def __call__(
        self, image: Any, target: Target | None = None, generator: torch.Generator | None = None
    ) -> tuple[Any, Target | None]: ...


def random_int(low: int, high: int, generator: torch.Generator | None) -> int:
    """A uniform integer in ``[low, high]`` (both included)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def random_float(generator: torch.Generator | None, low: float = 0.0, high: float = 1.0) -> float:
    """A uniform float in ``[low, high)``."""
    return low + (high - low) * float(torch.rand((), generator=generator))


class Pipeline:
    """Apply transforms in order, threading the target and the generator through."""

    def __init__(self, steps: Sequence[ImageTransform]) -> None:
        self.steps = list(steps)
        self._split: tuple[Pipeline, Pipeline] | None = None

    @property
    def random(self) -> bool:
        return any(step.random for step in self.steps)

    def split_fixed_prefix(self) -> tuple[Pipeline, Pipeline]:
        """``(fixed, rest)``: the leading steps that draw nothing and still work on pixels, and the others.

        The output of ``fixed`` depends on the image and target alone, so a dataset may keep it
        (``unimm.data.common.read_image``); it stops before the normalisation, which turns the
        pixels into a float tensor four times their size, and is cheap to apply again.
        """
        from unimm.data.transforms.photometric import NormalizeImage

        if self._split is None:  # made once, so the fixed part is one object a cache can key on
            count = 0
            for step in self.steps:
                if step.random or isinstance(step, NormalizeImage):
                    break
                count += 1
            self._split = Pipeline(self.steps[:count]), Pipeline(self.steps[count:])
        return self._split

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        for step in self.steps:
            image, target = step(image, target, generator)
        return image, target

    def __repr__(self) -> str:
        return "Pipeline(" + ", ".join(repr(s) for s in self.steps) + ")"


class RandomSelect:
    """Apply ``first`` with probability ``prob``, otherwise ``second``."""

    random = True  # draws from the generator

    def __init__(self, first: ImageTransform, second: ImageTransform, prob: float = 0.5) -> None:
        self.first, self.second, self.prob = first, second, prob

    def __call__(self, image: Any, target: Target | None = None, generator: torch.Generator | None = None):
        chosen = self.first if random_float(generator) < self.prob else self.second
        return chosen(image, target, generator)


@PROCESSORS.register(parts={"steps": "processors"})
def image_pipeline(steps: list) -> Pipeline:
    """Chain image transforms; ``steps`` is a list of processor nodes applied in order."""
    return Pipeline(steps)


@PROCESSORS.register(parts={"first": "processors", "second": "processors"})
def random_select(first: Any, second: Any, prob: float = 0.5) -> RandomSelect:
    """Apply the ``first`` transform with probability ``prob``, else the ``second``."""
    return RandomSelect(first, second, prob)
