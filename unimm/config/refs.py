"""Annotations that let validation check a builder's arguments against the rest of the config.

A builder says in its signature that an argument names a configured dataset or an evaluation
result, and validation checks every such name before anything is built, with every problem
reported at once:

    def ratios(ratios: EveryDataset[dict[DatasetName, float]], ...): ...
    def baseline_table(rows: dict[MetricKey, str], ...): ...

``DatasetName`` is a key of the config's ``datasets`` section; ``MetricKey`` is
``<dataset>/<output>``, where ``<output>`` is one of the keys that the dataset's configured
metrics return (as their registration's ``outputs`` declares); ``EveryDataset[...]`` also asks
that a mapping's keys (or a list's items) name every configured dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any


@dataclass(frozen=True)
class Ref:
    """A marker: the annotated string names a configured ``dataset`` or a ``metric`` result."""

    kind: str


@dataclass(frozen=True)
class Covers:
    """A marker: the annotated mapping's keys (or list's items) name every configured dataset."""


@dataclass(frozen=True)
class Range:
    """A marker: the annotated number lies in ``[ge, le]`` (or above ``gt``, below ``lt``)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None  # the type check reports it
        if self.ge is not None and value < self.ge:
            return f"{value!r} must be at least {self.ge:g}"
        if self.gt is not None and value <= self.gt:
            return f"{value!r} must be greater than {self.gt:g}"
        if self.le is not None and value > self.le:
            return f"{value!r} must be at most {self.le:g}"
        if self.lt is not None and value >= self.lt:
            return f"{value!r} must be less than {self.lt:g}"
        return None


DatasetName = Annotated[str, Ref("dataset")]
MetricKey = Annotated[str, Ref("metric")]


class _EveryDataset:
    """``EveryDataset[dict[DatasetName, float]]``: the mapping covers every configured dataset."""

    def __getitem__(self, annotation: Any) -> Any:
        return Annotated[annotation, Covers()]


EveryDataset = _EveryDataset()
