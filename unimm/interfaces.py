"""The contracts between parts: what each pluggable kind provides and what the framework passes it.

These are ``Protocol`` classes: a part satisfies them by shape, never by inheritance. A part is
registered under a name (``@DATASETS.register()`` from ``unimm.registry``; the builder's own name
by default) and built from a config node ``{type: <name>, **its arguments}``: validation binds the
node to the builder's signature before the run, and the framework adds the *runtime arguments*
below, which the config never sets (``unimm_registry NAME`` lists both kinds for any part).

Each kind, where its node sits in the config, the runtime arguments its builder receives (each
only when the builder accepts it) and the Protocol below that the built part satisfies:

* ``datasets`` (``datasets.<name>``): ``name`` (the config key), ``split`` (``train``;
  ``evaluation.split``, default ``val``; ``test``) -> ``Dataset``, optionally
  ``FormatsPredictions`` and ``DrawsPredictions``;
* ``models`` (``model``): ``dataset_info`` = ``{<dataset>: {"task_type": ..., **dataset.info()}}``
  -> ``Model``;
* ``heads``, ``encoders``, ``decoders``, ``fusions``, ``losses`` (inside a model node, declared in
  the model's ``parts=``): what the parent model passes (sizes, counts, ``task_names``) ->
  ``Head``, ``TargetLoss``, ``QueryDecoder``, ``ImageTokenEncoder``, ``Fusion``;
* ``metrics`` (``evaluation.metrics.<dataset>[i]``): ``dataset`` (the evaluated dataset object),
  ``name`` (the dataset's config key) -> ``Metric``;
* ``optimizers`` (``optimizer``): ``params`` (the parameter groups) -> a ``torch.optim.Optimizer``;
* ``schedulers`` (``scheduler``): ``optimizer``, ``max_updates`` -> ``Scheduler``;
* ``task_samplers`` (``training.sampler``): ``dataset_sizes`` (name -> samples), ``seed`` ->
  ``TaskSampler``;
* ``step_strategies`` (``training.step_strategy``): none; each update gets a ``StepContext`` ->
  ``StepStrategy``;
* ``optimizer_hooks`` (``training.optimizer_hooks[i]``): ``model``, ``optimizer`` -> ``OptimizerHook``;
* ``callbacks`` (``training.callbacks[i]``): none -> ``Callback``;
* ``benchmarks`` (``env.benchmark``): none -> ``Benchmark``.

A builder raises ``unimm.config.ConfigError`` for a bad argument, with the key relative to its own
node (``ConfigError("must be positive", key="hidden")``); the registry reports it at the node's place
in the config. ``--dry-run`` (and every run, before its folder is touched) builds the scheduler, the
task sampler, the step strategy and the callbacks from the config alone, so their errors come first.

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
  mlm_input_ids  long ``[B, T]``             a masked copy of ``input_ids`` (MLM; METER keeps
                                             the clean caption for ITM)
  mlm_labels     long ``[B, T]``             the original id where masked, -100 elsewhere
  itm_image      as ``image``                the caption's image or another (``itm_pixel_mask``)
  itm_label      long ``[B]``                1 where ``itm_image`` is the caption's own image
  targets        list of B dicts             detection: ``labels`` long ``[N]``, ``boxes``
                                             float ``[N, 4]`` (cx, cy, w, h) in [0, 1] of the
                                             image's own (unpadded) size, ``attributes``
                                             long ``[N, K]`` (-1 padded; VG), ``image_id``,
                                             ``orig_size`` / ``size`` long ``[2]`` (h, w)
  ============== =========================== ===============================================

A model's ``forward(batch)`` returns a dict with ``"losses"``: ``{"<dataset>/<loss>": scalar}``
(summed by the trainer) and whatever outputs its metrics read (``"logits"``, ``"pred_boxes"`` ...).
Loss keys are always ``<dataset>/<loss>`` (``batch["dataset_name"]`` gives the dataset), so that
per-dataset losses, logs and gradient groups stay apart; metric results become
``<dataset>/<metric>`` (the evaluation prefixes each key ``compute`` returns).

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
    """A map-style dataset built by a ``datasets`` builder for one split.

    The builder is called once per split the run needs, with the config node's arguments and the
    runtime arguments ``name`` (the dataset's key under ``datasets:``, e.g. ``"vqa2"``) and
    ``split`` (``"train"``; ``evaluation.split``, default ``"val"``, for val, train_val and
    predict runs; ``"test"`` for test runs). Paths in its arguments are used as given: relative to
    the working directory (write ``${env.data_dir}/...`` to follow the data root). A split
    without samples is an error of the run.

    Attributes:
        name: the config key it was built under (pass the builder's ``name`` through).
        task_type: the kind of task (``"classification"``, ``"vqa"``, ``"detection"``,
            ``"text_classification"``, ``"retrieval"``, ... or your own word); the model builder
            reads it in ``dataset_info``.
    """

    name: str  # the config key, passed to the builder at run time
    task_type: str

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample ``index`` as a dict of tensors and values (may run in a DataLoader worker).

        An exception here is reported as ``datasets.<name>, sample <index>`` with its message.
        """
        ...

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Samples -> one batch dict: padded tensors (the keys of the table above where they
        apply), ``"dataset_name"``: ``self.name`` and ``"task_type"``: ``self.task_type``."""
        ...

    def info(self) -> dict[str, Any]:
        """What a model needs to size itself, JSON-like values. Usual keys: ``num_classes``,
        ``labels`` (class names, for per-class metrics), ``vocab_size``, ``answer_vocab`` (VQA),
        ``categories`` (detection). The model builder receives it, with ``task_type``, as
        ``dataset_info[name]``; metrics read it from their ``dataset`` argument."""
        ...


@runtime_checkable
class TokenizedDataset(Protocol):
    """A dataset whose text ``tokenizer`` encoded (a wrapper that masks its tokens reads the special ids)."""

    tokenizer: Any  # unimm.data.tokenizers.TextTokenizer


@runtime_checkable
class FormatsPredictions(Protocol):
    """A dataset that writes predictions (``run_type=predict``) in its official result format.

    ``run_type=predict`` runs the model over ``evaluation.split`` and writes, for each dataset
    with this method, ``<save_dir>/predictions/<dataset>_<split>.json``: the rows of every rank,
    gathered, as one JSON list. Datasets without it are skipped with a warning naming them; a
    predict run where no dataset has it is an error.
    """

    def format_predictions(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One JSON-able row per prediction of the batch (e.g. COCO results, VQA answers):
        plain ``int`` / ``float`` / ``str`` / lists, no tensors (call ``.tolist()``)."""
        ...


@runtime_checkable
class WritesSubmission(Protocol):
    """A dataset whose benchmark server (or official evaluation script) reads another file than the
    JSON rows: GLUE's ``<Task>.tsv``, NLVR2's CSV, VQA's ``vqa_OpenEnded_mscoco_<split>_<name>_results.json``.

    ``run_type=predict`` calls it on the main process after writing the JSON rows, with the rows of
    every rank, and lists the files written. Write each file whole or not at all
    (``unimm.utils.fileio.atomic_write_text``).
    """

    def write_submission(self, rows: Sequence[dict[str, Any]], folder: Path, split: str) -> list[Path]:
        """Write the official submission file(s) of ``rows`` under ``folder``; return their paths."""
        ...


@runtime_checkable
class ListsImages(Protocol):
    """A dataset that can list the picture files it reads, for ``unimm_data check``.

    A dataset may also define ``has_labels`` (a bool attribute or property: False on a test split
    without answers; ``run_type=val/test`` then refuse to compute metrics and point to predict) and
    ``label_counts() -> dict[str, int]`` (examples per label name, for the check's label report).
    """

    def image_files(self) -> list[tuple[Path, tuple[int, int] | None]]:
        """Every picture file of the split, once, with the ``(width, height)`` its annotations state
        (None where they state none)."""
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
    """Accumulates over an evaluation pass; ``compute`` returns ``{"<metric>": value}``.

    Built once per run for each entry of ``evaluation.metrics.<dataset>``, with the runtime
    arguments ``dataset`` (the evaluated dataset object: read its ``info()``) and ``name`` (the
    dataset's config key). Each pass calls ``reset()``, then ``update(batch, output)`` for every batch of
    this process's share of the split, then ``compute()``; results are logged as
    ``<dataset>/<metric>``. Register with ``outputs=`` (the keys ``compute`` returns) so that
    ``training.early_stop.metric`` and other references are checked before the run.

    Ranks: under DDP each process sees only its share of the split, and ``compute`` must return
    the value of the whole split, **the same on every rank** (``compute`` is called on every rank,
    so it may run collectives). Keep sums in ``unimm.metrics.base.Sums`` and compute from its
    ``totals()``, which adds them up over the ranks; a metric needing every sample gathers them with
    ``unimm.training.distributed.all_gather_object``. A metric that reduces nothing reports its
    own rank's value, silently.
    """

    def reset(self) -> None: ...

    def update(self, batch: Mapping[str, Any], output: Mapping[str, Any]) -> None: ...

    def compute(self) -> dict[str, float]:
        """Result name (without the dataset prefix) -> value over the whole split, equal on every rank."""
        ...


@runtime_checkable
class Model(Protocol):
    """What the trainer runs: ``model(batch)`` -> outputs with ``"losses"`` (see the module docstring).

    An ``nn.Module``. Its builder receives the runtime argument ``dataset_info``: for each dataset
    of the run (the training datasets, or the evaluated ones in val / test / predict runs),
    ``{"task_type": ..., **dataset.info()}``, to size itself (classes, vocabulary) and build one
    head per dataset. ``forward(batch)`` gets one dataset's batch (``batch["dataset_name"]``
    says which) and returns ``{"losses": {"<dataset>/<loss>": scalar tensor}, **outputs}``: losses
    only for the targets the batch holds (a predict batch may hold none), outputs for its metrics
    and ``format_predictions``. The trainer sums the losses of one forward for backward.
    """

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class AdaptsInitWeights(Protocol):
    """A model that reshapes a checkpoint's weights to its own layout before ``checkpoint.init_from``
    matches them by name and shape (a table that gained rows for a downstream task, say): the
    returned mapping is matched instead; it must say in the log what it changed."""

    def adapt_init_weights(self, weights: dict[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class Head(Protocol):
    """A task's outputs and losses from a model's states (``heads``; the common shape of unimm's heads).

    A head is built by its model (``HEADS.build_part`` with the sizes it computed: ``hidden_size``,
    ``num_classes`` ...), never straight from the config, and returns its losses under their own
    names; the model prefixes ``<dataset>/``. Its exact inputs are between it and its model.
    """

    def __call__(self, states: torch.Tensor, batch: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """``(outputs, {<loss name>: scalar})``; no losses when the batch lacks the target."""
        ...


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
    """A registered loss of logits against one batch entry (``unimm.losses.classification``).

    Losses are parts of a model, built by the head or model that uses them (a ``losses`` node in
    its arguments). A loss returns a scalar; the head reports it under its ``name`` and the model
    under ``<dataset>/<name>``, the key the trainer logs and sums (an auxiliary loss of the same
    kind is ``<dataset>/aux_<name>``). Other losses (contrastive, distillation, DETR's set
    criterion) take the inputs their model gives them and follow the same naming.
    """

    name: str  # logged as "<dataset>/<name>"
    target_key: str  # the batch entry it reads, e.g. "label"

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class TaskSampler(Protocol):
    """Names the dataset of each update; the same sequence on every rank, resumable.

    Built with the runtime arguments ``dataset_sizes`` (training dataset name -> samples, in
    config order) and ``seed`` (the run's, equal on every rank). Draw from a private
    ``torch.Generator`` seeded with it, never the global RNG, so that ranks agree without
    communicating, and put the generator in ``state_dict`` so that a resumed run continues the
    sequence. A step strategy calls ``next()`` (``sampled``: once per update).
    """

    def next(self) -> str: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class StepStrategy(Protocol):
    """How one optimizer update gathers its gradients (``step_strategies``; ``unimm.training.steps``).

    Built from its node alone; called once per update with a ``StepContext`` (the model, the
    sampler, ``next_batch(name)``, ``grad_accum_steps``, the hooks, ``autocast``, ``no_sync``), it
    runs the forward and backward passes (``ctx.forward(batch)``, ``ctx.backward(losses)``) and
    returns the update's losses ``{"<dataset>/<loss>": float}`` for logging. The trainer then runs
    the hooks, clipping, the optimizer and the scheduler. Every rank must run the same passes
    (the sampler's draw is the same on every rank).
    """

    def __call__(self, ctx: Any) -> dict[str, float]: ...


@runtime_checkable
class Scheduler(Protocol):
    """A learning-rate schedule (``schedulers``): built with the runtime arguments ``optimizer``
    and ``max_updates`` (the run's number of updates), stepped once after every update; its
    state is checkpointed. A ``torch.optim.lr_scheduler.LRScheduler`` satisfies it."""

    def step(self) -> None: ...

    def get_last_lr(self) -> list[float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Callback(Protocol):
    """An observer of a training run (``callbacks``), built from its node alone (before the run
    folder is touched, so a bad argument fails early). The trainer calls these on every rank
    (write files on the main one, ``unimm.training.distributed.is_main_process``); a callback
    may leave out the ones it does not need.
    """

    def on_log(self, update: int, losses: dict[str, float]) -> None:
        """At each log step (``training.log_every``): the losses averaged since the last one, over ranks."""
        ...

    def on_eval(self, update: int, results: dict[str, float]) -> None:
        """After each evaluation: the ``<dataset>/<metric>`` (and ``<dataset>/<loss>``) values."""
        ...

    def on_train_end(self, update: int) -> None:
        """Once, after the last update."""
        ...


@runtime_checkable
class OptimizerHook(Protocol):
    """Touches gradients or optimizer state around each optimizer step; its state is checkpointed.

    Built with the runtime arguments ``model`` and ``optimizer``. ``before_step(update)`` runs
    after the gradients of the update are complete (and unscaled) and before clipping and the
    optimizer step; ``after_step(update)`` right after the optimizer step.

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
