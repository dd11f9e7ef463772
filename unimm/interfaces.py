"""The contracts between parts: what a dataset, a batch, a model and a metric look like.

These are ``Protocol`` classes: a part satisfies them by shape, never by inheritance.

Samples and batches are plain dicts. Every batch carries:

* ``"dataset_name"``: the config key of the dataset it came from (e.g. ``"vqa2"``);
* ``"task_type"``: what kind of task it is (``"detection"``, ``"vqa"``, ``"classification"``,
  ``"text_classification"``, ``"retrieval"``, ``"pretraining"``, ...);
* tensors: images ``[B, 3, H, W]`` with ``pixel_mask`` ``[B, H, W]`` (1 = real pixel),
  token ids ``[B, T]`` with ``attention_mask`` ``[B, T]``, labels / targets per task.

A model's ``forward(batch)`` returns a dict with ``"losses"``: ``{"<dataset>/<loss>": scalar}``
(summed by the trainer) and whatever outputs its metrics read (``"logits"``, ``"pred_boxes"`` ...).
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable


@runtime_checkable
class Dataset(Protocol):
    """A map-style dataset built by a ``datasets`` builder for one split."""

    name: str  # the config key, passed to the builder at run time
    task_type: str

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Samples -> one batch dict (padded tensors, ``dataset_name``, ``task_type``)."""
        ...

    def info(self) -> dict[str, Any]:
        """What a model needs to size itself (e.g. ``num_classes``, ``vocab_size``)."""
        ...


@runtime_checkable
class Metric(Protocol):
    """Accumulates over an evaluation pass; ``compute`` returns ``{"<metric>": value}``."""

    def reset(self) -> None: ...

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None: ...

    def compute(self) -> dict[str, float]: ...
