"""Step strategies: how one optimizer update gathers its gradients.

A step strategy is a callable ``strategy(ctx) -> {"<dataset>/<loss>": value}`` that runs
the forward and backward passes of one update; the trainer then applies optimizer hooks,
clipping, the optimizer and scheduler steps. Registered strategies:

* ``sampled``: one dataset drawn by the task sampler, ``grad_accum_steps`` batches of it
  (UniT Sec. 3.5: "at each iteration ... we randomly select a task and a dataset");
* ``accumulate``: one batch of every listed dataset, gradients summed into one update
  (MoMo Sec. 3.5, cross-modality gradient accumulation);
* ``masked_combine``: the gradients of two groups of losses computed separately and
  combined per parameter entry by a mask, ``G = M * G_a + (1 - M) * G_b`` (ViT-BERT Eq. 8,
  the mask from the ``iterative_gradient_mask`` hook, Algorithm 1).
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Mapping, Sequence

import torch
from torch import nn

from unimm.config.errors import ConfigError
from unimm.config.refs import DatasetName
from unimm.interfaces import GradientMask
from unimm.registry import STEP_STRATEGIES
from unimm.training import distributed as dist

PATH = "training.step_strategy"


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the message names the dataset and the loss."""


@dataclass
class StepContext:
    """What a step strategy may use during one update.

    Attributes:
        model: the (possibly DDP-wrapped) model; ``model(batch)["losses"]`` maps
            ``"<dataset>/<loss>"`` to scalars.
        sampler: the task sampler; ``sampler.next()`` names the dataset of this step and
            draws the same name on every rank.
        next_batch: ``next_batch(dataset_name)`` -> the next batch, already on device.
        dataset_names: every training dataset, in config order.
        grad_accum_steps: batches whose gradients add up to one update.
        hooks: the optimizer hooks (a strategy may read state from them, e.g. a mask).
        autocast: a factory of the autocast context for forward passes.
        scaler: a ``torch.amp.GradScaler`` for fp16, else None.
        no_sync: ``no_sync()`` -> a context that skips DDP's gradient all-reduce for a
            backward pass that is not the last of the update.
        step: the number of updates done before this one.
    """

    model: nn.Module
    sampler: Any
    next_batch: Callable[[str], dict[str, Any]]
    dataset_names: Sequence[str]
    grad_accum_steps: int = 1
    hooks: Sequence[Any] = ()
    autocast: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    scaler: Any = None
    no_sync: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    step: int = 0
    logged: dict[str, float] = field(default_factory=dict)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The batch's losses, checked to be finite."""
        with self.autocast():
            losses = self.model(batch)["losses"]
        check_finite(losses, batch)
        return losses

    def backward(self, losses: Mapping[str, torch.Tensor], scale: float = 1.0, retain_graph: bool = False) -> None:
        """Backward of ``scale * sum(losses)``; records the values for logging.

        ``retain_graph`` keeps the forward graph for a further backward (per-loss gradients).
        """
        total = sum(losses.values()) * scale
        for key, value in losses.items():
            self.logged[key] = self.logged.get(key, 0.0) + float(value.detach()) * scale
        (self.scaler.scale(total) if self.scaler is not None else total).backward(retain_graph=retain_graph)


