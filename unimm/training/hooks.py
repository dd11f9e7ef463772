"""Optimizer hooks: code that runs around every ``optimizer.step()``, for any torch optimizer.

The trainer calls, for each update, after all backward passes and gradient unscaling:
``hook.before_step(step)``, then clipping and ``optimizer.step()``, then
``hook.after_step(step)``. A hook's ``state_dict`` is saved in checkpoints.

Registered builders (runtime arguments ``model`` and ``optimizer``):

* ``skip_zero_grad``: parameters without gradient this update are not touched at all
  (UniT Sec. 4.2 footnote 2 and supplementary A);
* ``iterative_gradient_mask``: the mask ``M`` of ViT-BERT Algorithm 1, read by the
  ``masked_combine`` step strategy (ViT-BERT Eq. 8); its ``scalars()`` (``ReportsScalars``)
  give the mask's sparsity per block for the run's metrics.
"""
from __future__ import annotations

import logging
import math
import re
from typing import Annotated, Any, Mapping

import torch
from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.registry import OPTIMIZER_HOOKS, current_path

logger = logging.getLogger("unimm")
HOOKS_PATH = "training.optimizer_hooks"
WRAPPER_PREFIXES = re.compile(r"(^|\.)(module|_fsdp_wrapped_module|_orig_mod)\.")
BLOCK_INDEX = re.compile(r"^((?:.*?\.)?\d+)(?=\.|$)")  # up to the first whole-number segment


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

    def skip_and_clip(self, params: list[nn.Parameter], max_norm: float) -> Tensor | None:
        """``before_step`` and ``torch.nn.utils.clip_grad_norm_(params, max_norm)`` in one pass over the
        gradients: one ``_foreach_norm`` gives each gradient's norm, which says both whether it is all
        zero (norm 0; a NaN norm is not 0, as in ``before_step``) and the total norm of those kept.

        The same numbers as the two passes, to the bit: the total is the 2-norm of the kept gradients'
        norms in torch's order (grouped by device and dtype) and the kept gradients are scaled by
        ``clip_grads_with_norm_``. One difference at the edge of the float range: a gradient whose
        entries are all so small that their squares underflow (below about 1e-23 in float32) has norm
        0 and is skipped like an all-zero one; clipping counts it as 0 either way. ``params`` must be
        the optimizer's parameters (the trainer's trainable ones); otherwise the two passes run.

        Returns:
            The total norm of the kept gradients (None when no parameter has a gradient).
        """
        if {id(p) for g in self.optimizer.param_groups for p in g["params"]} != {id(p) for p in params}:
            self.before_step(0)
            return torch.nn.utils.clip_grad_norm_(params, max_norm)
        with_grad = [p for p in params if p.grad is not None]
        self.last_skipped = 0
        if not with_grad:
            return None
        norm_of: dict[int, Tensor] = {}
        for members in group_by_device_and_dtype(with_grad).values():
            norms = torch._foreach_norm([p.grad for p in members])
            norm_of.update({id(p): n for p, n in zip(members, norms)})
            used = torch.stack(norms).ne(0).tolist()  # one device sync per group
            for param, is_used in zip(members, used):
                if not is_used:
                    param.grad = None
                    self.last_skipped += 1
        kept = [p for p in with_grad if p.grad is not None]
        if not kept:
            return None
        # the total as clip_grad_norm_ forms it over the kept gradients: their groups in first-seen order
        kept_norms = [norm_of[id(p)] for members in group_by_device_and_dtype(kept).values() for p in members]
        first = kept[0].grad.device
        total = torch.linalg.vector_norm(torch.stack([n.to(first) for n in kept_norms]), 2.0)
        torch.nn.utils.clip_grads_with_norm_(kept, max_norm, total)
        return total

    def after_step(self, step: int) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def group_by_device_and_dtype(params: list[nn.Parameter]) -> dict[tuple[Any, Any], list[nn.Parameter]]:
    """Parameters grouped by their gradient's device and dtype, groups in order of first appearance
    (the order ``torch.nn.utils.clip_grad_norm_`` sums their norms in)."""
    groups: dict[tuple[Any, Any], list[nn.Parameter]] = {}
    for param in params:
        groups.setdefault((param.grad.device, param.grad.dtype), []).append(param)
    return groups


