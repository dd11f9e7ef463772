"""Learning-rate schedules as multipliers of each parameter group's own learning rate.

Every schedule is a ``torch.optim.lr_scheduler.LambdaLR``: at update ``s`` each group's lr
is ``initial_lr_of_the_group * f(s)``, so per-group learning rates (METER's larger lr for
the randomly initialised top layers, UniT's lower backbone lr) keep their ratios.

Warm-up is linear, ``f(s) = s / W`` for ``s < W`` (the first update runs at lr 0, as in the
schedules of the papers' code bases), given as a number of updates (``warmup_steps``, UniT:
2000) or a fraction of ``max_updates`` (``warmup_ratio``, METER: 0.1). After warm-up,
with progress ``p = (s - W) / (max_updates - W)`` clipped to ``[0, 1]``:

* ``warmup_cosine``: ``f = m + (1 - m) * (1 + cos(pi * p)) / 2``, ``m = min_lr_ratio``;
* ``warmup_linear``: ``f = e + (1 - e) * (1 - p)``, ``e = end_lr_ratio`` (0: METER's decay to 0);
* ``polynomial``: ``f = e + (1 - e) * (1 - p) ** power``;
* ``constant``: ``f = 1``.
"""
from __future__ import annotations

import math
from typing import Annotated, Callable

import torch
from torch.optim.lr_scheduler import LambdaLR

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.registry import SCHEDULERS

PATH = "scheduler"


WarmupSteps = Annotated[int, Range(ge=0)]
Fraction = Annotated[float, Range(ge=0, le=1)]  # of the run's updates, or of the peak lr


def warmup_updates(max_updates: int, warmup_steps: int | None, warmup_ratio: float | None) -> int:
    """The number of warm-up updates; exactly one of the two arguments must be given."""
    if max_updates < 1:
        raise ConfigError(f"training.max_updates: {max_updates} must be at least 1", rooted=True)
    if (warmup_steps is None) == (warmup_ratio is None):
        given = "both" if warmup_steps is not None else "neither"
        raise ConfigError(f"{given} of warmup_steps and warmup_ratio given; set exactly one (e.g. "
                          f"{PATH}.warmup_steps=2000 or {PATH}.warmup_ratio=0.1; 0 for no warm-up)",
                          key="warmup_steps")
    if warmup_ratio is not None:
        return int(round(warmup_ratio * max_updates))
    assert warmup_steps is not None
    if warmup_steps > max_updates:
        raise ConfigError(f"{warmup_steps} must lie in [0, training.max_updates={max_updates}]", key="warmup_steps")
    return int(warmup_steps)


def warmup_then(optimizer: torch.optim.Optimizer, max_updates: int, warmup: int,
                decay: Callable[[float], float]) -> LambdaLR:
    """Linear warm-up over ``warmup`` updates, then ``decay(progress in [0, 1])``."""

    def multiplier(step: int) -> float:
        if step < warmup:
            return step / warmup
        progress = min(1.0, (step - warmup) / max(1, max_updates - warmup))
        return decay(progress)

    return LambdaLR(optimizer, multiplier)


@SCHEDULERS.register()
def constant(optimizer: torch.optim.Optimizer, max_updates: int) -> LambdaLR:
    """Each group keeps its initial learning rate."""
    return LambdaLR(optimizer, lambda step: 1.0)


@SCHEDULERS.register()
def warmup_cosine(optimizer: torch.optim.Optimizer, max_updates: int, warmup_steps: WarmupSteps | None = None,
                  warmup_ratio: Fraction | None = None, min_lr_ratio: Fraction = 0.0) -> LambdaLR:
    """Linear warm-up, then half a cosine down to ``min_lr_ratio`` of the peak (UniT Sec. 3.5).

    Args:
        optimizer: the optimizer whose groups are scheduled (runtime).
        max_updates: updates of the run (runtime).
        warmup_steps: warm-up length in updates (UniT: 2000).
        warmup_ratio: warm-up length as a fraction of ``max_updates``.
        min_lr_ratio: the final multiplier.
    """
    warmup = warmup_updates(max_updates, warmup_steps, warmup_ratio)
    return warmup_then(optimizer, max_updates, warmup,
                       lambda p: min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


@SCHEDULERS.register()
def warmup_linear(optimizer: torch.optim.Optimizer, max_updates: int, warmup_steps: WarmupSteps | None = None,
                  warmup_ratio: Fraction | None = None, end_lr_ratio: Fraction = 0.0) -> LambdaLR:
    """Linear warm-up, then linear decay to ``end_lr_ratio`` of the peak (METER Sec. 3.3).

    Args:
        optimizer: the optimizer whose groups are scheduled (runtime).
        max_updates: updates of the run (runtime).
        warmup_steps: warm-up length in updates.
        warmup_ratio: warm-up length as a fraction of ``max_updates`` (METER: 0.1, then decay to 0).
        end_lr_ratio: the final multiplier (0: decay to 0).
    """
    warmup = warmup_updates(max_updates, warmup_steps, warmup_ratio)
    return warmup_then(optimizer, max_updates, warmup, lambda p: end_lr_ratio + (1 - end_lr_ratio) * (1 - p))


@SCHEDULERS.register()
def polynomial(optimizer: torch.optim.Optimizer, max_updates: int, warmup_steps: WarmupSteps | None = None,
               warmup_ratio: Fraction | None = None, power: Annotated[float, Range(gt=0)] = 1.0, end_lr_ratio: Fraction = 0.0) -> LambdaLR:
    """Linear warm-up, then ``(1 - progress) ** power`` decay to ``end_lr_ratio`` of the peak.

    Args:
        optimizer: the optimizer whose groups are scheduled (runtime).
        max_updates: updates of the run (runtime).
        warmup_steps: warm-up length in updates.
        warmup_ratio: warm-up length as a fraction of ``max_updates``.
        power: the exponent (1 is linear decay).
        end_lr_ratio: the final multiplier.
    """
    warmup = warmup_updates(max_updates, warmup_steps, warmup_ratio)
    return warmup_then(optimizer, max_updates, warmup,
                       lambda p: end_lr_ratio + (1 - end_lr_ratio) * (1 - p) ** power)