def check_finite(losses: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> None:
    bad = [key for key, value in losses.items() if not torch.isfinite(value.detach()).all()]
    if bad:
        raise NonFiniteLossError(
            f"non-finite loss {', '.join(bad)} on dataset '{batch.get('dataset_name', '?')}'; "
            "lower the learning rate, enable gradient clipping (training.clip_grad_norm), "
            "or set training.on_nonfinite=skip to skip such steps"
        )


@STEP_STRATEGIES.register()
class sampled:  # noqa: N801 (registered name == builder name)
    """One dataset per update, drawn by the task sampler (UniT Sec. 3.5)."""

    def __call__(self, ctx: StepContext) -> dict[str, float]:
        name = ctx.sampler.next()
        for i in range(ctx.grad_accum_steps):
            sync = i == ctx.grad_accum_steps - 1
            with (contextlib.nullcontext() if sync else ctx.no_sync()):
                ctx.backward(ctx.forward(ctx.next_batch(name)), scale=1.0 / ctx.grad_accum_steps)
        return ctx.logged


def chosen_datasets(datasets: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """The strategy's ``datasets`` argument checked against the training datasets (None: all)."""
    if datasets is None:
        return list(available)
    unknown = [n for n in datasets if n not in available]
    if unknown or not datasets:
        raise ConfigError(f"{PATH}.datasets: {unknown or 'an empty list'} names no training dataset; "
                          f"choose among {', '.join(available)} (or leave it out for all)")
    return list(datasets)


@STEP_STRATEGIES.register()
class accumulate:  # noqa: N801 (registered name == builder name)
    """A batch of every dataset per update, gradients summed, one update (MoMo Sec. 3.5, CMGA).

    Args:
        datasets: the datasets of every update (None: all training datasets).
        weights: dataset -> loss weight (default 1 each); e.g. ViT-BERT's "Joint"
            baseline (supplementary Eq. 9) weighs image losses by 0.2 and text by 0.8.
    """

    def __init__(self, datasets: list[DatasetName] | None = None, weights: dict[DatasetName, float] | None = None,
                 ) -> None:
        self.datasets = None if datasets is None else list(datasets)
        self.weights = dict(weights or {})
        outside = [n for n in self.weights if self.datasets is not None and n not in self.datasets]
        if outside:
            raise ConfigError([(f"weights.{n}", f"'{n}' is not among this strategy's datasets {self.datasets}")
                               for n in outside])

    def __call__(self, ctx: StepContext) -> dict[str, float]:
        names = chosen_datasets(self.datasets, ctx.dataset_names)
        unknown = [n for n in self.weights if n not in names]
        if unknown:
            raise ConfigError(f"{PATH}.weights: {unknown} are not among this strategy's datasets {names}")
        micro = [name for _ in range(ctx.grad_accum_steps) for name in names]
        for i, name in enumerate(micro):
            last = i == len(micro) - 1  # DDP all-reduces the sum once, in the last backward
            with (contextlib.nullcontext() if last else ctx.no_sync()):
                scale = self.weights.get(name, 1.0) / ctx.grad_accum_steps
                ctx.backward(ctx.forward(ctx.next_batch(name)), scale=scale)
        return ctx.logged


@STEP_STRATEGIES.register()
class masked_combine:  # noqa: N801 (registered name == builder name)
    """Per-group gradients combined by a mask, ``G = M * G_a + (1 - M) * G_b`` (ViT-BERT Eq. 8).

    Every update takes one batch of each dataset (as ``accumulate``); each batch's losses
    are split by key into group a (e.g. text: MLM + NSP) and group b (e.g. image
    classification), and ``G_a = dL_a/dθ`` and ``G_b = dL_b/dθ`` are computed by separate
    backward passes. The ``iterative_gradient_mask`` hook first observes ``G_a`` (and
    prunes its mask when a round is due, Algorithm 1 line 6), then supplies ``M`` for its
    parameters; parameters it does not mask get ``G_a + G_b``. With several ranks the
    backward passes skip DDP's all-reduce and the combined gradient is averaged here.

    Args:
        group_a: regexes searched in loss keys ``<dataset>/<loss>``, the masked-in group.
        group_b: regexes for the remaining group; a key matching both is in group a.
        datasets: the datasets of every update (None: all training datasets).
    """

    def __init__(self, group_a: list[str], group_b: list[str], datasets: list[DatasetName] | None = None) -> None:
        self.group_a = compile_group(group_a, "group_a")
        self.group_b = compile_group(group_b, "group_b")
        self.datasets = None if datasets is None else list(datasets)

    def split(self, losses: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        part_a, part_b = {}, {}
        for key, value in losses.items():
            if any(r.search(key) for r in self.group_a):
                part_a[key] = value
            elif any(r.search(key) for r in self.group_b):
                part_b[key] = value
            else:
                raise ConfigError(f"{PATH}: loss '{key}' matches neither group_a nor group_b; add a regex "
                                  f"for it to {PATH}.group_a or {PATH}.group_b")
        return part_a, part_b

    def __call__(self, ctx: StepContext) -> dict[str, float]:
        mask = find_mask_hook(ctx.hooks)
        if dist.is_sharded(ctx.model):
            raise ConfigError(f"{PATH}: masked_combine needs whole gradients; use DDP, not FSDP")
        names = chosen_datasets(self.datasets, ctx.dataset_names)
        params = [p for p in ctx.model.parameters() if p.requires_grad]
        grads_a: dict[torch.Tensor, torch.Tensor] = {}
        grads_b: dict[torch.Tensor, torch.Tensor] = {}
        scale = 1.0 / ctx.grad_accum_steps
        with ctx.no_sync():  # ranks are averaged once below, after combining
            for _ in range(ctx.grad_accum_steps):
                for name in names:
                    part_a, part_b = self.split(ctx.forward(ctx.next_batch(name)))
                    if part_a:
                        ctx.backward(part_a, scale=scale, retain_graph=bool(part_b))
                        take_grads(params, grads_a)
                    if part_b:
                        ctx.backward(part_b, scale=scale)
                        take_grads(params, grads_b)
        several = dist.is_distributed()
        if several:  # every rank must reduce the same tensors, used or not
            for p in params:
                grads_a.setdefault(p, torch.zeros_like(p))
                grads_b.setdefault(p, torch.zeros_like(p))
        if several and mask.mask_update_due():  # the pruning must agree on every rank
            dist.all_reduce_grads([grads_a[p] for p in params])
        mask.observe(grads_a)
        with torch.no_grad():
            for p in params:
                g_a, g_b = grads_a.get(p), grads_b.get(p)
                if g_a is None and g_b is None:
                    continue
                m = mask.mask_for(p)
                if m is None:
                    p.grad = g_a if g_b is None else g_b if g_a is None else g_a.add_(g_b)
                else:  # Eq. 8 for a binary M; where() keeps a masked-out inf from becoming NaN
                    zeros = torch.zeros_like(p)
                    p.grad = torch.where(m, zeros if g_a is None else g_a, zeros if g_b is None else g_b)
        if several:
            dist.all_reduce_grads([p.grad for p in params])
        return ctx.logged


def compile_group(patterns: Sequence[str], key: str) -> list[re.Pattern[str]]:
    """The regexes of one group (errors keyed relative to the strategy's node)."""
    if isinstance(patterns, str) or not patterns:
        raise ConfigError("give a list of regexes over loss keys, e.g. ['/mlm$', '/nsp$']", key=key)
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern))
        except re.error as err:
            raise ConfigError(f"{pattern!r} is not a valid regex ({err})", key=f"{key}[{i}]") from None
    return compiled


def find_mask_hook(hooks: Sequence[Any]) -> GradientMask:
    for hook in hooks:
        if isinstance(hook, GradientMask):
            return hook
    raise ConfigError(f"{PATH}: masked_combine needs the mask of an iterative_gradient_mask optimizer hook; "
                      "add {type: iterative_gradient_mask, params: <regex of shared parameters>} to "
                      "training.optimizer_hooks")


def take_grads(params: Sequence[torch.Tensor], into: dict[torch.Tensor, torch.Tensor]) -> None:
    """Move each ``.grad`` into ``into`` (adding to what is there) and clear it."""
    for p in params:
        if p.grad is not None:
            if p in into:
                into[p].add_(p.grad)
            else:
                into[p] = p.grad
            p.grad = None
