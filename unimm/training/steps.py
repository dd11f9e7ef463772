"""Step strategies: how one optimizer update gathers its gradients.

A step strategy is a callable ``strategy(ctx) -> {"<dataset>/<loss>": value}`` that runs
the forward and backward passes of one update; the trainer then applies optimizer hooks,
clipping, the optimizer and scheduler steps. Registered strategies:

* ``sampled``: one dataset drawn by the task sampler, ``grad_accum_steps`` batches of it
  (UniT Sec. 3.5: "at each iteration ... we randomly select a task and a dataset").
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Mapping, Sequence

import torch
from torch import nn

from unimm.registry import STEP_STRATEGIES


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

    def backward(self, losses: Mapping[str, torch.Tensor], scale: float = 1.0) -> None:
        """Backward of ``scale * sum(losses)``; records the values for logging."""
        total = sum(losses.values()) * scale
        for key, value in losses.items():
            self.logged[key] = self.logged.get(key, 0.0) + float(value.detach()) * scale
        (self.scaler.scale(total) if self.scaler is not None else total).backward()


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
