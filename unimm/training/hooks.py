"""Optimizer hooks: code that runs around every ``optimizer.step()``, for any torch optimizer.

The trainer calls, for each update, after all backward passes and gradient unscaling:
``hook.before_step(step)``, then clipping and ``optimizer.step()``, then
``hook.after_step(step)``. A hook's ``state_dict`` is saved in checkpoints.

Registered builders (runtime arguments ``model`` and ``optimizer``):

* ``skip_zero_grad``: parameters without gradient this update are not touched at all
  (UniT Sec. 4.2 footnote 2 and supplementary A);
* ``iterative_gradient_mask``: the mask ``M`` of ViT-BERT Algorithm 1, read by the
  ``masked_combine`` step strategy (ViT-BERT Eq. 8).
"""
from __future__ import annotations

import math
import re
from typing import Annotated, Any, Mapping

import torch
from torch import nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.registry import OPTIMIZER_HOOKS, current_path

HOOKS_PATH = "training.optimizer_hooks"
WRAPPER_PREFIXES = re.compile(r"(^|\.)(module|_fsdp_wrapped_module|_orig_mod)\.")


def clean_name(name: str) -> str:
    """A parameter name without DDP / FSDP / torch.compile wrapper segments."""
    return WRAPPER_PREFIXES.sub(r"\1", name)


