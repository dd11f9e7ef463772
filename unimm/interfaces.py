"""The contracts between parts: what a dataset, a batch, a model and a metric look like.

These are ``Protocol`` classes: a part satisfies them by shape, never by inheritance.

Samples and batches are plain dicts. Every batch carries:

* ``"dataset_name"``: the config key of the dataset it came from (e.g. ``"vqa2"``);
* ``"task_type"``: what kind of task it is (``"detection"``, ``"vqa"``, ``"classification"``,
  ``"text_classification"``, ``"retrieval"``, ``"pretraining"``, ...);
* tensors, under these names (a dataset provides those its task has):

  ============== =========================== ===============================================
  key            shape / type                meaning
  ============== =========================== ===============================================
  image          float ``[B, 3, H, W]``      normalised pixels, zero-padded to the batch max
  pixel_mask     bool ``[B, H, W]``          True on real pixels, False on padding
  image2         as ``image``                the second image of a pair (NLVR2)
  input_ids      long ``[B, T]``             token ids, padded with the pad id
  attention_mask long ``[B, T]``             1 on real tokens
  token_type_ids long ``[B, T]``             segment ids (sentence A = 0, B = 1)
  label          long ``[B]``                class index (classification, entailment, GLUE)
  answer_scores  float ``[B, A]``            VQA soft scores min(#matches / 3, 1) per answer
  targets        list of B dicts             detection: ``labels`` long ``[N]``, ``boxes``
                                             float ``[N, 4]`` (cx, cy, w, h) in [0, 1] of the
                                             image's own (unpadded) size, ``attributes``
                                             long ``[N, K]`` (-1 padded; VG), ``image_id``,
                                             ``orig_size`` / ``size`` long ``[2]`` (h, w)
  ============== =========================== ===============================================

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
