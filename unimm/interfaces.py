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

These Protocols are the contracts between parts: annotations use them, and a part that needs
another's ability finds it by ``isinstance`` against its Protocol, never by probing attributes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    import torch

    from unimm.models.encoded_sequence import EncodedSequence


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
class TokenizedDataset(Protocol):
    """A dataset whose text ``tokenizer`` encoded (a wrapper that masks its tokens reads the special ids)."""

    tokenizer: Any  # unimm.data.tokenizers.TextTokenizer


@runtime_checkable
class FormatsPredictions(Protocol):
    """A dataset that writes predictions (``run_type=predict``) in its official result format."""

    def format_predictions(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One JSON-able row per prediction of the batch (e.g. COCO results, VQA answers)."""
        ...


@runtime_checkable
class DrawsPredictions(Protocol):
    """A dataset that can draw its formatted predictions (detection: boxes on the first pictures)."""

    def draw_predictions(self, rows: Sequence[dict[str, Any]], path: Any) -> Any:
        """Write a picture of ``rows`` to ``path``; return the path written, or None."""
        ...


@runtime_checkable
class HasCocoGroundTruth(Protocol):
    """A detection dataset holding its ground truth as a pycocotools ``COCO`` (``coco_map`` reads it)."""

    coco: Any


@runtime_checkable
class Metric(Protocol):
    """Accumulates over an evaluation pass; ``compute`` returns ``{"<metric>": value}``."""

    def reset(self) -> None: ...

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None: ...

    def compute(self) -> dict[str, float]: ...


@runtime_checkable
class Model(Protocol):
    """What the trainer runs: ``model(batch)`` -> outputs with ``"losses"`` (see the module docstring)."""

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class QueryDecoder(Protocol):
    """A decoder with named query sets (one per dataset in UniT) over an encoded memory."""

    hidden_size: int

    def num_queries(self) -> dict[str, int]:
        """Query set name -> its number of queries."""
        ...

    def __call__(self, memory: EncodedSequence, dataset_name: str) -> torch.Tensor:
        """``[L, B, Q, D]``: the states of every layer for the dataset's queries."""
        ...


@runtime_checkable
class TargetLoss(Protocol):
    """A registered loss of logits against one batch entry (``unimm.losses.classification``)."""

    name: str  # logged as "<dataset>/<name>"
    target_key: str  # the batch entry it reads, e.g. "label"

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class TaskSampler(Protocol):
    """Names the dataset of each update; the same sequence on every rank, resumable."""

    def next(self) -> str: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class OptimizerHook(Protocol):
    """Touches gradients or optimizer state around each optimizer step; its state is checkpointed.

    A hook may also satisfy ``ReportsScalars`` (optional): its ``scalars()`` then go into the
    run's training metrics at every log step (e.g. ``iterative_gradient_mask``'s sparsity per block).
    """

    def before_step(self, step: int) -> None: ...

    def after_step(self, step: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class ReportsScalars(Protocol):
    """A part with numbers of its own for the run's training metrics (an optional ``OptimizerHook`` method)."""

    def scalars(self) -> dict[str, float]:
        """Metric key (e.g. ``"mask/sparsity"``) -> value, logged with phase ``train``; equal on every rank."""
        ...


@runtime_checkable
class GradientMask(OptimizerHook, Protocol):
    """An optimizer hook holding a mask over parameters, which ``masked_combine`` applies (ViT-BERT Eq. 8)."""

    def mask_update_due(self) -> bool:
        """Whether ``observe`` will prune this update (all ranks must then agree on the gradients)."""
        ...

    def observe(self, grads_a: Mapping[torch.Tensor, torch.Tensor | None]) -> None:
        """See the masked-in group's gradients of this update (Algorithm 1)."""
        ...

    def mask_for(self, param: torch.Tensor) -> torch.Tensor | None:
        """The bool mask of ``param`` (True: take group a's gradient), or None when unmasked."""
        ...


@runtime_checkable
class Benchmark(Protocol):
    """Data a run generates before it starts (``env.benchmark``)."""

    def prepare(self, data_dir: str) -> None:
        """Write it under ``data_dir``, or keep an identical copy already there."""
        ...


@runtime_checkable
class ImageTokenEncoder(Protocol):
    """A vision transformer handing over its token states (METER's vision encoders: CLIP-ViT, ViT, Swin)."""

    hidden_size: int
    pooling: str  # how a pooler summarises the tokens: "first" ([CLS], CLIP / ViT) or "mean" (Swin)

    def __call__(self, image: torch.Tensor, pixel_mask: torch.Tensor | None = None) -> EncodedSequence:
        """``image`` ``[B, 3, H, W]`` -> its tokens (hidden ``[B, N, D]``)."""
        ...


@runtime_checkable
class Fusion(Protocol):
    """Fuses a text and an image sequence of one width (``FUSIONS``: co-attention, merged attention)."""

    hidden_size: int

    def __call__(self, text: torch.Tensor, text_padding: torch.Tensor | None, image: torch.Tensor,
                 image_padding: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, T, D]`` and ``[B, N, D]`` (padding bool, True on padding) -> their fused states, same shapes."""
        ...