class SkipZeroGrad:
    """Sets all-zero gradients to None before the step, so the optimizer skips those parameters.

    UniT (supplementary A) skips the optimizer update, momentum included, of parameters
    that a step did not use (e.g. the VQA classifier in a detection step): updating them
    with zero gradients made joint training diverge. torch optimizers pass over parameters
    whose ``.grad`` is None: no weight decay, no moment update, no step count.

    Args:
        optimizer: whose parameters are checked.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.last_skipped = 0  # parameters skipped in the latest update, for logging

    def before_step(self, step: int) -> None:
        params = [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return
        # one device sync for all parameters; NaN != 0, so a NaN gradient is not skipped
        used = torch.stack([p.grad.ne(0).any() for p in params]).tolist()
        self.last_skipped = 0
        for param, is_used in zip(params, used):
            if not is_used:
                param.grad = None
                self.last_skipped += 1

    def after_step(self, step: int) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@OPTIMIZER_HOOKS.register()
def skip_zero_grad(model: nn.Module, optimizer: torch.optim.Optimizer) -> SkipZeroGrad:
    """Leaves parameters with an absent or all-zero gradient untouched (UniT supplementary A).

    Args:
        model: the model (runtime, unused).
        optimizer: the optimizer (runtime).
    """
    return SkipZeroGrad(optimizer)


class IterativeGradientMask:
    """The binary mask ``M`` over shared parameters of ViT-BERT Algorithm 1.

    ``M = 1`` keeps the group-a (text) gradient of an entry, ``M = 0`` gives the entry to
    group b (image): ``G = M * G_a + (1 - M) * G_b`` (Eq. 8). ``M`` starts all ones; at the
    first update and every ``every`` updates after it, the ``delta`` fraction (of all
    masked parameters' entries) with the smallest ``|G_a|`` among the entries still 1 is
    set to 0 (line 6), until a ``beta`` fraction is 0 (line 8): ``ceil(beta / delta)``
    pruning rounds. Entries are ranked globally over all selected parameters. With
    ``random=True`` the pruned entries are drawn at random instead (the paper's
    random-masking baseline of Fig. 2), in the same number per round.

    The ``masked_combine`` step strategy calls ``observe(grads_a)`` once per update with
    the update's group-a gradients (averaged over ranks when ``mask_update_due()``), then
    ``mask_for(param)`` for each parameter.

    Args:
        model: the unwrapped model.
        params: regex searched in parameter names selecting the shared parameters.
        delta: fraction of all selected entries pruned per round.
        beta: final fraction of entries with ``M = 0``.
        every: updates between pruning rounds (the paper's ``t``).
        random: prune random entries instead of the smallest ``|G_a|``.
        seed: seeds the random baseline's private generator.
    """

    def __init__(self, model: nn.Module, *, params: str, delta: float, beta: float, every: int,
                 random: bool, seed: int) -> None:
        self.path = current_path() or HOOKS_PATH  # for errors after the build (resume, the first step)
        try:
            pattern = re.compile(params)
        except re.error as err:
            raise ConfigError(f"{params!r} is not a valid regex ({err})", key="params") from None
        self.params = {clean_name(n): p for n, p in model.named_parameters()
                       if p.requires_grad and pattern.search(clean_name(n))}
        if not self.params:
            raise ConfigError(f"{params!r} matches no trainable parameter; give a regex of the shared "
                              "encoder's parameter names", key="params")
        self.delta, self.beta, self.every, self.random = float(delta), float(beta), int(every), bool(random)
        self.masks = {name: torch.ones_like(p, dtype=torch.bool) for name, p in self.params.items()}
        self._name_of = {id(p): name for name, p in self.params.items()}
        self.total = sum(p.numel() for p in self.params.values())
        self.masked = 0  # entries with M = 0
        self.observed = 0  # updates seen by observe()
        self._generator = torch.Generator().manual_seed(int(seed))
        self._observed_this_update = False

    @property
    def masked_fraction(self) -> float:
        return self.masked / self.total

    @property
    def rounds(self) -> int:
        """Pruning rounds needed to reach ``beta``."""
        return math.ceil(round(self.beta * self.total) / self.per_round)

    @property
    def per_round(self) -> int:
        """Entries pruned per round (at least one)."""
        return max(1, round(self.delta * self.total))

    def mask_for(self, param: torch.Tensor) -> torch.Tensor | None:
        """The boolean mask (True: keep group a) of ``param``, shaped like it; None if unmasked."""
        name = self._name_of.get(id(param))
        return None if name is None else self.masks[name]

    def mask_update_due(self) -> bool:
        """True when the next ``observe`` prunes (its gradients must then agree across ranks)."""
        return self.observed % self.every == 0 and self.masked < round(self.beta * self.total)

    def observe(self, grads_a: Mapping[torch.Tensor, torch.Tensor | None]) -> None:
        """Take this update's group-a gradients; prune the mask when a round is due (Alg. 1 l. 5-6).

        Args:
            grads_a: parameter -> ``dL_a/dparam`` (same shape) or None for no gradient.
        """
        if self.mask_update_due():
            self.prune(grads_a)
        self.observed += 1
        self._observed_this_update = True

    @torch.no_grad()
    def prune(self, grads_a: Mapping[torch.Tensor, torch.Tensor | None]) -> None:
        """Set to 0 the ``per_round`` kept entries of smallest ``M * |G_a|`` (Algorithm 1 line 6)."""
        count = min(self.per_round, round(self.beta * self.total) - self.masked)
        if count <= 0:
            return
        scores = {}  # name -> [numel] float32, +inf where already pruned
        for name, param in self.params.items():
            mask = self.masks[name].reshape(-1)
            if self.random:
                score = torch.rand(param.numel(), generator=self._generator).to(param.device)
            else:
                grad = grads_a.get(param)
                score = (grad.detach().abs().reshape(-1).float() if grad is not None
                         else torch.zeros(param.numel(), device=param.device))
            scores[name] = torch.where(mask, score, torch.full_like(score, math.inf))
        flat = torch.cat([s.to(self._device) for s in scores.values()])
        threshold = torch.kthvalue(flat, count).values
        below = {name: s < threshold for name, s in scores.items()}
        ties_left = count - int(sum(int(b.sum()) for b in below.values()))
        for name, score in scores.items():
            prune = below[name]
            if ties_left > 0:  # prune the first entries equal to the threshold, in a fixed order
                tied = score == threshold
                take = tied & (tied.cumsum(0) <= ties_left)
                ties_left -= int(take.sum())
                prune = prune | take
            self.masks[name].view(-1)[prune] = False
        self.masked = self.total - sum(int(m.sum()) for m in self.masks.values())
        assert self.masked <= round(self.beta * self.total)

    @property
    def _device(self) -> torch.device:
        return next(iter(self.params.values())).device

    def before_step(self, step: int) -> None:
        if not self._observed_this_update:
            raise ConfigError(
                f"{self.path}: iterative_gradient_mask only works with the masked_combine step strategy, "
                "which computes the per-group gradients it masks; set training.step_strategy="
                "{type: masked_combine, group_a: [...], group_b: [...]}")
        self._observed_this_update = False

    def after_step(self, step: int) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"masks": {name: m.cpu() for name, m in self.masks.items()}, "observed": self.observed,
                "generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["masks"]
        wrong = sorted(set(saved) ^ set(self.masks)) + sorted(
            n for n in set(saved) & set(self.masks) if saved[n].shape != self.masks[n].shape)
        if wrong:
            raise ConfigError(f"{self.path}: the checkpoint's gradient mask does not fit this model's "
                              f"selected parameters (e.g. {', '.join(wrong[:5])}); resume with the same "
                              "model and iterative_gradient_mask.params")
        for name, mask in saved.items():
            self.masks[name].copy_(mask)
        self.masked = self.total - sum(int(m.sum()) for m in self.masks.values())
        self.observed = int(state["observed"])
        self._generator.set_state(state["generator"])


@OPTIMIZER_HOOKS.register()
def iterative_gradient_mask(model: nn.Module, optimizer: torch.optim.Optimizer, params: str = ".*",
                            delta: Annotated[float, Range(gt=0, le=1)] = 0.1,
                            beta: Annotated[float, Range(ge=0, le=1)] = 0.5,
                            every: Annotated[int, Range(ge=1)] = 10000, random: bool = False,
                            seed: int = 0) -> IterativeGradientMask:
    """Iterative gradient masking of shared parameters (ViT-BERT Algorithm 1, Eq. 8).

    Defaults are the paper's (Sec. 4.2): delta 10%, beta 50%, a round every 10K updates.

    Args:
        model: the model (runtime).
        optimizer: the optimizer (runtime, unused).
        params: regex searched in parameter names selecting the shared encoder's parameters.
        delta: fraction of the selected entries pruned per round.
        beta: final masked fraction.
        every: updates between rounds (``t`` in Algorithm 1).
        random: the random-masking baseline (ViT-BERT Fig. 2).
        seed: seed of the random baseline.
    """
    return IterativeGradientMask(model, params=params, delta=delta, beta=beta, every=every,
                                 random=random, seed=seed)
