"""Optimizer hooks: skip_zero_grad leaves unused parameters bit-identical; the iterative gradient mask."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import unimm.training  # noqa: F401 (registers the hooks)
from unimm.config.errors import ConfigError
from unimm.registry import OPTIMIZER_HOOKS


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(3, 3)
        self.vqa = nn.Linear(3, 2)
        self.det = nn.Linear(3, 2)

    def loss(self, x: torch.Tensor, head: str) -> torch.Tensor:
        h = self.shared(x)
        out = getattr(self, head)(h).pow(2).mean()
        if head == "det":  # the VQA classifier takes part with a zero gradient, like an unused head
            out = out + 0.0 * self.vqa(h).sum()
        return out


OPTIMIZERS = {
    "adamw_foreach": lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1, foreach=True),
    "adamw_loop": lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1, foreach=False),
    "adam": lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.1),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
}


def snapshot(param: torch.Tensor, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in opt.state[param].items()}
    return {"param": param.detach().clone(), **state}


def identical(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k] for k in a)


def two_updates(make_opt, use_hook: bool):
    """Update 1 uses every head; update 2 is a detection step. Returns the model, optimizer, snapshots."""
    torch.manual_seed(0)
    model = TwoHeads()
    opt = make_opt(model.parameters())
    hooks = [OPTIMIZER_HOOKS.build("skip_zero_grad", model=model, optimizer=opt)] if use_hook else []
    x = torch.randn(4, 3)
    for step, heads in enumerate([("vqa", "det"), ("det",)]):
        for head in heads:
            model.loss(x, head).backward()
        if step == 1:
            before = {name: snapshot(p, opt) for name, p in model.named_parameters()}
        for hook in hooks:
            hook.before_step(step)
        opt.step()
        for hook in hooks:
            hook.after_step(step)
        opt.zero_grad(set_to_none=True)
    after = {name: snapshot(p, opt) for name, p in model.named_parameters()}
    return hooks, before, after


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_skip_zero_grad_leaves_unused_parameters_bit_identical(name):
    hooks, before, after = two_updates(OPTIMIZERS[name], use_hook=True)
    for key in ("vqa.weight", "vqa.bias"):  # zero gradient this update: untouched, moments and step included
        assert identical(before[key], after[key]), key
    for key in ("shared.weight", "det.weight", "det.bias"):
        assert not torch.equal(before[key]["param"], after[key]["param"]), key
    assert hooks[0].last_skipped == 2
    _, before, after = two_updates(OPTIMIZERS[name], use_hook=False)  # without the hook they do change
    assert not identical(before["vqa.weight"], after["vqa.weight"])


def make_mask(model, **kwargs):
    node = {"type": "iterative_gradient_mask", "params": "weight", **kwargs}
    return OPTIMIZER_HOOKS.build(node, model=model, optimizer=None)


def test_mask_reaches_beta_after_ceil_beta_over_delta_rounds():
    model = nn.Linear(10, 10)  # the selected weight has 100 entries
    mask = make_mask(model, delta=0.1, beta=0.45, every=3)
    masked = []
    for update in range(20):
        mask.observe({model.weight: torch.randn(10, 10)})
        mask.before_step(update)
        masked.append(mask.masked)
    # rounds at updates 0, 3, 6, 9, 12: 10 entries each, the last one capped at beta
    assert masked == [10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40, 45] + [45] * 7
    assert mask.rounds == math.ceil(0.45 / 0.1) == 5
    assert mask.masked_fraction == pytest.approx(0.45)
    assert mask.mask_for(model.bias) is None


def test_mask_prunes_the_smallest_text_gradients():
    model = nn.Linear(4, 5)
    mask = make_mask(model, delta=0.25, beta=0.5, every=1)
    order = torch.randperm(20)
    grad = (order.float() - 9.5).reshape(5, 4)  # distinct magnitudes, both signs
    mask.observe({model.weight: grad})
    smallest = grad.abs().reshape(-1).argsort()[:5]
    expected = torch.ones(20, dtype=torch.bool)
    expected[smallest] = False
    assert torch.equal(mask.mask_for(model.weight).reshape(-1), expected)
    # round 2 prunes among the entries still kept: already pruned entries do not count again
    mask.observe({model.weight: grad})
    kept_scores = torch.where(expected, grad.abs().reshape(-1), torch.tensor(math.inf))
    expected[kept_scores.argsort()[:5]] = False
    assert torch.equal(mask.mask_for(model.weight).reshape(-1), expected)
    assert mask.masked == 10


def test_mask_ranks_globally_and_breaks_ties_exactly():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))  # 8 entries
    mask = make_mask(model, delta=0.5, beta=0.5, every=1)
    mask.observe({model[0].weight: torch.zeros(2, 2), model[1].weight: torch.full((2, 2), 3.0)})
    assert not mask.mask_for(model[0].weight).any() and mask.mask_for(model[1].weight).all()
    ties = make_mask(model, delta=0.25, beta=0.5, every=1)
    ties.observe({})  # no gradient at all: every score is 0, still exactly 2 entries pruned
    assert ties.masked == 2


def test_random_baseline_prunes_the_same_count_elsewhere():
    model = nn.Linear(20, 20)
    grad = torch.randn(20, 20)
    by_magnitude = make_mask(model, delta=0.1, beta=0.5, every=1)
    by_chance = make_mask(model, delta=0.1, beta=0.5, every=1, random=True, seed=4)
    again = make_mask(model, delta=0.1, beta=0.5, every=1, random=True, seed=4)
    for _ in range(3):
        for m in (by_magnitude, by_chance, again):
            m.observe({model.weight: grad})
    assert by_magnitude.masked == by_chance.masked == 120
    assert not torch.equal(by_magnitude.mask_for(model.weight), by_chance.mask_for(model.weight))
    assert torch.equal(by_chance.mask_for(model.weight), again.mask_for(model.weight))


def test_mask_state_round_trip():
    model = nn.Linear(6, 6)
    mask = make_mask(model, delta=0.2, beta=0.6, every=2, random=True)
    for _ in range(3):
        mask.observe({})
    resumed = make_mask(model, delta=0.2, beta=0.6, every=2, random=True)
    resumed.load_state_dict(mask.state_dict())
    for _ in range(4):
        mask.observe({}), resumed.observe({})
        assert torch.equal(mask.mask_for(model.weight), resumed.mask_for(model.weight))
    assert resumed.masked == mask.masked and resumed.observed == mask.observed
    with pytest.raises(ConfigError, match="gradient mask"):
        make_mask(nn.Linear(6, 5)).load_state_dict(mask.state_dict())


def test_mask_errors():
    with pytest.raises(ConfigError, match="masked_combine"):
        make_mask(nn.Linear(2, 2)).before_step(0)  # observe() never called: wrong step strategy
    with pytest.raises(ConfigError, match="matches no trainable parameter"):
        OPTIMIZER_HOOKS.build({"type": "iterative_gradient_mask", "params": "encoder"},
                              model=nn.Linear(2, 2), optimizer=None)
    with pytest.raises(ConfigError, match="delta"):
        make_mask(nn.Linear(2, 2), delta=0.0)