@OPTIMIZER_HOOKS.register()
def skip_zero_grad(model: nn.Module, optimizer: torch.optim.Optimizer) -> SkipZeroGrad:
    """Leaves parameters with an absent or all-zero gradient untouched (UniT supplementary A).

    Args:
        model: the model (runtime, unused).
        optimizer: the optimizer (runtime).
    """
    return SkipZeroGrad(optimizer)


class IterativeGradientMask:
    """The binary mask ``M`` over the shared encoder's parameters of ViT-BERT Algorithm 1.

    ``M = 1`` keeps the group-a (text) gradient of an entry, ``M = 0`` gives the entry to
    group b (image): ``G = M * G_a + (1 - M) * G_b`` (Eq. 8). ``M`` starts all ones; at the
    first update and every ``every`` updates after it, a round sets ``delta`` of all selected
    entries to 0 (line 6), until a ``beta`` fraction is 0 (line 8): ``ceil(beta / delta)``
    rounds of ``round(delta * total)`` entries each, the last one capped at ``beta``.

    Which entries a round prunes (line 6, "the smallest delta of the non-zero elements of
    ``M * |G_a|``"):

    * ranking is global over all selected parameters, so blocks end up unevenly sparse (Fig. 4);
    * only entries still 1 are candidates, ranked by ``|G_a|`` of the observed update, smallest
      first; equal scores are broken by position: parameter order (``model.named_parameters()``),
      then the flat index inside the parameter;
    * an entry whose ``G_a`` is exactly 0 (or whose parameter has no group-a gradient) is a zero
      of ``M * |G_a|``, so line 6 does not rank it: the batch gave no evidence of its importance,
      and pruning is never undone. It is pruned only when fewer kept entries than the round needs
      have a non-zero ``G_a``; the round is then filled with such entries in position order and a
      warning names the parameters without any group-a gradient (a sign that ``params`` selects
      more than the shared encoder);
    * a round whose ``G_a`` holds a NaN or an infinity (e.g. an fp16 overflow the grad scaler
      will skip) prunes nothing, logs a warning, and is retried at the next update; later rounds
      keep their schedule (multiples of ``every``);
    * ``random=True`` is the paper's random-masking baseline (Fig. 2): the same rounds and the same
      number of entries per round, drawn uniformly among the entries still 1 by a private
      generator (checkpointed), whatever the gradient.

    The ``masked_combine`` step strategy calls ``observe(grads_a)`` once per update with the
    update's group-a gradients (averaged over ranks when ``mask_update_due()``), then
    ``mask_for(param)`` for each parameter. ``scalars()`` reports the masked fraction, overall
    and per block, for the run's metrics.

    Args:
        model: the unwrapped model.
        params: regex searched in parameter names selecting the shared encoder's parameters.
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
        self.pruned = {name: 0 for name in self.params}  # entries with M = 0, per parameter
        self._name_of = {id(p): name for name, p in self.params.items()}
        self.total = sum(p.numel() for p in self.params.values())
        self.observed = 0  # updates seen by observe()
        self.pending = False  # a round put off by a non-finite gradient: retried at the next update
        self._generator = torch.Generator().manual_seed(int(seed))
        self._observed_this_update = False

    @property
    def masked(self) -> int:
        """Entries with ``M = 0``."""
        return sum(self.pruned.values())

    @property
    def masked_fraction(self) -> float:
        return self.masked / self.total

    @property
    def target(self) -> int:
        """Entries with ``M = 0`` once ``beta`` is reached."""
        return round(self.beta * self.total)

    @property
    def per_round(self) -> int:
        """Entries pruned per round (at least one)."""
        return max(1, round(self.delta * self.total))

    @property
    def rounds(self) -> int:
        """Pruning rounds needed to reach ``beta``."""
        return math.ceil(self.target / self.per_round)

    @property
    def rounds_done(self) -> int:
        """Pruning rounds done so far (every round but the capped last one prunes ``per_round``)."""
        return math.ceil(self.masked / self.per_round)

    def mask_for(self, param: torch.Tensor) -> torch.Tensor | None:
        """The boolean mask (True: keep group a) of ``param``, shaped like it; None if unmasked."""
        name = self._name_of.get(id(param))
        return None if name is None else self.masks[name]

    def mask_update_due(self) -> bool:
        """True when the next ``observe`` prunes (its gradients must then agree across ranks)."""
        return (self.pending or self.observed % self.every == 0) and self.masked < self.target

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
    def prune(self, grads_a: Mapping[torch.Tensor, torch.Tensor | None]) -> int:
        """One round of Algorithm 1 line 6 (rules in the class docstring); returns the entries pruned."""
        count = min(self.per_round, self.target - self.masked)
        if count <= 0:
            return 0
        grads = [grads_a.get(p) for p in self.params.values()]
        present = [g for g in grads if g is not None]
        if present and not bool(torch.stack([torch.isfinite(g).all() for g in present]).all()):
            self.pending = True
            logger.warning("%s: the group-a gradients of update %d are not finite; the gradient mask prunes "
                           "nothing and retries at the next update", self.path, self.observed)
            return 0
        self.pending = False
        kept = [self.masks[name].reshape(-1) for name in self.params]
        if self.random:
            scores = [torch.where(k, torch.rand(k.numel(), generator=self._generator).to(k.device), math.inf)
                      for k in kept]
            chosen = smallest(scores, count)
        else:
            chosen = self.smallest_gradients(grads, kept, count)
        for name, take in zip(self.params, chosen):
            self.masks[name].view(-1)[take] = False
        for name, n in zip(self.params, torch.stack([t.sum() for t in chosen]).tolist()):
            self.pruned[name] += int(n)
        assert self.masked <= self.target
        logger.info("%s: gradient mask round %d of %d at update %d pruned %d entries; %.1f%% masked",
                    self.path, self.rounds_done, self.rounds, self.observed, count, 100 * self.masked_fraction)
        return count

    def smallest_gradients(self, grads: list[torch.Tensor | None], kept: list[torch.Tensor],
                           count: int) -> list[torch.Tensor]:
        """The ``count`` kept entries of smallest non-zero ``|G_a|``, then, if too few, zero-gradient ones."""
        magnitudes = [torch.zeros(k.numel(), device=k.device) if g is None else g.detach().abs().reshape(-1).float()
                      for g, k in zip(grads, kept)]  # [numel] each
        evidence = [k & (a != 0) for k, a in zip(kept, magnitudes)]
        with_evidence = torch.stack([e.sum() for e in evidence]).tolist()
        ranked = min(count, int(sum(with_evidence)))
        chosen = smallest([torch.where(e, a, math.inf) for e, a in zip(evidence, magnitudes)], ranked)
        if ranked == count:
            return chosen
        filler = smallest([torch.where(k & (a == 0), 0.0, math.inf) for k, a in zip(kept, magnitudes)],
                          count - ranked)  # all tie at 0: position order
        silent = [name for name, n in zip(self.params, with_evidence) if n == 0]
        logger.warning("%s: only %d kept entries have a non-zero group-a gradient, so %d entries without one were "
                       "pruned in parameter order; `params` should select the shared encoder only (no group-a "
                       "gradient at all: %s)", self.path, ranked, count - ranked,
                       ", ".join(silent[:5]) + (" ..." if len(silent) > 5 else "") if silent else "none")
        return [a | b for a, b in zip(chosen, filler)]

    def sparsity_by_parameter(self) -> dict[str, float]:
        """Parameter name -> the fraction of its entries with ``M = 0``."""
        return {name: self.pruned[name] / p.numel() for name, p in self.params.items()}

    def sparsity_by_block(self) -> dict[str, float]:
        """Block (``block_of``, e.g. ``encoder.layers.3``) -> the fraction of its entries with ``M = 0``."""
        pruned: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for name, p in self.params.items():
            block = block_of(name)
            pruned[block] = pruned.get(block, 0) + self.pruned[name]
            sizes[block] = sizes.get(block, 0) + p.numel()
        return {block: pruned[block] / sizes[block] for block in sizes}

    def scalars(self) -> dict[str, float]:
        """What the run logs: ``mask/sparsity``, ``mask/round`` and ``mask/block/<block>`` (Fig. 4)."""
        blocks = {f"mask/block/{block}": value for block, value in self.sparsity_by_block().items()}
        return {"mask/sparsity": self.masked_fraction, "mask/round": float(self.rounds_done), **blocks}

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
                "pending": self.pending, "generator": self._generator.get_state()}

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
        kept = torch.stack([m.sum() for m in self.masks.values()]).tolist()
        self.pruned = {name: m.numel() - int(k) for (name, m), k in zip(self.masks.items(), kept)}
        self.observed = int(state["observed"])
        self.pending = bool(state.get("pending", False))  # absent from checkpoints written before it
        self._generator.set_state(state["generator"])


def smallest(scores: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """Bool selections of the ``count`` smallest entries over several flat score tensors.

    Ties are broken by position: earlier tensors first, then lower indices. ``inf`` marks an
    entry that cannot be chosen; ``count`` must not exceed the finite entries.
    """
    if count <= 0:
        return [torch.zeros_like(s, dtype=torch.bool) for s in scores]
    flat = torch.cat([s.to(scores[0].device) for s in scores])  # [total]
    threshold = torch.kthvalue(flat, count).values
    chosen = flat < threshold
    ties_needed = count - int(chosen.sum())
    if ties_needed > 0:  # the first entries equal to the threshold, in position order
        chosen[(flat == threshold).nonzero().squeeze(1)[:ties_needed]] = True
    return [c.to(s.device) for c, s in zip(chosen.split([s.numel() for s in scores]), scores)]


def block_of(name: str) -> str:
    """The block of a parameter: its name up to and including the first numeric index
    (``encoder.layers.3.mlp.fc1.weight`` -> ``encoder.layers.3``), else its module
    (``encoder.final_norm.weight`` -> ``encoder.final_norm``)."""
    match = BLOCK_INDEX.match(name)
    if match:
        return match.group(1)
    return name.rsplit(".", 1)[0] if "." in name else name


@OPTIMIZER_HOOKS.register()
def iterative_gradient_mask(model: nn.Module, optimizer: torch.optim.Optimizer, params: str,
                            delta: Annotated[float, Range(gt=0, le=1)] = 0.1,
                            beta: Annotated[float, Range(ge=0, le=1)] = 0.5,
                            every: Annotated[int, Range(ge=1)] = 10000, random: bool = False,
                            seed: int = 0) -> IterativeGradientMask:
    """Iterative gradient masking of shared parameters (ViT-BERT Algorithm 1, Eq. 8).

    Defaults are the paper's (Sec. 4.2): delta 10%, beta 50%, a round every 10K updates.
    ``params`` has no default: it must select the shared transformer encoder only (Algorithm 1's
    ``theta``), never the tokenizers / embeddings or the task heads. An entry with ``M = 0`` takes
    the image gradient only, so a text-only parameter (word embeddings, the MLM head) would never
    learn again once pruned, and an image-only one (the patch projection) gets no text gradient
    to rank by, so it would stay kept and learn nothing.

    Args:
        model: the model (runtime).
        optimizer: the optimizer (runtime, unused).
        params: regex searched in parameter names selecting the shared encoder's parameters,
            e.g. ``'^encoder\\.'``.
        delta: fraction of the selected entries pruned per round.
        beta: final masked fraction.
        every: updates between rounds (``t`` in Algorithm 1).
        random: the random-masking baseline (ViT-BERT Fig. 2).
        seed: seed of the random baseline.
    """
    return IterativeGradientMask(model, params=params, delta=delta, beta=beta, every=every,
                                 random=random, seed=seed)
